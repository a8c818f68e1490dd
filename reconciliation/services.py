"""Reconciliation writes (docs/adr/0054): run a gateway account's day, resolve or apply its discrepancies.

`reconcile_day` is what the command, the daily job and the admin's upload call:
1. outside any transaction: the account's `unknown` payments created that day are asked about through the
   existing payments reconciliation (`payments_reconcile`), then the gateway's lines are read (its list API via
   `Gateway.settlement_lines`, unless the caller parsed an uploaded file);
2. one transaction, holding the run's row lock (runs of one account and day are serialized): classify
   (reconciliation.matching), replace the run's lines (a discrepancy's resolution carries over to the new line with
   the same key and class), post fees / payouts / settlements (reconciliation.posting, idempotent per line), check
   the net settled against the ledger's gateway_clearing, record `reconciliation.completed`.
A source that cannot be read marks the run `failed` with the error and keeps its previous lines.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.utils import timezone

from gateways.base import SettlementLine
from gateways.models import GatewayAccount
from gateways.registry import gateway_class, gateway_for_account
from payments.models import OPEN_STATUSES, Payment, PaymentStatus, Refund, RefundStatus
from payments.services import payment_reconcile, payments_reconcile, refund_reconcile
from paytrust.errors import ApplicationError, Conflict, GatewayError, NotFound, ValidationError
from reconciliation import matching, posting
from reconciliation.models import (
    DISCREPANCY_CLASSES,
    LineClass,
    ReconciliationLine,
    ReconciliationRun,
    Resolution,
    RunSource,
    RunStatus,
)
from webhooks.outbound import services as webhook_services
from webhooks.outbound.models import EventType

logger = logging.getLogger("paytrust.reconciliation")
NOTE_MAX = 2000


def _run_for(account: GatewayAccount, day: date) -> ReconciliationRun:
    run, _ = ReconciliationRun.objects.get_or_create(
        account=account,
        day=day,
        defaults={"merchant_id": account.merchant_id, "mode": account.mode, "source": RunSource.API},
    )
    return run


def resolve_unknown_payments(*, account: GatewayAccount, day: date) -> int:
    """Ask the gateway about the account's `unknown` payments created on `day` (payments reconciliation, the
    webhook path); how many changed."""
    start, end = matching.day_bounds(day)
    ids = list(
        Payment.objects.filter(
            gateway_account=account, status=PaymentStatus.UNKNOWN, created_at__gte=start, created_at__lt=end
        ).values_list("pk", flat=True)
    )
    return payments_reconcile(payment_ids=ids).changed if ids else 0


def reconcile_day(
    *,
    account: GatewayAccount,
    day: date,
    lines: list[SettlementLine] | None = None,
    source_name: str = "",
    settles_to_bank: bool = False,
    started_by: str = "system",
) -> ReconciliationRun:
    """Reconcile `account`'s UTC `day` against `lines` (an uploaded file's) or the gateway's list API. Never inside
    a transaction (gateway calls). Returns the run; status `failed` when the gateway could not be read. Today may
    be run (what is settled so far; the demo on `make run`); the daily job runs yesterday, and any re-run replaces
    the result."""
    if day > timezone.now().date():
        raise ValidationError("A future day cannot be reconciled.", param="date")
    source = RunSource.API if lines is None else RunSource.FILE
    started_at = timezone.now()
    if lines is None and not gateway_class(account.gateway).supports_settlement_report:
        raise ValidationError(
            f"{account.gateway} has no settlement list API: upload its settlement file for the day instead.",
            code="settlement_file_required",
            param="file",
        )
    resolve_unknown_payments(account=account, day=day)
    if lines is None:
        adapter = gateway_for_account(account)
        try:
            lines = adapter.settlement_lines(day=day)
        except GatewayError as exc:
            return _mark_failed(account, day, exc, started_by=started_by, started_at=started_at)
    with transaction.atomic():
        run = _run_for(account, day)
        run = ReconciliationRun.objects.select_for_update().get(pk=run.pk)
        result = matching.classify_day(account=account, day=day, lines=lines)
        _replace_lines(run, result)
        posting.post_settlement(account=account, result=result, settles_to_bank=settles_to_bank)
        run.totals = _totals(result)
        run.counts = result.counts()
        run.source, run.source_name, run.error = source, source_name[:255], ""
        run.started_by, run.started_at, run.finished_at = started_by[:150], started_at, timezone.now()
        run.attempts += 1
        _refresh_status(run)
        run.save()
        _record_event(run)
    return run


def reconcile_api_accounts(*, day: date, started_by: str) -> dict[str, int]:
    """`day` of every account whose gateway lists what it settled (the daily job). One account failing does not
    stop the others (its run is recorded `failed`). Returns the counts."""
    from reconciliation.selectors import api_reconcilable_accounts

    done = {"accounts": 0, "failed": 0, "open_discrepancies": 0}
    for account in api_reconcilable_accounts():
        done["accounts"] += 1
        try:
            run = reconcile_day(account=account, day=day, started_by=started_by)
        except ApplicationError as exc:
            done["failed"] += 1
            logger.error("reconciliation failed", extra={"account": account.pk, "code": exc.code})
            continue
        done["failed"] += run.status == RunStatus.FAILED
        done["open_discrepancies"] += run.open_discrepancies
    return done


def _mark_failed(account, day, exc: GatewayError, *, started_by: str, started_at) -> ReconciliationRun:
    logger.warning("reconciliation: gateway list failed", extra={"account": account.pk, "code": exc.code})
    with transaction.atomic():
        run = _run_for(account, day)
        ReconciliationRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED,
            error=f"{exc.code}: {exc.message}"[:500],
            started_by=started_by[:150],
            started_at=started_at,
            finished_at=timezone.now(),
        )
    run.refresh_from_db()
    return run


def _replace_lines(run: ReconciliationRun, result: matching.DayResult) -> None:
    kept = {line.key: line for line in run.lines.exclude(resolution__in=[Resolution.NONE, Resolution.OPEN])}
    run.lines.all().delete()
    rows = []
    for item in result.lines:
        row = ReconciliationLine(
            run=run,
            key=item.key[:200],
            line_class=item.line_class,
            kind=item.kind,
            payment_id=item.payment_id,
            refund_id=item.refund_id,
            gateway_reference=item.gateway_reference[:200],
            currency=item.currency,
            gateway_amount_minor=item.gateway_amount_minor,
            paytrust_currency=item.paytrust_currency,
            paytrust_amount_minor=item.paytrust_amount_minor,
            fee_minor=item.fee_minor,
            occurred_at=item.occurred_at,
            resolution=Resolution.NONE if item.line_class == LineClass.MATCHED else Resolution.OPEN,
        )
        before = kept.get(row.key)
        if before is not None and before.line_class == row.line_class:
            row.resolution, row.resolution_note = before.resolution, before.resolution_note
            row.resolved_by_id, row.resolved_at = before.resolved_by_id, before.resolved_at
        rows.append(row)
    ReconciliationLine.objects.bulk_create(rows, batch_size=1000)


def _totals(result: matching.DayResult) -> dict:
    totals = matching.totals_by_currency(result)
    clearing = posting.ledger_clearing_by_currency(result)
    for currency, figures in totals.items():
        figures["ledger_clearing"] = clearing.get(currency, 0)
        # The matched lines' net settled plus their fees is what moved on gateway_clearing for them.
        figures["clearing_agrees"] = figures["ledger_clearing"] == figures["gross"] - figures["refunds"]
    return totals


def _refresh_status(run: ReconciliationRun) -> None:
    run.open_discrepancies = run.lines.filter(resolution=Resolution.OPEN).count()
    clearing_ok = all(figures.get("clearing_agrees", True) for figures in (run.totals or {}).values())
    run.status = (
        RunStatus.COMPLETED if not run.open_discrepancies and clearing_ok else RunStatus.DISCREPANCIES
    )


def run_snapshot(run: ReconciliationRun) -> dict:
    return {
        "object": "reconciliation_run",
        "id": run.pk,
        "mode": run.mode,
        "gateway_account": run.account_id,
        "day": run.day.isoformat(),
        "source": run.source,
        "status": run.status,
        "counts": run.counts,
        "open_discrepancies": run.open_discrepancies,
        "totals": {
            currency: {k: v for k, v in figures.items() if k != "clearing_agrees"}
            for currency, figures in (run.totals or {}).items()
        },
        "attempts": run.attempts,
    }


def _record_event(run: ReconciliationRun) -> None:
    webhook_services.event_record(
        merchant=run.account.merchant,
        mode=run.mode,
        type=EventType.RECONCILIATION_COMPLETED,
        data=run_snapshot(run),
    )


# ---- staff resolution -------------------------------------------------------------------------------------------


def _locked_line(line_id: int) -> ReconciliationLine:
    line = ReconciliationLine.objects.select_related("run").filter(pk=line_id).first()
    if line is None:
        raise NotFound("No such reconciliation line.")
    ReconciliationRun.objects.select_for_update().get(pk=line.run_id)
    return ReconciliationLine.objects.select_for_update().select_related("run").get(pk=line_id)


def _close(line: ReconciliationLine, *, resolution: str, note: str, user) -> ReconciliationLine:
    line.resolution, line.resolution_note = resolution, note
    line.resolved_by, line.resolved_at = user, timezone.now()
    line.save(update_fields=["resolution", "resolution_note", "resolved_by", "resolved_at"])
    run = line.run
    _refresh_status(run)
    run.save(update_fields=["open_discrepancies", "status", "updated_at"])
    return line


def line_resolve(*, line_id: int, note: str, user) -> ReconciliationLine:
    """Staff close a discrepancy with a note (why it is fine, or what was done elsewhere). 409 when it is not an
    open discrepancy; 400 without a note."""
    note = (note or "").strip()
    if not note:
        raise ValidationError("A note saying why the discrepancy is resolved is required.", param="note")
    if len(note) > NOTE_MAX:
        raise ValidationError(f"The note is longer than {NOTE_MAX} characters.", param="note")
    with transaction.atomic():
        line = _locked_line(line_id)
        if line.line_class not in DISCREPANCY_CLASSES or line.resolution != Resolution.OPEN:
            raise Conflict("This line is not an open discrepancy.", code="reconciliation_line_closed")
        return _close(line, resolution=Resolution.RESOLVED, note=note, user=user)


@dataclass(frozen=True)
class Applied:
    line: ReconciliationLine
    detail: str


def line_apply(*, line_id: int, user) -> Applied:
    """ "Missing in PayTrust": confirm with the gateway and apply the money through the normal path (payments
    reconciliation: get_status, then payment_apply_gateway_status; a pending refund of ours: refund_reconcile).
    Never inside a transaction. 409 when it is not such an open line, PayTrust has no such payment, or the gateway
    does not confirm the money. The day's next run matches the line (and posts its fee)."""
    line = ReconciliationLine.objects.select_related("run").filter(pk=line_id).first()
    if line is None:
        raise NotFound("No such reconciliation line.")
    if line.line_class != LineClass.MISSING_IN_PAYTRUST or line.resolution != Resolution.OPEN:
        raise Conflict(
            "Only an open 'missing in PayTrust' line can be applied.", code="reconciliation_line_closed"
        )
    account_id = line.run.account_id
    if line.refund_id:
        detail = _apply_refund(line.refund_id, account_id)
    else:
        detail = _apply_payment(line.payment_id, account_id)
    with transaction.atomic():
        locked = _locked_line(line_id)
        if locked.resolution != Resolution.OPEN:
            return Applied(line=locked, detail=detail)
        return Applied(
            line=_close(locked, resolution=Resolution.APPLIED, note=detail, user=user), detail=detail
        )


