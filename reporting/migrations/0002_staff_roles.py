"""The back office's staff roles as Django groups (docs/adr/0042): support, finance, operations, administrator.

Idempotent: each group is created if missing and set to exactly the permissions below. This is a frozen copy of
reporting.roles.ROLES at this point of history (a test keeps them equal while no later migration changes a
role); `manage.py create_staff` applies reporting.roles.ROLES again on every run.

Permissions are created here first when missing: on a new database Django creates them only after all migrations
(post_migrate), and this migration runs before that.
"""

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


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0001_financial_report_permission"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("merchants", "0001_initial"),
        ("apikeys", "0007_back_office_permissions"),
        ("gateways", "0003_sandbox_refund"),
        ("webhooks", "0007_back_office_permissions"),
        ("invoices", "0006_back_office_permissions"),
        ("payments", "0005_back_office_permissions"),
        ("inbound", "0003_back_office_permissions"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
