"""Writes for invoices. Every state change: `transaction.atomic()`, `select_for_update()` re-read, transition check
against `invoices.states`, write, outbound event recorded in the same transaction.

Contracts for the payments work (all keyword-only; see each docstring):
    invoice_mark_payment_initiated(*, invoice_id, installment_number=None, nowait=False, now=None) -> PaymentTarget
    invoice_check_installment_payable(*, invoice, installment_number=None) -> Installment
    invoice_apply_payment(*, invoice_id, payment_id, amount_minor, currency, installment_number, paid_at)
        -> PaymentApplicationResult
    invoices.selectors.invoice_next_payable_installment(*, invoice_id) -> Installment | None
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from psycopg import errors as pg_errors

from gateways.selectors import gateway_account_resolve, gateway_account_with_fee, gateway_fee_for
from invoices import calc
from invoices.calc import CustomerIn, InstallmentPlan, InstallmentsIn, LineItemIn
from invoices.models import (
    OPEN_STATUSES,
    Installment,
    InstallmentStatus,
    Invoice,
    InvoiceStatus,
    LineItem,
    PaymentApplication,
    PaymentApplicationTax,
)
from invoices.render import installment_representation
from invoices.selectors import invoice_render, with_relations
from invoices.states import STATUS_EVENTS, check_installment_transition, check_transition, is_overdue
from merchants.models import Merchant
from paytrust import money
from paytrust.errors import Conflict, NotFound, Unprocessable, ValidationError
from paytrust.models import Mode
from paytrust.sql import column_arrays, insert_for, mark_saved, prepared_cursor, row_values
from webhooks.outbound import services as webhook_services

logger = logging.getLogger("paytrust.invoices")

DEFAULT_EXPIRY = timedelta(hours=24)
MIN_EXPIRY = timedelta(hours=1)
MAX_EXPIRY = timedelta(days=30)
# A client that sends "now + 1 hour" computed a moment before we read the clock must not be refused.
EXPIRY_CLOCK_TOLERANCE = timedelta(seconds=30)
MAX_TOTAL_MINOR = 10**18
DESCRIPTION_MAX = 5000
EXTERNAL_ID_MAX = 255
CUSTOMER_LIMITS = {"name": 255, "email": 254, "phone": 40}


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


# ---- small helpers -------------------------------------------------------------------------------------------


def _emit(invoice: Invoice, event_type: str, *, data: dict | None = None) -> None:
    """Record an outbound event in the caller's transaction. `data` defaults to the invoice representation."""
    webhook_services.event_record(
        merchant=invoice.merchant, mode=invoice.mode, type=event_type, data=data or invoice_render(invoice)
    )


def _cache_related(invoice: Invoice, **rows: Sequence) -> None:
    """Put rows we just wrote into the instance's prefetch cache so rendering needs no query."""
    cache = invoice.__dict__.setdefault("_prefetched_objects_cache", {})
    for name, values in rows.items():
        qs = getattr(invoice, name).all()
        qs._result_cache = list(values)
        qs._prefetch_done = True
        cache[name] = qs


def _lock(
    invoice_id: str, *, merchant: Merchant | None = None, mode: str | None = None, nowait: bool = False
) -> Invoice:
    """Re-read the invoice under a row lock (inside the caller's transaction). With `nowait`, a row already locked
    by another transaction gives 409 `payment_in_progress` instead of waiting."""
    # of=("self",): lock the invoice row only, never the joined merchant row.
    qs = (
        Invoice.objects.select_for_update(nowait=nowait, of=("self",))
        .select_related("merchant")
        .filter(pk=invoice_id)
    )
    if merchant is not None:
        qs = qs.filter(merchant=merchant, mode=mode)
    if nowait:
        try:
            with transaction.atomic():  # savepoint: a refused lock leaves the outer transaction usable
                invoice = qs.first()
        except OperationalError as exc:
            if isinstance(exc.__cause__, pg_errors.LockNotAvailable):
                raise Conflict(
                    "Another payment operation on this invoice is in progress. Retry shortly.",
                    code="payment_in_progress",
                )
            raise
    else:
        invoice = qs.first()
    if invoice is None:
        raise NotFound(f"No such invoice: {invoice_id!r}.", param="id")
    return invoice


def _set_status(invoice: Invoice, target: str, events: list[str]) -> None:
    if invoice.status == target:
        return
    check_transition(invoice.status, target)
    invoice.status = target
    events.append(STATUS_EVENTS[target])


def _validate_expiry(expires_at: datetime | None, now: datetime) -> datetime:
    if expires_at is None:
        return now + DEFAULT_EXPIRY
    if not isinstance(expires_at, datetime) or expires_at.tzinfo is None:
        raise ValidationError(
            "expires_at must be an RFC 3339 date-time with a timezone.",
            code="expiry_invalid",
            param="expires_at",
        )
    if expires_at <= now:
        raise ValidationError("expires_at is in the past.", code="expiry_invalid", param="expires_at")
    if expires_at < now + MIN_EXPIRY - EXPIRY_CLOCK_TOLERANCE:
        raise ValidationError(
            "expires_at must be at least 1 hour from now.", code="expiry_invalid", param="expires_at"
        )
    if expires_at > now + MAX_EXPIRY:
        raise ValidationError(
            "expires_at must be at most 30 days from now.", code="expiry_invalid", param="expires_at"
        )
    return expires_at.astimezone(UTC)


