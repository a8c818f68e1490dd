from django.urls import path

from merchants.api import MerchantMeApi

urlpatterns = [path("merchant", MerchantMeApi.as_view(), name="merchant-me")]
