"""Every role may view the ledger checks (reporting.LedgerCheck, docs/adr/0049): `reporting.view_ledgercheck` joins
the read-only permissions of all four roles.

The frozen copy of reporting.roles.ROLES at this point of history (0002 has the one before; a test keeps the latest
migration's copy equal to the code). Idempotent: each group is set to exactly these permissions; reversing goes
back to 0002's sets.
"""

import importlib

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW_EVERYTHING = (
    "merchants.view_merchant",
    "apikeys.view_apikey",
    "apikeys.view_auditlog",
    "gateways.view_gatewayaccount",
    "gateways.view_gatewayfee",
    "gateways.view_sandboxcheckoutsession",
    "webhooks.view_webhookendpoint",
    "webhooks.view_event",
    "webhooks.view_delivery",
    "webhooks.view_deliveryattempt",
    "invoices.view_invoice",
    "invoices.view_lineitem",
    "invoices.view_installment",
    "invoices.view_paymentapplication",
    "payments.view_payment",
    "payments.view_gatewaycall",
    "inbound.view_inboundnotification",
    "inbound.view_inboundnotificationattempt",
    "reporting.view_ledgercheck",
)

ROLES = {
    "support": VIEW_EVERYTHING,
    "finance": VIEW_EVERYTHING
    + (
        "invoices.void_invoice",
        "invoices.expire_invoice",
        "invoices.change_invoice",
        "invoices.view_customer_contact",
        "payments.reconcile_payment",
        "reporting.view_financial_report",
    ),
    "operations": VIEW_EVERYTHING
    + (
        "inbound.replay_inboundnotification",
        "webhooks.redeliver_event",
        "webhooks.manage_webhookendpoint",
        "gateways.add_gatewayaccount",
        "gateways.change_gatewayaccount",
        "gateways.add_gatewayfee",
        "gateways.change_gatewayfee",
        "gateways.delete_gatewayfee",
    ),
    "administrator": VIEW_EVERYTHING
    + (
        "merchants.add_merchant",
        "merchants.change_merchant",
        "apikeys.add_apikey",
        "apikeys.rotate_apikey",
        "apikeys.revoke_apikey",
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
        "invoices.view_customer_contact",
        "reporting.view_financial_report",
    ),
}


def create_roles(apps, schema_editor):
    labels = {name.split(".")[0] for names in ROLES.values() for name in names}
    for label in sorted(labels):
        create_permissions(global_apps.get_app_config(label), verbosity=0, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, names in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = []
        for name in names:
            app_label, codename = name.split(".")
            permissions.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(permissions)


def previous_roles(apps, schema_editor):
    importlib.import_module("reporting.migrations.0002_staff_roles").create_roles(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("reporting", "0003_ledger_check")]

    operations = [migrations.RunPython(create_roles, previous_roles)]
