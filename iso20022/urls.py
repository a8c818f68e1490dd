from rest_framework.routers import SimpleRouter

from iso20022.api import InvoiceIso20022ViewSet

# Only the two detail actions are routed (invoices/{invoice_id}/payment-initiation, …/payment-status); the invoice
# resource itself is the payments app's.
router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("invoices", InvoiceIso20022ViewSet, basename="invoice")

urlpatterns = router.urls
