"""After the backfill of 0003: merchant NOT NULL, checks on the new figures, the report index."""

import django.db.models.deletion
from django.db import migrations, models

from paytrust.money import CURRENCIES


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0003_payment_application_report_facts"),
    ]

    operations = [
        migrations.AlterField(
            model_name="paymentapplication",
            name="merchant",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="merchants.merchant",
            ),
        ),
        migrations.RemoveConstraint(
            model_name="paymentapplication",
            name="payment_application_amounts_valid",
        ),
        migrations.AddConstraint(
            model_name="paymentapplication",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("amount_minor__gt", 0),
                    ("applied_minor__gte", 0),
                    ("fee_minor__gte", 0),
                    ("overpaid_minor__gte", 0),
                    ("tax_minor__gte", 0),
                ),
                name="payment_application_amounts_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="paymentapplication",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "applied_minor",
                        models.F("taxable_minor") + models.F("tax_minor") + models.F("fee_minor"),
                    )
                ),
                name="payment_application_shares_add_up",
            ),
        ),
        migrations.AddConstraint(
            model_name="paymentapplication",
            constraint=models.CheckConstraint(
                condition=models.Q(("mode__in", ["test", "live"])), name="payment_application_mode_valid"
            ),
        ),
        migrations.AddConstraint(
            model_name="paymentapplication",
            constraint=models.CheckConstraint(
                condition=models.Q(("currency__in", list(CURRENCIES))),
                name="payment_application_currency_known",
            ),
        ),
        migrations.AddIndex(
            model_name="paymentapplication",
            index=models.Index(
                fields=["merchant", "mode", "paid_at"],
                include=("currency", "gateway", "amount_minor", "tax_minor", "fee_minor"),
                name="payment_application_report",
            ),
        ),
    ]