def _validate_customer(customer: CustomerIn | None) -> CustomerIn:
    customer = customer or CustomerIn()
    for name, limit in CUSTOMER_LIMITS.items():
        value = getattr(customer, name) or ""
        if not isinstance(value, str) or len(value) > limit:
            raise ValidationError(
                f"customer.{name} must be a string of at most {limit} characters.", param=f"customer.{name}"
            )
    return customer


def _validate_external_id(external_id: str | None) -> str | None:
    if external_id is None:
        return None
    if not isinstance(external_id, str) or not external_id.strip() or len(external_id) > EXTERNAL_ID_MAX:
        raise ValidationError(f"external_id must be 1–{EXTERNAL_ID_MAX} characters.", param="external_id")
    return external_id


def _validate_description(description: str | None) -> str:
    description = description or ""
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX:
        raise ValidationError(
            f"description allows at most {DESCRIPTION_MAX} characters.", param="description"
        )
    return description


def _gateway_ref(mode: str, gateway: str | None) -> str:
    if gateway is None:
        if mode != Mode.TEST:
            raise ValidationError("gateway is required.", code="parameter_missing", param="gateway")
        return "sandbox"  # every merchant has a test-mode sandbox account
    return gateway


def _resolve_account(*, merchant: Merchant, mode: str, gateway: str | None, currency: str):
    return gateway_account_resolve(
        merchant=merchant, mode=mode, ref=_gateway_ref(mode, gateway), currency=currency
    )


@dataclass(frozen=True)
class _Computed:
    lines: list[calc.LineCalc]
    totals: calc.Totals
    installments: list[calc.InstallmentCalc]
    plan: InstallmentPlan | None
    fee_percent: object
    fee_fixed_minor: int


def _compute(
    *,
    account,
    currency: str,
    line_items: Sequence[LineItemIn],
    plan: InstallmentPlan | None,
    expires_at: datetime,
    fee: tuple | None = None,
) -> _Computed:
    """`fee`: (percent, fixed minor units) when the caller already read it with the account."""
    lines = calc.parse_line_items(line_items, currency)
    fee_percent, fee_fixed = fee or gateway_fee_for(account=account, currency=currency)
    totals = calc.compute_totals(lines, fee_percent=fee_percent, fee_fixed_minor=fee_fixed)
    if totals.total_minor <= 0:
        raise ValidationError(
            "The invoice total must be greater than zero.", code="amount_invalid", param="line_items"
        )
    if totals.total_minor > MAX_TOTAL_MINOR:
        raise ValidationError("The invoice total is too large.", code="amount_too_large", param="line_items")
    installments = calc.compute_installments(totals, plan, first_due=expires_at.astimezone(UTC).date())
    return _Computed(lines, totals, installments, plan, fee_percent, fee_fixed)


def _lapse_time(expires_at: datetime, installments: Sequence[Installment], *, received: bool) -> datetime:
    """expires_at; for an installment plan that has received money, the end of the last due date if later."""
    if not received or len(installments) < 2:
        return expires_at
    last_due = max(inst.due_date for inst in installments)
    end_of_last_due = datetime.combine(last_due + timedelta(days=1), time.min, tzinfo=UTC)
    return max(expires_at, end_of_last_due)


def _child_rows(invoice: Invoice, computed: _Computed) -> tuple[list[LineItem], list[Installment]]:
    lines = [
        LineItem(
            invoice=invoice,
            position=line.position,
            name=line.name,
            quantity=line.quantity,
            unit_price_minor=line.unit_price_minor,
            tax_rate=line.tax_rate,
            subtotal_minor=line.subtotal_minor,
            tax_minor=line.tax_minor,
        )
        for line in computed.lines
    ]
    installments = [
        Installment(
            invoice=invoice,
            number=inst.number,
            amount_minor=inst.amount_minor,
            tax_share_minor=inst.tax_share_minor,
            fee_share_minor=inst.fee_share_minor,
            due_date=inst.due_date,
        )
        for inst in computed.installments
    ]
    return lines, installments


def _write_children(invoice: Invoice, computed: _Computed) -> None:
    lines, installments = _child_rows(invoice, computed)
    lines = LineItem.objects.bulk_create(lines)
    installments = Installment.objects.bulk_create(installments)
    _cache_related(invoice, line_items=lines, installments=installments)


