from django.urls import path

from merchants.api import MerchantViewSet

# A singleton (no id in the URL), which a router does not express: the action is mapped explicitly.
urlpatterns = [path("merchant", MerchantViewSet.as_view({"get": "retrieve"}), name="merchant-me")]
