"""Reconciliation in the back office (docs/adr/0054): every role reads the runs and their lines; finance runs a
day or uploads a settlement file, edits the file mappings, resolves discrepancies and applies payments the gateway
settled. A delta on top of reporting/0002's frozen roles; a test keeps 0002's roles plus every later migration's
`ADDED` equal to reporting.roles.ROLES."""

from django.db import migrations

from paytrust.migration_ops import grant_role_permissions

VIEW = (
    "reconciliation.view_reconciliationrun",
    "reconciliation.view_reconciliationline",
    "reconciliation.view_settlementfilemapping",
)
ADDED = {
    "support": VIEW,
    "finance": VIEW
    + (
        "reconciliation.run_reconciliation",
        "reconciliation.resolve_reconciliationline",
        "reconciliation.apply_reconciliationline",
        "reconciliation.add_settlementfilemapping",
        "reconciliation.change_settlementfilemapping",
    ),
    "operations": VIEW,
    "administrator": VIEW,
}


class Migration(migrations.Migration):
    dependencies = [("reconciliation", "0001_initial"), ("reporting", "0002_staff_roles")]

    operations = [grant_role_permissions("reconciliation", ADDED)]
