"""Reporting facts on PaymentApplication (SPEC §10): merchant, mode and gateway denormalised from the invoice, the
tax / service fee / taxable base each payment carries, and their split per tax rate (PaymentApplicationTax).

Existing rows are backfilled by replaying each invoice's applications in order through the same pure function the
service uses (`invoices.calc.carried_by_payment`). The NOT NULL, checks and report indexes follow in 0004 (a
separate transaction: PostgreSQL refuses ALTER TABLE on a table with pending deferred FK checks from the
backfill).
"""

import django.db.models.deletion
from django.db import migrations, models


def backfill(apps, schema_editor):
    from invoices import calc

    PaymentApplication = apps.get_model("invoices", "PaymentApplication")
    PaymentApplicationTax = apps.get_model("invoices", "PaymentApplicationTax")
    Invoice = apps.get_model("invoices", "Invoice")
    Installment = apps.get_model("invoices", "Installment")
    LineItem = apps.get_model("invoices", "LineItem")

    invoice_ids = PaymentApplication.objects.values_list("invoice_id", flat=True).distinct().order_by()
    for invoice_id in invoice_ids.iterator():
        invoice = Invoice.objects.get(pk=invoice_id)
        installments = [
            calc.InstallmentShares(i.number, i.amount_minor, i.tax_share_minor, i.fee_share_minor)
            for i in Installment.objects.filter(invoice_id=invoice_id)
        ]
        rates = calc.rate_bases(
            list(
                LineItem.objects.filter(invoice_id=invoice_id).values_list(
                    "tax_rate", "subtotal_minor", "tax_minor"
                )
            )
        )
        earlier: list = []
        earlier_tax = earlier_taxable = 0
        for application in PaymentApplication.objects.filter(invoice_id=invoice_id).order_by(
            "created_at", "id"
        ):
            carried = calc.carried_by_payment(
                installments=installments,
                rates=rates,
                earlier_allocations=earlier,
                allocations=application.allocations,
                earlier_tax_minor=earlier_tax,
                earlier_taxable_minor=earlier_taxable,
            )
            application.merchant_id = invoice.merchant_id
            application.mode = invoice.mode
            application.gateway = invoice.gateway
            application.tax_minor = carried.tax_minor
            application.fee_minor = carried.fee_minor
            application.taxable_minor = carried.taxable_minor
            application.save(
                update_fields=["merchant", "mode", "gateway", "tax_minor", "fee_minor", "taxable_minor"]
            )
            PaymentApplicationTax.objects.bulk_create(
                PaymentApplicationTax(
                    application_id=application.pk,
                    merchant_id=invoice.merchant_id,
                    mode=invoice.mode,
                    gateway=invoice.gateway,
                    currency=application.currency,
                    paid_at=application.paid_at,
                    tax_rate=row.tax_rate,
                    taxable_minor=row.taxable_minor,
                    tax_minor=row.tax_minor,
                )
                for row in carried.by_rate
            )
            earlier.append(application.allocations)
            earlier_tax += carried.tax_minor
            earlier_taxable += carried.taxable_minor


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0002_immutability_triggers"),
        ("merchants", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="paymentapplication",
            name="merchant",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="merchants.merchant",
            ),
        ),
        migrations.AddField(
            model_name="paymentapplication",
            name="mode",
            field=models.CharField(choices=[("test", "Test"), ("live", "Live")], default="", max_length=4),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="paymentapplication",
            name="gateway",
            field=models.CharField(default="", max_length=20),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="paymentapplication",
            name="tax_minor",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="paymentapplication",
            name="fee_minor",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="paymentapplication",
            name="taxable_minor",
            field=models.BigIntegerField(default=0),
        ),
        migrations.CreateModel(
            name="PaymentApplicationTax",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("mode", models.CharField(choices=[("test", "Test"), ("live", "Live")], max_length=4)),
                ("gateway", models.CharField(max_length=20)),
                ("currency", models.CharField(max_length=3)),
                ("paid_at", models.DateTimeField()),
                ("tax_rate", models.DecimalField(decimal_places=4, max_digits=5)),
                ("taxable_minor", models.BigIntegerField()),
                ("tax_minor", models.BigIntegerField()),
                (
                    "application",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="tax_rates",
                        to="invoices.paymentapplication",
                    ),
                ),
                (
                    "merchant",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="merchants.merchant",
                    ),
                ),
            ],
            options={
                "ordering": ["application", "tax_rate"],
                "indexes": [
                    models.Index(
                        fields=["merchant", "mode", "paid_at"],
                        include=("currency", "gateway", "tax_rate", "taxable_minor", "tax_minor"),
                        name="payment_application_tax_report",
                    )
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("application", "tax_rate"), name="payment_application_tax_unique"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("tax_rate__gte", 0), ("tax_rate__lte", 1)),
                        name="payment_application_tax_rate_valid",
                    ),
                ],
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
