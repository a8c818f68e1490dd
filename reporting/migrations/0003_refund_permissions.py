"""Refunds (docs/adr/0046-refunds.md): every role reads the refunds list (`payments.view_refund`); finance refunds
payments from the payment admin (`payments.refund_payment`). A delta on top of 0002's frozen roles; a test keeps
0002's roles plus every later migration's `ADDED` equal to reporting.roles.ROLES."""

from django.db import migrations

from paytrust.migration_ops import grant_role_permissions

ADDED = {
    "support": ("payments.view_refund",),
    "finance": ("payments.view_refund", "payments.refund_payment"),
    "operations": ("payments.view_refund",),
    "administrator": ("payments.view_refund",),
}


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0002_staff_roles"),
        ("payments", "0008_refunds_api"),
    ]

    operations = [grant_role_permissions("payments", ADDED)]