def _insert_new_invoice(invoice: Invoice, computed: _Computed) -> None:
    """INSERT a new invoice, its line items and installments in ONE statement (the same rows as
    `invoice.save(force_insert=True)` + `_write_children`; no per-call ORM compilation, one round trip)."""
    lines, installments = _child_rows(invoice, computed)
    params = [
        *row_values(insert_for(Invoice), invoice),
        *column_arrays(insert_for(LineItem), lines),
        *column_arrays(insert_for(Installment), installments),
    ]
    with prepared_cursor() as cursor:
        cursor.execute(_insert_new_invoice_sql(), params)
        ids = {(kind, key): pk for kind, key, pk in cursor.fetchall()}
    for obj in (invoice, *lines, *installments):
        mark_saved(obj)
    for line in lines:
        line.pk = ids[(0, line.position)]
    for installment in installments:
        installment.pk = ids[(1, installment.number)]
    _cache_related(invoice, line_items=lines, installments=installments)


@functools.cache
def _insert_new_invoice_sql() -> str:
    """WITH i AS (INSERT invoice VALUES (…)), l AS (INSERT lines SELECT * FROM unnest(arrays) RETURNING position,
    id), n AS (INSERT installments … RETURNING number, id) SELECT 0, position, id … UNION ALL SELECT 1, number, id
    …: data-modifying CTEs all run, and the children's foreign keys to the invoice are checked at commit
    (deferred). One text whatever the number of lines/installments (one prepared statement, parameters within
    psycopg's query cache limits). Built from model metadata (paytrust.sql): only quoted identifiers are
    interpolated, values are bound parameters."""
    invoice = insert_for(Invoice)
    quote = connection.ops.quote_name
    ctes = [f"new_invoice AS (INSERT INTO {invoice.table} {invoice.columns} VALUES {invoice.row})"]  # noqa: S608
    selects = []
    for kind, name, insert, key in (
        (0, "new_lines", insert_for(LineItem), "position"),
        (1, "new_installments", insert_for(Installment), "number"),
    ):
        ctes.append(
            f"{name} AS (INSERT INTO {insert.table} {insert.columns} {insert.unnest} "  # noqa: S608
            f"RETURNING {quote(key)}, {quote('id')})"
        )
        selects.append(f"SELECT {kind}, {quote(key)}::integer, {quote('id')} FROM {name}")  # noqa: S608
    return f"WITH {', '.join(ctes)} " + " UNION ALL ".join(selects)


def _apply_totals(invoice: Invoice, computed: _Computed) -> None:
    totals = computed.totals
    invoice.subtotal_minor = totals.subtotal_minor
    invoice.tax_total_minor = totals.tax_total_minor
    invoice.service_fee_minor = totals.service_fee_minor
    invoice.total_minor = totals.total_minor
    invoice.fee_percent = computed.fee_percent
    invoice.fee_fixed_minor = computed.fee_fixed_minor
    invoice.installment_plan = computed.plan.as_json() if computed.plan else None


def _external_id_conflict(exc: IntegrityError) -> bool:
    return "invoice_external_id_unique" in str(exc)


# ---- create / supplementary ----------------------------------------------------------------------------------


def invoice_create(
    *,
    merchant: Merchant,
    mode: str,
    currency: str,
    line_items: Sequence[LineItemIn],
    gateway: str | None = None,
    external_id: str | None = None,
    description: str = "",
    customer: CustomerIn | None = None,
    expires_at: datetime | None = None,
    installments: InstallmentsIn | None = None,
    metadata: dict | None = None,
    parent_invoice: Invoice | None = None,
    now: datetime | None = None,
) -> Invoice:
    """Create a draft invoice with its line items and installments; records `invoice.created`.

    Validates everything before writing (400 with `param` on bad input, nothing written); a duplicate
    `external_id` for the merchant and mode gives 409 `external_id_duplicate`. `gateway` is a gateway name or a
    `gwa_` id (default in test mode: the merchant's sandbox account). Returns the invoice with its line items,
    installments and supplementary invoices cached (rendering it needs no query).
    """
    now = now or timezone.now()
    cur = money.get_currency(currency)
    resolved = gateway_account_with_fee(
        merchant=merchant, mode=mode, ref=_gateway_ref(mode, gateway), currency=cur.code
    )
    account = resolved.account
    external_id = _validate_external_id(external_id)
    description = _validate_description(description)
    customer = _validate_customer(customer)
    expires_at = _validate_expiry(expires_at, now)
    plan = calc.parse_installment_plan(installments, cur.code)
    computed = _compute(
        account=account,
        currency=cur.code,
        line_items=line_items,
        plan=plan,
        expires_at=expires_at,
        fee=(resolved.fee_percent, resolved.fee_fixed_minor),
    )

    invoice = Invoice(
        merchant=merchant,
        mode=mode,
        status=InvoiceStatus.DRAFT,
        currency=cur.code,
        gateway_account=account,
        gateway=account.gateway,
        external_id=external_id,
        description=description,
        customer_name=customer.name or "",
        customer_email=customer.email or "",
        customer_phone=customer.phone or "",
        expires_at=expires_at,
        lapses_at=expires_at,
        metadata=metadata or {},
        parent_invoice=parent_invoice,
    )
    _apply_totals(invoice, computed)
    try:
        with transaction.atomic():
            _insert_new_invoice(invoice, computed)
            _cache_related(invoice, supplementary_invoices=[])
            _emit(invoice, "invoice.created", data=invoice_render(invoice, payments=[]))
    except IntegrityError as exc:
        if _external_id_conflict(exc):
            raise Conflict(
                f"An invoice with external_id {external_id!r} already exists.",
                code="external_id_duplicate",
                param="external_id",
            )
        raise
    return invoice


