"""Creating invoices: a new invoice (the API's hot path: one INSERT statement for the invoice, its line items and
its installments) and a supplementary invoice linked to a parent."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

from django.db import IntegrityError, transaction
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
from paytrust.sql import insert_for, json_rows, mark_saved, new_instance, prepared_cursor
from webhooks.outbound import services as webhook_services


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
    `gwa_` id (default in test mode: the merchant's sandbox account). Returns the invoice, its representation
    already rendered (`invoices.selectors.invoice_render_created`: the `invoice.created` snapshot); its line items
    and installments are read again if asked for (prefetch-caching them cost ~5 % of a creation's CPU).
    Inside a caller's `transaction.atomic()` it takes no savepoint: on any error the caller's transaction is
    rolled back too (the API opens one to store the idempotent response with the invoice, ADR 0024).
    """
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
    try:
        # No savepoint inside a caller's transaction (the API's, which stores the idempotent response in it):
        # two round trips fewer; an error here rolls the caller's transaction back with it.
        with transaction.atomic(savepoint=False):
            _insert_new_invoice(invoice, computed)
    except IntegrityError as exc:
        if external_id_conflict(exc):
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
    parent_customer = CustomerIn(parent.customer_name, parent.customer_email, parent.customer_phone)
    _check_inherited(parent, currency=currency, customer=customer, gateway=gateway)
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


def _insert_new_invoice(invoice: Invoice, computed: Computed) -> None:
    """INSERT a new invoice, its line items, its installments and its `invoice.created` event, and read the ids
    of the endpoints that receive the event, in ONE statement (the same rows as `invoice.save(force_insert=True)`
    + `write_children` + `emit`; no per-call ORM compilation, one round trip). Must run inside the caller's
    transaction.atomic(): the event's deliveries and jobs, if any, are written after it, in the same transaction.
    The event's data is the invoice's representation, which needs no database-generated value (the row values,
    timestamps included, are computed first)."""
    lines, installments = child_rows(invoice, computed)
    params = [
        json_rows(
            insert_for(Invoice), [invoice]
        ),  # fills created_at/updated_at, which the event's snapshot shows
        json_rows(insert_for(LineItem), lines),
        json_rows(insert_for(Installment), installments),
    ]
    # What invoice_render shows, from the rows in hand (no related-manager round through the prefetch cache).
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
    with prepared_cursor() as cursor:
        cursor.execute(_insert_new_invoice_sql(), [*params, *event.params])
        endpoint_ids = [row[0] for row in cursor.fetchall()]
    mark_saved(invoice)  # the children are not kept: the snapshot, rendered from them, is what is shown
    webhook_services.event_recorded(event, endpoint_ids)
    setattr(
        invoice, CREATED_SNAPSHOT, snapshot
    )  # the API's response (invoice_render_created) renders it once


@functools.cache
def _insert_new_invoice_sql() -> str:
    """WITH i AS (INSERT invoice SELECT … FROM jsonb_populate_recordset(…)), l AS (INSERT lines …), n AS (INSERT
    installments …), new_event AS (INSERT event …) SELECT endpoint id …: data-modifying CTEs all run whether or
    not the final SELECT reads them, and the children's foreign keys to the invoice are checked at commit
    (deferred); the rows it returns are the ids of the endpoints that receive the event. One text and seven
    parameters whatever the number of lines/installments (one prepared statement; psycopg caches its conversion
    of statements up to 50 parameters, which the earlier one-array-per-column form exceeded). Built from
    model metadata (paytrust.sql, webhooks.outbound.services.event_sql): only quoted identifiers are
    interpolated, values are bound parameters."""
    invoice = insert_for(Invoice)
    ctes = [f"new_invoice AS (INSERT INTO {invoice.table} {invoice.columns} {invoice.from_json})"]  # noqa: S608
    for name, insert in (("new_lines", insert_for(LineItem)), ("new_installments", insert_for(Installment))):
        ctes.append(f"{name} AS (INSERT INTO {insert.table} {insert.columns} {insert.from_json})")  # noqa: S608
    event_insert, endpoints = webhook_services.event_sql()
    ctes.append(event_insert)
    return f"WITH {', '.join(ctes)} SELECT endpoint_id FROM ({endpoints}) AS endpoints(endpoint_id)"  # noqa: S608
