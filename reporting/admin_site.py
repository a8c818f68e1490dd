"""The back office's admin site: Django's AdminSite plus the pages that belong to no model: the dashboard on the
index (reporting/dashboard.py) and the financial report. Branded "PayTrust back office" (templates/admin/).

Installed as the default admin site (`reporting.admin_apps.BackOfficeAdminConfig` in INSTALLED_APPS instead of
"django.contrib.admin"), so every app's `@admin.register` lands here. It lives in the top, read-only layer because
its own pages (the financial report) read across the apps below through their selectors.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models.base import ModelBase
from django.urls import path, reverse
from django.utils import timezone

from reporting import admin as reporting_admin
from reporting.admin_ledger import LedgerCheckAdmin
from reporting.admin_staff import back_office_base
from reporting.dashboard import dashboard_for
from reporting.models import LedgerCheck


class BackOfficeSite(admin.AdminSite):
    site_header = "PayTrust back office"
    site_title = "PayTrust back office"
    index_title = "Dashboard"
    index_template = "admin/backoffice_index.html"
    # The lists need the width (1366-px screens): navigation is the index and the breadcrumbs.
    enable_nav_sidebar = False

    def __init__(self, name="admin"):
        super().__init__(name)
        self.register(LedgerCheck, LedgerCheckAdmin)  # see reporting/admin_ledger.py

    def index(self, request, extra_context=None):
        """Django's index (the apps this user may see) with the dashboard above it."""
        dashboard = dashboard_for(
            request.user, site_name=self.name, now=timezone.now(), mode=request.GET.get("mode")
        )
        return super().index(request, {"dashboard": dashboard, **(extra_context or {})})

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every admin registered here is a BackOfficeAdmin (apikeys/admin_base.py: forged actions are a 403,
        actions without a permission are for superusers). Ours are written so; a third-party admin class
        (Django's user and group admins, procrastinate's jobs, registered during autodiscovery) is composed with
        reporting.admin_staff's base for its model when it is registered - once, never registered twice or
        patched afterwards."""
        models = [model_or_iterable] if isinstance(model_or_iterable, ModelBase) else list(model_or_iterable)
        for model in models:
            cls = admin_class or admin.ModelAdmin
            base = back_office_base(model)
            if not issubclass(cls, base):
                cls = type(cls.__name__, (base, cls), {"__module__": cls.__module__})
            super().register(model, cls, **options)

    def get_urls(self):
        report = path(
            "reporting/financial/",
            self.admin_view(reporting_admin.financial_report_view),
            name=reporting_admin.URL_NAME,
        )
        return [report, *super().get_urls()]

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        if app_label in (None, "reporting") and reporting_admin.can_view_reports(request.user):
            report = self._reporting_app(reverse(f"admin:{reporting_admin.URL_NAME}", current_app=self.name))
            listed = next((app for app in apps if app["app_label"] == "reporting"), None)
            if listed is None:
                apps.append(report)
            else:  # the app's models (the ledger checks) are listed already: the report joins them
                listed["models"] = [*report["models"], *listed["models"]]
        return apps

    @staticmethod
    def _reporting_app(url: str) -> dict:
        return {
            "name": "Reporting",
            "app_label": "reporting",
            "app_url": url,
            "has_module_perms": True,
            "models": [
                {
                    "name": "Financial report",
                    "object_name": "FinancialReport",
                    "perms": {"add": False, "change": False, "delete": False, "view": True},
                    "admin_url": url,
                    "add_url": None,
                    "view_only": True,
                }
            ],
        }