def invoice_create_supplementary(
    *,
    merchant: Merchant,
    mode: str,
    parent_id: str,
    line_items: Sequence[LineItemIn],
    currency: str | None = None,
    gateway: str | None = None,
    customer: CustomerIn | None = None,
    external_id: str | None = None,
    description: str = "",
    expires_at: datetime | None = None,
    installments: InstallmentsIn | None = None,
    metadata: dict | None = None,
    now: datetime | None = None,
) -> Invoice:
    """A new invoice linked to `parent_id` (its `parent_invoice`; the parent lists it in
    `supplementary_invoices`). Currency, customer and gateway account are inherited from the parent; if the body
    names them they must match (400 `supplementary_mismatch`). A void parent gives 409 `invoice_voided`."""
    parent = (
        Invoice.objects.select_related("gateway_account")
        .filter(merchant=merchant, mode=mode, pk=parent_id)
        .first()
    )
    if parent is None:
        raise NotFound(f"No such invoice: {parent_id!r}.", param="id")
    if parent.status == InvoiceStatus.VOID:
        raise Conflict("A void invoice cannot have supplementary invoices.", code="invoice_voided")
    if currency is not None and currency != parent.currency:
        raise ValidationError(
            f"A supplementary invoice inherits the currency {parent.currency}.",
            code="supplementary_mismatch",
            param="currency",
        )
    parent_customer = CustomerIn(parent.customer_name, parent.customer_email, parent.customer_phone)
    if customer is not None and _customer_tuple(customer) != _customer_tuple(parent_customer):
        raise ValidationError(
            "A supplementary invoice inherits the parent's customer.",
            code="supplementary_mismatch",
            param="customer",
        )
    if gateway is not None and gateway not in (parent.gateway, parent.gateway_account_id):
        raise ValidationError(
            f"A supplementary invoice inherits the gateway {parent.gateway}.",
            code="supplementary_mismatch",
            param="gateway",
        )
    return invoice_create(
        merchant=merchant,
        mode=mode,
        currency=parent.currency,
        gateway=parent.gateway_account_id,
        customer=parent_customer,
        line_items=line_items,
        external_id=external_id,
        description=description,
        expires_at=expires_at,
        installments=installments,
        metadata=metadata,
        parent_invoice=parent,
        now=now,
    )


def _customer_tuple(customer: CustomerIn) -> tuple[str, str, str]:
    return (customer.name or "", customer.email or "", customer.phone or "")


# ---- draft edits ---------------------------------------------------------------------------------------------

# Fields that define what is charged; they can never change once a payment has been initiated.
_AMOUNT_FIELDS = ("currency", "gateway", "line_items", "installments")


def invoice_update(
    *,
    merchant: Merchant,
    mode: str,
    invoice_id: str,
    currency: str | _Unset = UNSET,
    gateway: str | _Unset = UNSET,
    line_items: Sequence[LineItemIn] | _Unset = UNSET,
    installments: InstallmentsIn | None | _Unset = UNSET,
    expires_at: datetime | None | _Unset = UNSET,
    customer: CustomerIn | None | _Unset = UNSET,
    external_id: str | None | _Unset = UNSET,
    description: str | _Unset = UNSET,
    metadata: dict | _Unset = UNSET,
    now: datetime | None = None,
) -> Invoice:
    """Edit an invoice. Only the arguments passed (not UNSET) change; amounts are recomputed.

    - `metadata` can be changed in any status.
    - Everything else only while the invoice is a draft: once `payment_initiated_at` is set any such change
      gives 409 `invoice_immutable`; an expired or void draft gives 409 `invoice_not_editable`. Nothing is
      written in either case.
    - Changing `currency` re-reads the stored prices and custom installment amounts in the new currency (400
      with `param` if they do not fit it); `customer` is replaced as a whole; `installments=None` removes a plan;
      `expires_at=None` resets the default (now + 24 h).
    """
    now = now or timezone.now()
    changes = {
        name: value
        for name, value in {
            "currency": currency,
            "gateway": gateway,
            "line_items": line_items,
            "installments": installments,
            "expires_at": expires_at,
            "customer": customer,
            "external_id": external_id,
            "description": description,
            "metadata": metadata,
        }.items()
        if value is not UNSET
    }
    with transaction.atomic():
        invoice = _lock(invoice_id, merchant=merchant, mode=mode)
        domain = [name for name in changes if name != "metadata"]
        if domain:
            if invoice.payment_initiated_at is not None:
                raise Conflict(
                    "A payment has been initiated for this invoice: its amounts, items, currency, installments "
                    "and gateway can no longer change. Create a supplementary invoice instead.",
                    code="invoice_immutable",
                    param=domain[0],
                )
            if invoice.status != InvoiceStatus.DRAFT or is_overdue(invoice, now):
                raise Conflict(
                    f"Only draft invoices can be edited; this one is {'expired' if is_overdue(invoice, now) else invoice.status}.",
                    code="invoice_not_editable",
                )
            _recompute_draft(invoice, changes, now=now)
        if "metadata" in changes:
            invoice.metadata = changes["metadata"] or {}
        if changes:
            try:
                with transaction.atomic():
                    invoice.save()
            except IntegrityError as exc:
                if _external_id_conflict(exc):
                    raise Conflict(
                        "An invoice with this external_id already exists.",
                        code="external_id_duplicate",
                        param="external_id",
                    )
                raise
    return with_relations(Invoice.objects.filter(pk=invoice.pk)).get()


