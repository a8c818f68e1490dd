"""Backfill the ledger (docs/adr/0045) with the money that moved before it existed: the movements that
payments.services.bookkeeping would have posted.

- a `payment` movement per invoices.PaymentApplication, as `post_payment_applied`: Dr gateway_clearing gross;
  Cr tax_payable tax, service_fees fee, customer_credit overpaid, merchant_payable the rest; at `paid_at`.
- per succeeded payments.Refund without a movement yet (before the ledger: all of origin gateway): a chargeback
  as `post_chargeback` (at succeeded_at), else `refund` (at created_at) + `refund_succeeded` (at succeeded_at) as
  `post_refund_requested` and `post_refund_succeeded`. A refund draws on what is left of its payment's overpayment (customer credit) first,
  then on the merchant's balance (`bookkeeping._drawn_from`): the payment's refunds already in the ledger (posted
  by the code since the ledger exists) have drawn theirs first, the others draw in creation order.

Idempotent: every movement is INSERT … ON CONFLICT DO NOTHING on its key (source_type, source_id, type), and
entries are written only for the movements this run inserted; running it again, or over movements the code
already posted, writes nothing twice. Non-atomic, in batches of BATCH objects, each batch one transaction: the
ledger's deferred balance trigger checks each batch at its COMMIT, and a large table is never one huge
transaction (an interrupted run is simply run again). Historical models only; the ids are paytrust.ids' (the
field default of the historical Movement). Reversing it does nothing: the ledger is append-only.
"""

from collections import defaultdict

from django.db import migrations, transaction

BATCH = 1000

GATEWAY_CLEARING = "gateway_clearing"
MERCHANT_PAYABLE = "merchant_payable"
TAX_PAYABLE = "tax_payable"
SERVICE_FEES = "service_fees"
CUSTOMER_CREDIT = "customer_credit"
REFUNDS_PAYABLE = "refunds_payable"


def _accounts(apps, keys: set[tuple[str, str, str, str]]) -> dict[tuple[str, str, str, str], int]:
    """(merchant_id, mode, currency, code) -> account id, created when missing (ON CONFLICT DO NOTHING)."""
    Account = apps.get_model("ledger", "Account")
    Account.objects.bulk_create(
        [Account(merchant_id=m, mode=mode, currency=cur, code=code) for m, mode, cur, code in sorted(keys)],
        ignore_conflicts=True,
    )
    found = Account.objects.filter(
        merchant_id__in={k[0] for k in keys},
        mode__in={k[1] for k in keys},
        currency__in={k[2] for k in keys},
        code__in={k[3] for k in keys},
    ).values_list("merchant_id", "mode", "currency", "code", "id")
    return {row[:4]: row[4] for row in found}


def _post(apps, specs: list[dict]) -> int:
    """Post movements (each a dict of Movement fields + `lines`: code -> signed minor units, zeros left out)
    unless already posted. Returns how many were inserted."""
    if not specs:
        return 0
    Movement = apps.get_model("ledger", "Movement")
    Entry = apps.get_model("ledger", "Entry")
    for spec in specs:
        spec["lines"] = {code: amount for code, amount in spec["lines"].items() if amount}
        if not spec["lines"] or sum(spec["lines"].values()) != 0:
            raise ValueError(
                f"backfill: {spec['type']} of {spec['source_id']} does not balance: {spec['lines']}"
            )
    accounts = _accounts(
        apps,
        {(s["merchant_id"], s["mode"], s["currency"], code) for s in specs for code in s["lines"]},
    )
    movements = [Movement(**{k: v for k, v in s.items() if k != "lines"}) for s in specs]
    Movement.objects.bulk_create(movements, ignore_conflicts=True)
    # The ids are new (time + 95 random bits): those found now are the ones this INSERT wrote.
    inserted = set(Movement.objects.filter(id__in=[m.id for m in movements]).values_list("id", flat=True))
    Entry.objects.bulk_create(
        [
            Entry(
                movement_id=movement.id,
                account_id=accounts[(spec["merchant_id"], spec["mode"], spec["currency"], code)],
                amount_minor=amount,
            )
            for movement, spec in zip(movements, specs, strict=True)
            if movement.id in inserted
            for code, amount in sorted(spec["lines"].items())
        ]
    )
    return len(inserted)


def _payment_spec(application) -> dict:
    gross = application.amount_minor
    rest = gross - application.tax_minor - application.fee_minor - application.overpaid_minor
    return {
        "merchant_id": application.merchant_id,
        "mode": application.mode,
        "currency": application.currency,
        "type": "payment",
        "source_type": "payment",
        "source_id": application.payment_id,
        "occurred_at": application.paid_at,
        "description": f"payment {application.payment_id} on invoice {application.invoice_id}",
        "lines": {
            GATEWAY_CLEARING: gross,
            TAX_PAYABLE: -application.tax_minor,
            SERVICE_FEES: -application.fee_minor,
            CUSTOMER_CREDIT: -application.overpaid_minor,
            MERCHANT_PAYABLE: -rest,
        },
    }


