"""`django.contrib.admin` with the back-office site (reporting/admin_site.py) as the default admin site.

Its own module (not reporting/apps.py) because Django picks an app's config among the AppConfig classes a module
defines or imports.
"""

from django.contrib.admin.apps import AdminConfig


class BackOfficeAdminConfig(AdminConfig):
    default_site = "reporting.admin_site.BackOfficeSite"
