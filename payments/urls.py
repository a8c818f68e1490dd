from django.urls import path

from payments.api import InvoicePaymentCreateApi, PaymentDetailApi, PaymentListApi

urlpatterns = [
    path("invoices/<str:invoice_id>/payments", InvoicePaymentCreateApi.as_view(), name="invoice-payments"),
    path("payments", PaymentListApi.as_view(), name="payment-list"),
    path("payments/<str:payment_id>", PaymentDetailApi.as_view(), name="payment-detail"),
]