def backfill_payments(apps) -> int:
    PaymentApplication = apps.get_model("invoices", "PaymentApplication")
    posted, last_id = 0, 0
    while True:
        batch = list(PaymentApplication.objects.filter(id__gt=last_id).order_by("id")[:BATCH])
        if not batch:
            return posted
        with transaction.atomic():
            posted += _post(apps, [_payment_spec(a) for a in batch])
        last_id = batch[-1].id


def _refund_specs(refund, from_credit: int) -> list[dict]:
    base = {
        "merchant_id": refund.merchant_id,
        "mode": refund.mode,
        "currency": refund.currency,
        "source_type": "refund",
        "source_id": refund.id,
    }
    drawn = {CUSTOMER_CREDIT: from_credit, MERCHANT_PAYABLE: refund.amount_minor - from_credit}
    if refund.chargeback:
        return [
            {
                **base,
                "type": "chargeback",
                "occurred_at": refund.succeeded_at,
                "description": f"chargeback {refund.id} on payment {refund.payment_id}",
                "lines": {**drawn, GATEWAY_CLEARING: -refund.amount_minor},
            }
        ]
    return [
        {
            **base,
            "type": "refund",
            "occurred_at": refund.created_at,
            "description": f"refund {refund.id} of payment {refund.payment_id}",
            "lines": {**drawn, REFUNDS_PAYABLE: -refund.amount_minor},
        },
        {
            **base,
            "type": "refund_succeeded",
            "occurred_at": refund.succeeded_at,
            "description": f"refund {refund.id} paid out",
            "lines": {REFUNDS_PAYABLE: refund.amount_minor, GATEWAY_CLEARING: -refund.amount_minor},
        },
    ]


def _refund_batch_specs(apps, payment_ids: list[str]) -> list[dict]:
    """The movements of these payments' refunds, each drawing on what is left of its payment's overpayment."""
    PaymentApplication = apps.get_model("invoices", "PaymentApplication")
    Refund = apps.get_model("payments", "Refund")
    Entry = apps.get_model("ledger", "Entry")
    Movement = apps.get_model("ledger", "Movement")
    overpaid = dict(
        PaymentApplication.objects.filter(payment_id__in=payment_ids).values_list(
            "payment_id", "overpaid_minor"
        )
    )
    refunds = list(
        Refund.objects.filter(payment_id__in=payment_ids).order_by("payment_id", "created_at", "id")
    )
    payment_of = {r.id: r.payment_id for r in refunds}
    ids = list(payment_of)
    # Refunds already in the ledger (of any status: a pending one has drawn its part too) drew first: their
    # customer-credit lines (any refund movement, a failure's give-back included) count as used.
    already = set(
        Movement.objects.filter(
            source_type="refund", source_id__in=ids, type__in=["refund", "chargeback"]
        ).values_list("source_id", flat=True)
    )
    used: dict[str, int] = defaultdict(int)
    for source_id, amount in Entry.objects.filter(
        movement__source_type="refund", movement__source_id__in=ids, account__code=CUSTOMER_CREDIT
    ).values_list("movement__source_id", "amount_minor"):
        used[payment_of[source_id]] += amount
    specs: list[dict] = []
    for refund in refunds:
        if refund.id in already or refund.status != "succeeded":
            continue  # posted by the code (or, not succeeded, never money that moved before the ledger)
        left = overpaid.get(refund.payment_id, 0) - used[refund.payment_id]
        from_credit = max(0, min(refund.amount_minor, left))
        used[refund.payment_id] += from_credit
        specs += _refund_specs(refund, from_credit)
    return specs


def backfill_refunds(apps) -> int:
    Refund = apps.get_model("payments", "Refund")
    posted, last_payment = 0, ""
    while True:
        payment_ids = list(
            Refund.objects.filter(payment_id__gt=last_payment, status="succeeded")
            .order_by("payment_id")
            .values_list("payment_id", flat=True)
            .distinct()[:BATCH]
        )
        if not payment_ids:
            return posted
        with transaction.atomic():
            posted += _post(apps, _refund_batch_specs(apps, payment_ids))
        last_payment = payment_ids[-1]


def backfill(apps, schema_editor):
    backfill_payments(apps)
    backfill_refunds(apps)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("payments", "0008_refunds_api"),
        ("invoices", "0006_back_office_permissions"),
        ("ledger", "0002_integrity_triggers"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False)]
