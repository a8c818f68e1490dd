"""The ledger checks (reporting.LedgerCheck, docs/adr/0049): every role reads them (`reporting.view_ledgercheck`).
A delta on top of 0002's frozen roles; a test keeps 0002's roles plus every later migration's `ADDED` equal to
reporting.roles.ROLES."""

from django.db import migrations

from paytrust.migration_ops import grant_role_permissions

ADDED = {
    "support": ("reporting.view_ledgercheck",),
    "finance": ("reporting.view_ledgercheck",),
    "operations": ("reporting.view_ledgercheck",),
    "administrator": ("reporting.view_ledgercheck",),
}


class Migration(migrations.Migration):
    dependencies = [("reporting", "0005_ledger_check")]

    operations = [grant_role_permissions("reporting", ADDED)]
