"""/v1/risk-settings: a singleton per (merchant, mode), mapped explicitly (no id in the URL)."""

from django.urls import path

from risk.api import RiskSettingsViewSet

urlpatterns = [
    path(
        "risk-settings",
        RiskSettingsViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="risk-settings",
    ),
]
