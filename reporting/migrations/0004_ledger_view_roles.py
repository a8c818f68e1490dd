"""The ledger's admin pages for the support and finance roles (reporting.roles.VIEW_LEDGER, docs/adr/0045).

Adds the view permissions of the ledger's models to those two groups (created by 0002 when missing); nothing
else changes. `manage.py create_staff` applies reporting.roles.ROLES again anyway; a test keeps 0002's frozen
roles plus every later migration's ADDED equal to the code.
"""

from django.db import migrations

from paytrust.migration_ops import grant_role_permissions

VIEW_LEDGER = ("ledger.view_account", "ledger.view_movement", "ledger.view_entry")
ADDED = {"support": VIEW_LEDGER, "finance": VIEW_LEDGER}


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0003_refund_permissions"),
        ("ledger", "0002_integrity_triggers"),
    ]

    operations = [grant_role_permissions("ledger", ADDED)]
