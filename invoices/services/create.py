"""Creating invoices: a new invoice (the API's hot path: one INSERT statement for the invoice, its line items and
its installments) and a supplementary invoice linked to a parent."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ParamSpec

from django.db import IntegrityError
from django.utils import timezone

from gateways.selectors import gateway_account_with_fee
from invoices import calc
from invoices.calc import CustomerIn, InstallmentsIn, LineItemIn
from invoices.models import Installment, Invoice, InvoiceStatus, LineItem
from invoices.render import invoice_representation
from invoices.selectors import CREATED_SNAPSHOT
from invoices.services._inputs import (
    Computed,
    apply_totals,
    compute,
    external_id_conflict,
    gateway_ref,
    validate_customer,
    validate_description,
    validate_expiry,
    validate_external_id,
)
from invoices.services._support import cache_related
from merchants.models import Merchant
from paytrust import money
from paytrust.errors import Conflict, NotFound, ValidationError
from paytrust.sql import (
    Cte,
    insert_for,
    json_rows,
    mark_saved,
    new_instance,
    prepared_cursor,
    statement_transaction,
)
from webhooks.outbound import services as webhook_services

P = ParamSpec("P")


@dataclass(frozen=True)
class NewInvoice:
    """An invoice validated, computed and rendered but not yet written (`invoice_prepare`): `invoice` is the
    unsaved instance, its representation already rendered (`invoices.selectors.invoice_render_created`), so a
    caller can build what it stores with it before `invoice_insert` writes both in one statement."""

    invoice: Invoice
    rows: list  # the invoice's, its line items' and its installments' rows (`json_rows`)
    event: webhook_services.PendingEvent


def invoice_prepare(
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
) -> NewInvoice:
    """Validate and compute a new draft invoice, its line items, installments and `invoice.created` event, and
    render it; writes nothing (reads the gateway account and its fee). Validates everything before writing (400
    with `param` on bad input). `gateway` is a gateway name or a `gwa_` id (default in test mode: the merchant's
    sandbox account). Then `invoice_insert`."""
    now = now or timezone.now()
    cur = money.get_currency(currency)
    resolved = gateway_account_with_fee(
        merchant=merchant, mode=mode, ref=gateway_ref(mode, gateway), currency=cur.code
    )
    account = resolved.account
    external_id = validate_external_id(external_id)
    description = validate_description(description)
    customer = validate_customer(customer)
    expires_at = validate_expiry(expires_at, now)
    plan = calc.parse_installment_plan(installments, cur.code)
    computed = compute(
        account=account,
        currency=cur.code,
        line_items=line_items,
        plan=plan,
        expires_at=expires_at,
        fee=(resolved.fee_percent, resolved.fee_fixed_minor),
    )

    invoice = new_instance(
        Invoice,
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
    apply_totals(invoice, computed)
    return _rendered(invoice, computed)


def invoice_insert(new: NewInvoice, *, also: Sequence[Cte] = ()) -> Invoice:
    """Write a prepared invoice: the invoice, its line items, its installments, its `invoice.created` event, the
    event's deliveries and their jobs, and the caller's `also` CTEs (the API's stored Idempotency-Key replay) in
    ONE statement, which in autocommit is a transaction on its own (no BEGIN/COMMIT round trips; inside a
    caller's transaction, a savepoint). A duplicate `external_id` for the merchant and mode gives 409
    `external_id_duplicate` and writes nothing. Returns the invoice; its line items and installments are read
    again if asked for (prefetch-caching them cost ~5 % of a creation's CPU)."""
    invoice = new.invoice
    params = [*new.rows, *new.event.params]
    for cte in also:
        params.extend(cte.params)
    try:
        with statement_transaction(), prepared_cursor() as cursor:
            cursor.execute(_insert_new_invoice_sql(tuple((cte.sql, cte.check) for cte in also)), params)
            cursor.fetchall()
    except IntegrityError as exc:
        if external_id_conflict(exc):
            raise Conflict(
                f"An invoice with external_id {invoice.external_id!r} already exists.",
                code="external_id_duplicate",
                param="external_id",
            )
        raise
    mark_saved(invoice)  # the children are not kept: the snapshot, rendered from them, is what is shown
    webhook_services.event_recorded(new.event)
    return invoice


def invoice_prepare_supplementary(
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
) -> NewInvoice:
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
    parent_customer = CustomerIn(parent.customer_name, parent.customer_email, parent.customer_phone)
    _check_inherited(parent, currency=currency, customer=customer, gateway=gateway)
    return invoice_prepare(
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


def _prepared_then_inserted(prepare: Callable[P, NewInvoice], doc: str) -> Callable[P, Invoice]:
    """`prepare` followed by `invoice_insert`, with `prepare`'s typed keyword-only signature (not written twice)."""

    def create(*args: P.args, **kwargs: P.kwargs) -> Invoice:
        return invoice_insert(prepare(*args, **kwargs))

    create.__name__ = create.__qualname__ = prepare.__name__.replace("_prepare", "_create")
    create.__doc__ = doc
    create.__signature__ = inspect.signature(prepare).replace(return_annotation=Invoice)
    return create


invoice_create = _prepared_then_inserted(
    invoice_prepare,
    """Create a draft invoice with its line items and installments; records `invoice.created`: `invoice_prepare`
    then `invoice_insert` (the keyword arguments are `invoice_prepare`'s).""",
)
invoice_create_supplementary = _prepared_then_inserted(
    invoice_prepare_supplementary,
    "A new invoice linked to a parent: `invoice_prepare_supplementary` then `invoice_insert`.",
)


def _check_inherited(
    parent: Invoice, *, currency: str | None, customer: CustomerIn | None, gateway: str | None
) -> None:
    """What a supplementary invoice inherits may be repeated in the body, never changed."""
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


def _customer_tuple(customer: CustomerIn) -> tuple[str, str, str]:
    return (customer.name or "", customer.email or "", customer.phone or "")


# ---- rows ----------------------------------------------------------------------------------------------------


def child_rows(invoice: Invoice, computed: Computed) -> tuple[list[LineItem], list[Installment]]:
    lines = [
        new_instance(
            LineItem,
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
        new_instance(
            Installment,
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


def write_children(invoice: Invoice, computed: Computed) -> None:
    """INSERT the line items and installments of an invoice that exists (a draft being edited)."""
    lines, installments = child_rows(invoice, computed)
    lines = LineItem.objects.bulk_create(lines)
    installments = Installment.objects.bulk_create(installments)
    cache_related(invoice, line_items=lines, installments=installments)


def _rendered(invoice: Invoice, computed: Computed) -> NewInvoice:
    """The rows of a new invoice's children and its `invoice.created` event, and its representation: what
    invoice_render shows, from the rows in hand (no related-manager round through the prefetch cache). The
    event's data is that representation, which needs no database-generated value (the row values, timestamps
    included, are computed first: `json_rows` fills created_at/updated_at, which the snapshot shows)."""
    lines, installments = child_rows(invoice, computed)
    rows = [
        json_rows(insert_for(Invoice), [invoice]),  # fills created_at/updated_at, which the snapshot shows
        json_rows(insert_for(LineItem), lines),
        json_rows(insert_for(Installment), installments),
    ]
    snapshot = invoice_representation(
        invoice,
        line_items=lines,
        installments=installments,
        supplementary_ids=[],
        payments=[],  # a new invoice has no payments
        now=timezone.now(),
    )
    event = webhook_services.event_prepare(
        merchant=invoice.merchant, mode=invoice.mode, type="invoice.created", data=snapshot
    )
    setattr(
        invoice, CREATED_SNAPSHOT, snapshot
    )  # the API's response (invoice_render_created) renders it once
    return NewInvoice(invoice, rows, event)


@functools.cache
def _insert_new_invoice_sql(also: tuple[tuple[str, str], ...]) -> str:
    """WITH new_invoice AS (INSERT invoice SELECT … FROM jsonb_populate_recordset(…)), new_lines AS (INSERT
    lines …), new_installments AS (INSERT installments …), the event's CTEs (`event_sql`: the event, its
    deliveries, their jobs), the caller's `also` CTEs, SELECT the event's job ids and the `also` CTEs' checks (a
    failed check fails the whole statement): data-modifying CTEs all run
    whether or not the final SELECT reads them, and the children's foreign keys to the invoice are checked at
    the end of the statement or at commit (deferred). One text and a fixed number of parameters whatever the
    number of lines/installments (one prepared statement; psycopg caches its conversion of statements up to 50
    parameters). Built from model metadata (paytrust.sql, webhooks.outbound.services.event_sql): only quoted
    identifiers are interpolated, values are bound parameters."""
    ctes = []
    for name, model in (("new_invoice", Invoice), ("new_lines", LineItem), ("new_installments", Installment)):
        insert = insert_for(model)
        ctes.append(f"{name} AS (INSERT INTO {insert.table} {insert.columns} {insert.from_json})")  # noqa: S608
    ctes.append(webhook_services.event_sql())
    ctes.extend(sql for sql, _ in also)
    selected = [webhook_services.EVENT_SQL_RESULT, *(check for _, check in also if check)]
    return f"WITH {', '.join(ctes)} SELECT {', '.join(selected)}"  # noqa: S608
