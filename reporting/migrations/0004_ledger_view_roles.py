"""The ledger's admin pages for the support and finance roles (reporting.roles.VIEW_LEDGER, docs/adr/0045).

Adds the view permissions of the ledger's models to those two groups (created by 0002 when missing); nothing
else changes. `manage.py create_staff` applies reporting.roles.ROLES again anyway; a test keeps 0002's frozen
roles plus every later migration's ADDED equal to the code.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW_LEDGER = ("ledger.view_account", "ledger.view_movement", "ledger.view_entry")
ADDED = {"support": VIEW_LEDGER, "finance": VIEW_LEDGER}


def _permissions(apps, names):
    Permission = apps.get_model("auth", "Permission")
    found = []
    for name in names:
        app_label, codename = name.split(".")
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


def add_ledger_views(apps, schema_editor):
    # On a new database Django creates permissions only after all migrations (post_migrate): create them first.
    create_permissions(global_apps.get_app_config("ledger"), verbosity=0, apps=apps)
    Group = apps.get_model("auth", "Group")
    for role, names in ADDED.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*_permissions(apps, names))


def remove_ledger_views(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role, names in ADDED.items():
        group = Group.objects.filter(name=role).first()
        if group is not None:
            group.permissions.remove(*_permissions(apps, names))


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0003_refund_permissions"),
        ("ledger", "0002_integrity_triggers"),
    ]

    operations = [migrations.RunPython(add_ledger_views, remove_ledger_views)]
