"""The invoice and payment resources on a DRF router. `use_regex_path=False`: the routes are the same `path()`
patterns as before (`invoices/<str:invoice_id>/void`, …), so URLs and the route labels of logs and metrics stay."""

from rest_framework.routers import SimpleRouter

from payments.api import InvoiceViewSet, PaymentViewSet
from payments.refunds_api import RefundViewSet

router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("invoices", InvoiceViewSet, basename="invoice")
router.register("payments", PaymentViewSet, basename="payment")
router.register("refunds", RefundViewSet, basename="refund")

urlpatterns = router.urls
