"""Risk scoring (docs/adr/0053-risk-scoring.md): every role reads the risk rules and the review queue; finance
edits the rules (`risk.add_risksettings`, `risk.change_risksettings`) and approves or rejects flagged payments
(`payments.approve_payment_review`, `payments.reject_payment_review`). A delta on top of 0002's frozen roles; a test
keeps 0002's roles plus every later migration's `ADDED` equal to reporting.roles.ROLES."""

from django.db import migrations

from paytrust.migration_ops import grant_role_permissions

VIEW = ("risk.view_risksettings", "payments.view_paymentreview")
FINANCE = (
    "risk.add_risksettings",
    "risk.change_risksettings",
    "payments.approve_payment_review",
    "payments.reject_payment_review",
)
ADDED = {
    "support": VIEW,
    "finance": VIEW + FINANCE,
    "operations": VIEW,
    "administrator": VIEW,
}


def _of(app_label: str) -> dict[str, tuple[str, ...]]:
    return {role: tuple(n for n in names if n.startswith(f"{app_label}.")) for role, names in ADDED.items()}


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0006_ledger_check_roles"),
        ("payments", "0013_review_queue"),
        ("risk", "0001_risk_settings_and_velocity"),
    ]

    operations = [
        grant_role_permissions("risk", _of("risk")),
        grant_role_permissions("payments", _of("payments")),
    ]
