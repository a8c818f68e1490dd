"""/v1/balance (a singleton, mapped explicitly) and /v1/balance/transactions (a router resource)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from ledger.api import BalanceTransactionViewSet, BalanceViewSet

router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("balance/transactions", BalanceTransactionViewSet, basename="balance-transaction")

urlpatterns = [
    path("balance", BalanceViewSet.as_view({"get": "retrieve"}), name="balance"),
    *router.urls,
]
