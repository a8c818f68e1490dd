from django.urls import path

from iso20022.api import PaymentInitiationApi, PaymentStatusApi

urlpatterns = [
    path(
        "invoices/<str:invoice_id>/payment-initiation",
        PaymentInitiationApi.as_view(),
        name="invoice-payment-initiation",
    ),
    path(
        "invoices/<str:invoice_id>/payment-status", PaymentStatusApi.as_view(), name="invoice-payment-status"
    ),
]