def _apply_payment(payment_id: str, account_id: str) -> str:
    payment = (
        Payment.objects.filter(pk=payment_id, gateway_account_id=account_id).first() if payment_id else None
    )
    if payment is None:
        raise Conflict(
            f"PayTrust has no payment {payment_id or '(the gateway names none)'} on this account: nothing to apply "
            "it to. Resolve the line with a note (e.g. after refunding it at the gateway).",
            code="reconciliation_payment_unknown",
        )
    if payment.status in OPEN_STATUSES:
        payment_reconcile(payment_id=payment.pk)
        payment.refresh_from_db()
    if payment.status not in matching.COLLECTED:
        raise Conflict(
            f"The gateway does not confirm money for {payment.pk}: it is {payment.status} after asking it.",
            code="reconciliation_not_confirmed",
        )
    return (
        f"confirmed with the gateway: {payment.pk} {payment.status}, {payment.amount_received_minor} received"
    )


def _apply_refund(refund_id: str, account_id: str) -> str:
    refund = Refund.objects.filter(pk=refund_id, payment__gateway_account_id=account_id).first()
    if refund is None:
        raise Conflict(
            f"PayTrust has no refund {refund_id} on this account; resolve the line with a note.",
            code="reconciliation_refund_unknown",
        )
    if refund.status == RefundStatus.PENDING:
        refund_reconcile(refund_id=refund.pk)
        refund.refresh_from_db()
    if refund.status != RefundStatus.SUCCEEDED:
        raise Conflict(
            f"The gateway does not confirm refund {refund.pk}: it is {refund.status} after asking it.",
            code="reconciliation_not_confirmed",
        )
    return f"confirmed with the gateway: refund {refund.pk} succeeded"


