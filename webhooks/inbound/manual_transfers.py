"""Recording a received bank transfer for the manual gateway (docs/adr/0052-manual-bank-transfer.md): the one
service behind the admin's "Record a bank transfer" form and `manage.py record_bank_transfer`.

It lives in the inbound layer because a recording IS the manual gateway's notification: in one transaction the
gateway's receipt is written (gateways.manual.services.receipt_record: reference → payment, amount in the payment's
currency, one receipt per bank reference), a `bank_transfer.received` body signed with the account's generated
secret goes through `inbound_webhook_receive` (verify, store, dedup by the event id `bank_transfer:<bank
reference>`, defer the processing job), and the recording is audited (who, what, when). After the commit the event
is processed here at once (`inbound_event_process`, the same code the job runs), so finance sees the outcome; the
job then finds it processed. The payment is therefore applied by `payment_apply_gateway_status` exactly like any
gateway's notification: underpayment, overpayment, late money, ledger postings, events, replay.

The same bank transfer recorded twice (same bank reference, same details) changes nothing: the receipt exists, the
notification is a duplicate; it is audited as a repeat. The same bank reference with other details is 409.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from django.db import transaction

from apikeys.models import AuditLog
from apikeys.services import Actor, audit_record
from gateways.manual import services as manual
from gateways.manual import webhooks as manual_webhooks
from gateways.registry import gateway_for_account
from paytrust import money
from paytrust.jobs import RetryLater
from webhooks.inbound.models import InboundNotification
from webhooks.inbound.services import inbound_event_defer, inbound_event_process, inbound_webhook_receive

logger = logging.getLogger("paytrust.webhooks.inbound.manual")


@dataclass(frozen=True)
class TransferRecorded:
    receipt_id: int
    reference: str
    payment_id: str
    amount_minor: int
    currency: str
    duplicate: bool  # this bank transfer had been recorded already: nothing changed
    event: InboundNotification  # the stored notification, as processing left it
    outcome: str  # what processing did ("pending -> succeeded; applied …"), or why it did not

    @property
    def amount_display(self) -> str:
        return money.format_display(self.amount_minor, self.currency)


def bank_transfer_record(
    *,
    reference: str,
    amount: object,
    received_on: date,
    bank_reference: str,
    actor: Actor,
    currency: str | None = None,
    merchant_id: str | None = None,
) -> TransferRecorded:
    """Record one received bank transfer and apply it to its payment. Raises (nothing written) 400 for a mistyped
    reference, bad amount or date; 404 `transfer_reference_unknown` (also for another merchant's payment when
    `merchant_id` is given); 422 `currency_mismatch`; 409 `bank_reference_already_recorded` /
    `bank_transfer_already_recorded`."""
    with transaction.atomic():
        receipt = manual.receipt_record(
            reference=reference,
            amount=amount,
            received_on=received_on,
            bank_reference=bank_reference,
            recorded_by=actor.label,
            currency=currency,
            merchant_id=merchant_id,
        )
        transfer, row = receipt.transfer, receipt.receipt
        account = transfer.account
        body = manual_webhooks.build_body(
            transfer_id=transfer.pk,
            reference=transfer.reference,
            payment_id=transfer.payment_id,
            bank_reference=row.bank_reference,
            amount=money.format_amount(row.amount_minor, row.currency),
            currency=row.currency,
            received_on=row.received_on.isoformat(),
            occurred_at=receipt.occurred_at,
            recorded_by=row.recorded_by,
        )
        secret = gateway_for_account(account).credentials.get("signing_secret", "")
        received = inbound_webhook_receive(
            gateway=account.gateway,
            account_id=account.pk,
            headers=manual_webhooks.sign(secret, body),
            raw_body=body,
        )
        event = InboundNotification.objects.get(
            gateway_account=account, gateway_event_id=manual_webhooks.event_id(row.bank_reference)
        )
        audit_record(
            action=AuditLog.Action.ADMIN_ACTION,
            actor=actor,
            merchant=account.merchant,
            mode=account.mode,
            action_name="payments.bank_transfer_recorded",
            reference=transfer.reference,
            payment=transfer.payment_id,
            bank_reference=row.bank_reference,
            amount=money.format_amount(row.amount_minor, row.currency),
            currency=row.currency,
            received_on=row.received_on.isoformat(),
            event=event.pk,
            repeat=not receipt.created,
        )
    outcome = _process(event.pk) if receipt.created or not received.duplicate else ""
    event.refresh_from_db()
    return TransferRecorded(
        receipt_id=row.pk,
        reference=transfer.reference,
        payment_id=transfer.payment_id,
        amount_minor=row.amount_minor,
        currency=row.currency,
        duplicate=not receipt.created,
        event=event,
        outcome=event.outcome or event.last_error or outcome,
    )


def _process(event_id: str) -> str:
    """One processing attempt now (no transaction open); a retry it asks for is left to the job, due then."""
    try:
        return inbound_event_process(event_id=event_id)
    except RetryLater as retry:
        inbound_event_defer(event_id=event_id, at=retry.at)
        logger.warning("bank transfer recording: processing will be retried", extra={"event": event_id})
        return f"retry queued for {retry.at.isoformat()} ({retry.reason})"
