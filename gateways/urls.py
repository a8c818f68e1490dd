from django.urls import path

from gateways.api import GatewayAccountDetailApi, GatewayAccountListApi

urlpatterns = [
    path("gateway-accounts", GatewayAccountListApi.as_view(), name="gateway-account-list"),
    path(
        "gateway-accounts/<str:account_id>", GatewayAccountDetailApi.as_view(), name="gateway-account-detail"
    ),
]
