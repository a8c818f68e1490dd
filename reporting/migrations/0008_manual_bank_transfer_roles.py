"""The manual bank-transfer gateway's back office (docs/adr/0052): every role reads its transfers, receipts and
refunds; finance records received transfers and marks manual refunds paid out. A delta on top of 0002's frozen
roles; a test keeps 0002's roles plus every later migration's `ADDED` equal to reporting.roles.ROLES."""

from django.db import migrations

from paytrust.migration_ops import grant_role_permissions

VIEW = ("gateways.view_manualtransfer", "gateways.view_banktransferreceipt", "gateways.view_manualrefund")

ADDED = {
    "support": VIEW,
    "finance": VIEW + ("gateways.record_banktransferreceipt", "gateways.payout_manualrefund"),
    "operations": VIEW,
    "administrator": VIEW,
}


class Migration(migrations.Migration):
    dependencies = [("reporting", "0007_risk_roles"), ("gateways", "0008_manual_bank_transfer")]

    operations = [grant_role_permissions("gateways", ADDED)]