def _recompute_draft(invoice: Invoice, changes: dict, *, now: datetime) -> None:
    old_currency = invoice.currency
    new_currency = money.get_currency(changes.get("currency", old_currency)).code
    gateway_ref = changes.get("gateway", invoice.gateway_account_id)
    account = _resolve_account(
        merchant=invoice.merchant, mode=invoice.mode, gateway=gateway_ref, currency=new_currency
    )

    if "line_items" in changes:
        line_items = changes["line_items"]
    else:  # keep the stored lines; re-read their prices in the (possibly new) currency
        line_items = [
            LineItemIn(
                name=line.name,
                quantity=line.quantity,
                unit_price=money.format_amount(line.unit_price_minor, old_currency),
                tax_rate=line.tax_rate,
            )
            for line in LineItem.objects.filter(invoice=invoice).order_by("position")
        ]

    if "installments" in changes:
        plan = calc.parse_installment_plan(changes["installments"], new_currency)
    else:
        plan = InstallmentPlan.from_json(invoice.installment_plan)
        if plan is not None and plan.amounts is not None and new_currency != old_currency:
            plan = calc.parse_installment_plan(
                InstallmentsIn(
                    count=plan.count,
                    amounts=[money.format_amount(a, old_currency) for a in plan.amounts],
                    due_dates=plan.due_dates,
                ),
                new_currency,
            )

    expires_at = (
        _validate_expiry(changes["expires_at"], now) if "expires_at" in changes else invoice.expires_at
    )
    computed = _compute(
        account=account, currency=new_currency, line_items=line_items, plan=plan, expires_at=expires_at
    )
    if "customer" in changes:
        customer = _validate_customer(changes["customer"])
        invoice.customer_name = customer.name or ""
        invoice.customer_email = customer.email or ""
        invoice.customer_phone = customer.phone or ""
    if "external_id" in changes:
        invoice.external_id = _validate_external_id(changes["external_id"])
    if "description" in changes:
        invoice.description = _validate_description(changes["description"])

    invoice.currency = new_currency
    invoice.gateway_account = account
    invoice.gateway = account.gateway
    invoice.expires_at = expires_at
    invoice.lapses_at = expires_at
    _apply_totals(invoice, computed)
    LineItem.objects.filter(invoice=invoice).delete()
    Installment.objects.filter(invoice=invoice).delete()
    _write_children(invoice, computed)


# ---- void / expire -------------------------------------------------------------------------------------------


# ---- payments hook: a voided invoice closes its open gateway payments -----------------------------------------
# The payments app owns payment rows. It registers at start-up (AppConfig.ready) a function that
# `invoice_void` calls inside its transaction, so the invoice's open payments stop taking money
# (payments.services.payments_close_for_invoice).
InvoiceVoidedHook = Callable[[Invoice, datetime], object]
_invoice_voided_hook: InvoiceVoidedHook | None = None


def register_invoice_voided_hook(hook: InvoiceVoidedHook | None) -> None:
    global _invoice_voided_hook
    _invoice_voided_hook = hook


def invoice_void(*, merchant: Merchant, mode: str, invoice_id: str, now: datetime | None = None) -> Invoice:
    """draft/pending -> void (no money received). Anything else gives 409; records `invoice.voided`. Its open
    gateway payments are closed in the same transaction (see `register_invoice_voided_hook`)."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = _lock(invoice_id, merchant=merchant, mode=mode)
        if is_overdue(invoice, now):
            raise Conflict("The invoice has expired.", code="invoice_expired")
        if invoice.amount_paid_minor > 0 or invoice.status not in (
            InvoiceStatus.DRAFT,
            InvoiceStatus.PENDING,
        ):
            raise Conflict(
                f"An invoice that is {invoice.status} cannot be voided.", code="invoice_not_voidable"
            )
        events: list[str] = []
        _set_status(invoice, InvoiceStatus.VOID, events)
        invoice.voided_at = now
        invoice.save(update_fields=["status", "voided_at", "updated_at"])
        for event in events:
            _emit(invoice, event)
        if _invoice_voided_hook is not None:
            _invoice_voided_hook(invoice, now)
    return with_relations(Invoice.objects.filter(pk=invoice.pk)).get()


def invoice_expire(*, invoice_id: str, now: datetime | None = None) -> bool:
    """Move one overdue open invoice to `expired` (records `invoice.expired`). Idempotent: returns False and
    changes nothing when the invoice is not (or no longer) overdue, or is locked by a payment operation right now
    (the next run takes it)."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("merchant")
            .filter(pk=invoice_id)
            .first()
        )
        if invoice is None or not is_overdue(invoice, now):
            return False
        _expire_locked(invoice, now)
    return True


