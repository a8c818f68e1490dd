from django.urls import path

from invoices.api import (
    InvoiceDetailApi,
    InvoiceInstallmentsApi,
    InvoiceListCreateApi,
    InvoiceOverpaymentApi,
    InvoiceSupplementaryApi,
    InvoiceVoidApi,
)

urlpatterns = [
    path("invoices", InvoiceListCreateApi.as_view(), name="invoice-list"),
    path("invoices/<str:invoice_id>", InvoiceDetailApi.as_view(), name="invoice-detail"),
    path("invoices/<str:invoice_id>/void", InvoiceVoidApi.as_view(), name="invoice-void"),
    path(
        "invoices/<str:invoice_id>/supplementary",
        InvoiceSupplementaryApi.as_view(),
        name="invoice-supplementary",
    ),
    path(
        "invoices/<str:invoice_id>/installments",
        InvoiceInstallmentsApi.as_view(),
        name="invoice-installments",
    ),
    path(
        "invoices/<str:invoice_id>/overpayment", InvoiceOverpaymentApi.as_view(), name="invoice-overpayment"
    ),
]