# ---- settlement files -------------------------------------------------------------------------------------------

DEFAULT_PRESETS = {"xendit": "xendit_transactions_v2", "midtrans": "midtrans"}


def account_mapping(account: GatewayAccount) -> tuple[str, dict]:
    """The account's file mapping: its SettlementFileMapping, else the preset of its gateway (else generic)."""
    from reconciliation.models import SettlementFileMapping

    mapping = SettlementFileMapping.objects.filter(account=account).first()
    if mapping is not None:
        return mapping.preset, dict(mapping.columns or {})
    return DEFAULT_PRESETS.get(account.gateway, "generic"), {}


def reconcile_file(
    *, account: GatewayAccount, day: date, stream, filename: str, started_by: str
) -> ReconciliationRun:
    """Reconcile `day` from an uploaded settlement CSV (binary stream). A file that does not parse completely
    raises ValidationError listing its problems, and nothing is written."""
    from reconciliation.files import parse_settlement_file

    preset, overrides = account_mapping(account)
    parsed = parse_settlement_file(
        stream=stream, account=account, day=day, preset_name=preset, overrides=overrides
    )
    name = filename
    if parsed.other_days or parsed.skipped_status:
        name += f" ({parsed.other_days} rows of other days, {parsed.skipped_status} unsettled rows skipped)"
    return reconcile_day(
        account=account,
        day=day,
        lines=parsed.lines,
        source_name=name,
        settles_to_bank=parsed.settles_to_bank,
        started_by=started_by,
    )
