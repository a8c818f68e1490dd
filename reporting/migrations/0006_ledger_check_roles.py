"""The ledger checks (reporting.LedgerCheck, docs/adr/0049): every role reads them (`reporting.view_ledgercheck`).
A delta on top of 0002's frozen roles; a test keeps 0002's roles plus every later migration's `ADDED` equal to
reporting.roles.ROLES."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

ADDED = {
    "support": ("reporting.view_ledgercheck",),
    "finance": ("reporting.view_ledgercheck",),
    "operations": ("reporting.view_ledgercheck",),
    "administrator": ("reporting.view_ledgercheck",),
}


def _permissions(apps, names):
    Permission = apps.get_model("auth", "Permission")
    found = []
    for name in names:
        app_label, codename = name.split(".")
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


def add(apps, schema_editor):
    create_permissions(global_apps.get_app_config("reporting"), verbosity=0, apps=apps)
    Group = apps.get_model("auth", "Group")
    for role, names in ADDED.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*_permissions(apps, names))


def remove(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role, names in ADDED.items():
        group = Group.objects.filter(name=role).first()
        if group is not None:
            group.permissions.remove(*_permissions(apps, names))


class Migration(migrations.Migration):
    dependencies = [("reporting", "0005_ledger_check")]

    operations = [migrations.RunPython(add, remove)]