def _expire_locked(invoice: Invoice, now: datetime) -> None:
    events: list[str] = []
    _set_status(invoice, InvoiceStatus.EXPIRED, events)
    invoice.expired_at = now
    invoice.save(update_fields=["status", "expired_at", "updated_at"])
    for event in events:
        _emit(invoice, event)


def invoice_expire_overdue(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Expire every open invoice whose lapse time has passed, one short transaction each. Returns the count.
    Safe to run concurrently with itself and with payments (row locks; skip what is locked)."""
    now = now or timezone.now()
    expired = 0
    last: tuple[datetime, str] | None = None
    while True:
        qs = Invoice.objects.filter(status__in=OPEN_STATUSES, lapses_at__lte=now)
        if last is not None:
            qs = qs.filter(Q(lapses_at__gt=last[0]) | Q(lapses_at=last[0], id__gt=last[1]))
        batch = list(qs.order_by("lapses_at", "id").values_list("lapses_at", "id")[:batch_size])
        if not batch:
            return expired
        for _lapses_at, pk in batch:
            if invoice_expire(invoice_id=pk, now=now):
                expired += 1
        last = batch[-1]


# ---- payments contract ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentTarget:
    """What a new payment is for: the locked invoice, the installment and what that installment still owes."""

    invoice: Invoice
    installment: Installment
    amount_minor: int


def invoice_check_installment_payable(
    *, invoice: Invoice, installment_number: int | None = None
) -> Installment:
    """The installment a payment may be initiated for: `installment_number`, or by default the lowest-numbered
    installment not fully paid. Only that lowest unpaid one is payable: any other gives 409
    `installment_out_of_order`; a number the invoice does not have gives 400 (`param` "installment"); a fully
    paid invoice gives 409 `invoice_already_paid`. Call it with the invoice locked (as
    `invoice_mark_payment_initiated` does) for a decision that stays true until commit."""
    installments = list(Installment.objects.filter(invoice=invoice).order_by("number"))
    next_due = next((inst for inst in installments if inst.status != InstallmentStatus.PAID), None)
    if installment_number is not None:
        if (
            isinstance(installment_number, bool)
            or not isinstance(installment_number, int)
            or not (1 <= installment_number <= len(installments))
        ):
            raise ValidationError(
                f"installment must be between 1 and {len(installments)}.",
                code="installment_invalid",
                param="installment",
            )
    if next_due is None:
        raise Conflict("The invoice is fully paid.", code="invoice_already_paid")
    if installment_number is not None and installment_number != next_due.number:
        raise Conflict(
            f"Installment {next_due.number} must be paid before installment {installment_number}.",
            code="installment_out_of_order",
            param="installment",
        )
    return next_due


def invoice_mark_payment_initiated(
    *,
    invoice_id: str,
    installment_number: int | None = None,
    nowait: bool = False,
    now: datetime | None = None,
) -> PaymentTarget:
    """Call inside the payments work's transaction before recording a payment attempt.

    Locks the invoice row (`nowait=True`: a concurrent holder gives 409 `payment_in_progress`), checks it can take
    a payment now (draft, pending or partially_paid and not past its lapse time: otherwise 409 `invoice_expired`,
    `invoice_already_paid`, `invoice_not_payable`), checks the installment with
    `invoice_check_installment_payable`, and on the first call sets `payment_initiated_at` and moves
    draft -> pending (records `invoice.pending`); from then on amounts, items, currency, installments and gateway
    are immutable. Calling again (a retry, the next installment) changes nothing on the invoice.
    Tenant scoping is the caller's job (it resolved the invoice through `invoices.selectors.invoice_get`).
    An overdue invoice is moved to `expired` in its own transaction first when no outer transaction is open.
    """
    now = now or timezone.now()
    with transaction.atomic():
        invoice = _lock(invoice_id, nowait=nowait)
        overdue = is_overdue(invoice, now)
        if overdue:
            _expire_locked(invoice, now)  # kept when we own the transaction (rolled back with an outer one)
        else:
            return _initiate_locked(invoice, installment_number, now)
    raise Conflict("The invoice has expired.", code="invoice_expired")


def _initiate_locked(invoice: Invoice, installment_number: int | None, now: datetime) -> PaymentTarget:
    if invoice.status == InvoiceStatus.PAID:
        raise Conflict("The invoice is fully paid.", code="invoice_already_paid")
    if invoice.status == InvoiceStatus.EXPIRED:
        raise Conflict("The invoice has expired.", code="invoice_expired")
    if invoice.status not in OPEN_STATUSES:
        raise Conflict(f"An invoice that is {invoice.status} cannot be paid.", code="invoice_not_payable")
    installment = invoice_check_installment_payable(invoice=invoice, installment_number=installment_number)
    if invoice.payment_initiated_at is None:
        events: list[str] = []
        invoice.payment_initiated_at = now
        _set_status(invoice, InvoiceStatus.PENDING, events)
        invoice.save(update_fields=["payment_initiated_at", "status", "updated_at"])
        for event in events:
            _emit(invoice, event)
    return PaymentTarget(invoice=invoice, installment=installment, amount_minor=installment.amount_due_minor)


@dataclass(frozen=True)
class PaymentApplicationResult:
    application: PaymentApplication
    invoice: Invoice
    replayed: bool  # True when this payment_id had already been applied (nothing changed this time)


def _allocation_order(installments: list[Installment], target: int) -> list[Installment]:
    index = next(i for i, inst in enumerate(installments) if inst.number == target)
    return installments[index:] + installments[:index]


def _carried_by(invoice: Invoice, installments: list[Installment], allocations: list[dict]) -> calc.Carried:
    """What a payment allocated as `allocations` carries of the invoice's tax, fee and taxable base (reporting
    facts; rules in `calc.carried_by_payment`). Read under the invoice lock: earlier applications are stable."""
    if not allocations:
        return calc.Carried(tax_minor=0, fee_minor=0, taxable_minor=0, by_rate=())
    earlier = list(
        PaymentApplication.objects.filter(invoice=invoice).values_list(
            "allocations", "tax_minor", "taxable_minor"
        )
    )
    lines = LineItem.objects.filter(invoice=invoice).values_list("tax_rate", "subtotal_minor", "tax_minor")
    return calc.carried_by_payment(
        installments=[
            calc.InstallmentShares(inst.number, inst.amount_minor, inst.tax_share_minor, inst.fee_share_minor)
            for inst in installments
        ],
        rates=calc.rate_bases(list(lines)),
        earlier_allocations=[row[0] for row in earlier],
        allocations=allocations,
        earlier_tax_minor=sum(row[1] for row in earlier),
        earlier_taxable_minor=sum(row[2] for row in earlier),
    )


def invoice_apply_payment(
    *,
    invoice_id: str,
    payment_id: str,
    amount_minor: int,
    currency: str,
    installment_number: int | None,
    paid_at: datetime,
) -> PaymentApplicationResult:
    """Apply money received (a succeeded payment) to the invoice. Idempotent per `payment_id`.

    Under the invoice row lock: allocates `amount_minor` to the target installment (`installment_number`, default
    the lowest unpaid), then the following installments in order, then any earlier unpaid ones; what is left
    above the invoice's amount due is recorded as overpayment. Installments move unpaid -> partially_paid ->
    paid (`installment.paid` per installment completed); the invoice moves pending -> partially_paid -> paid
    (`invoice.partially_paid`, `invoice.paid`). One PaymentApplication row records payment_id, amount, the
    allocation per installment and the overpaid part, and - the reporting facts - the merchant, mode, gateway,
    the tax / service fee / taxable base the payment carries and their split per tax rate
    (PaymentApplicationTax rows; rules in `invoices.calc.carried_by_payment`).

    - The same payment_id again returns the stored result (`replayed=True`) and changes nothing; with a different
      invoice, amount or currency it gives 409 `payment_application_mismatch`.
    - `currency` must be the invoice's (else 422 `currency_mismatch`, nothing written).
    - The invoice must have had a payment initiated (else 409 `invoice_not_initiated`).
    - Money is never refused: for an invoice that is already paid, void or expired - or whose lapse time passed
      before `paid_at` (it is expired first, recording `invoice.expired`) - the whole amount is recorded as
      overpayment (unapplied, for refund); nothing moves backwards.
    """
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValidationError("amount_minor must be a positive integer.", param="amount")
    if not isinstance(payment_id, str) or not payment_id:
        raise ValidationError("payment_id is required.", param="payment_id")
    if paid_at is None or paid_at.tzinfo is None:
        raise ValidationError("paid_at must be a timezone-aware datetime.", param="paid_at")
    now = timezone.now()
    with transaction.atomic():
        invoice = _lock(invoice_id)
        existing = PaymentApplication.objects.filter(payment_id=payment_id).first()
        if existing is not None:
            if (existing.invoice_id, existing.amount_minor, existing.currency) != (
                invoice.id,
                amount_minor,
                currency,
            ):
                raise Conflict(
                    f"Payment {payment_id} was already applied with a different invoice, amount or currency.",
                    code="payment_application_mismatch",
                )
            return PaymentApplicationResult(application=existing, invoice=invoice, replayed=True)
        if currency != invoice.currency:
            raise Unprocessable(
                f"Payment currency {currency} does not match the invoice currency {invoice.currency}.",
                code="currency_mismatch",
                param="currency",
            )
        if invoice.payment_initiated_at is None:
            raise Conflict("No payment was initiated for this invoice.", code="invoice_not_initiated")

        installments = list(
            Installment.objects.select_for_update().filter(invoice=invoice).order_by("number")
        )
        if installment_number is not None and not any(i.number == installment_number for i in installments):
            raise ValidationError(
                f"installment must be between 1 and {len(installments)}.", param="installment"
            )
        events: list[str] = []
        if invoice.status in OPEN_STATUSES and invoice.lapses_at <= paid_at:
            check_transition(invoice.status, InvoiceStatus.EXPIRED)
            invoice.status = InvoiceStatus.EXPIRED
            invoice.expired_at = now
            events.append(STATUS_EVENTS[InvoiceStatus.EXPIRED])

        allocations: list[dict] = []
        completed: list[Installment] = []
        remaining = amount_minor
        if invoice.status in (InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID):
            unpaid = [inst for inst in installments if inst.status != InstallmentStatus.PAID]
            target = installment_number if installment_number is not None else unpaid[0].number
            for inst in _allocation_order(installments, target):
                if remaining == 0:
                    break
                take = min(remaining, inst.amount_due_minor)
                if take == 0:
                    continue
                remaining -= take
                inst.amount_paid_minor += take
                new_status = (
                    InstallmentStatus.PAID
                    if inst.amount_paid_minor == inst.amount_minor
                    else InstallmentStatus.PARTIALLY_PAID
                )
                check_installment_transition(inst.status, new_status)
                inst.status = new_status
                if new_status == InstallmentStatus.PAID:
                    inst.paid_at = paid_at
                    completed.append(inst)
                allocations.append({"number": inst.number, "amount": take})
            applied = amount_minor - remaining
            changed = [i for i in installments if any(a["number"] == i.number for a in allocations)]
            Installment.objects.bulk_update(changed, ["amount_paid_minor", "status", "paid_at"])
            invoice.amount_paid_minor += applied
            if invoice.amount_paid_minor == invoice.total_minor:
                _set_status(invoice, InvoiceStatus.PAID, events)
                invoice.paid_at = paid_at
            else:
                _set_status(invoice, InvoiceStatus.PARTIALLY_PAID, events)
                invoice.lapses_at = _lapse_time(invoice.expires_at, installments, received=True)
        else:
            applied = 0
        overpaid = amount_minor - applied
        invoice.overpaid_minor += overpaid
        invoice.save(
            update_fields=[
                "status",
                "amount_paid_minor",
                "overpaid_minor",
                "paid_at",
                "expired_at",
                "lapses_at",
                "updated_at",
            ]
        )
        carried = _carried_by(invoice, installments, allocations)
        try:
            with transaction.atomic():
                application = PaymentApplication.objects.create(
                    payment_id=payment_id,
                    invoice=invoice,
                    merchant_id=invoice.merchant_id,
                    mode=invoice.mode,
                    gateway=invoice.gateway,
                    currency=currency,
                    amount_minor=amount_minor,
                    applied_minor=applied,
                    overpaid_minor=overpaid,
                    tax_minor=carried.tax_minor,
                    fee_minor=carried.fee_minor,
                    taxable_minor=carried.taxable_minor,
                    target_installment=installment_number,
                    allocations=allocations,
                    paid_at=paid_at,
                )
                PaymentApplicationTax.objects.bulk_create(
                    PaymentApplicationTax(
                        application=application,
                        merchant_id=invoice.merchant_id,
                        mode=invoice.mode,
                        gateway=invoice.gateway,
                        currency=currency,
                        paid_at=paid_at,
                        tax_rate=row.tax_rate,
                        taxable_minor=row.taxable_minor,
                        tax_minor=row.tax_minor,
                    )
                    for row in carried.by_rate
                )
        except IntegrityError:
            # Same payment id applied concurrently to another invoice (this invoice's lock serialises the rest).
            raise Conflict(
                f"Payment {payment_id} was already applied to another invoice.",
                code="payment_application_mismatch",
            )
        if overpaid and invoice.status not in (InvoiceStatus.PAID,):
            logger.warning(
                "payment applied to a closed invoice recorded as overpayment",
                extra={"invoice": invoice.id, "payment": payment_id, "status": invoice.status},
            )
        invoice = with_relations(Invoice.objects.select_related("merchant").filter(pk=invoice.pk)).get()
        invoice_data = invoice_render(invoice)
        for inst in completed:
            data = installment_representation(inst, invoice.currency)
            data.update({"object": "installment", "invoice": invoice_data})
            _emit(invoice, "installment.paid", data=data)
        for event in events:
            _emit(invoice, event, data=invoice_data)
    return PaymentApplicationResult(application=application, invoice=invoice, replayed=False)
