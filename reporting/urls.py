from django.urls import path

from reporting.api import FinancialReportApi

urlpatterns = [
    path("reports/financial", FinancialReportApi.as_view(), name="reports-financial"),
]
