"""Property-based test of the ledger (issue 13, hypothesis): random sequences of money movements driven through
the real services - invoices with installments, taxes and service fees; partial, exact and over payments;
replayed notifications; refunds through the API's service; gateway-reported refunds and chargebacks; manual
payments authorized, captured (partly) or voided - and after EVERY step:

- the database's own balance check passes now (`SET CONSTRAINTS ALL IMMEDIATE` fires the deferred trigger that
  otherwise runs at COMMIT, which a test transaction never reaches);
- every movement balances, and so does every merchant/mode/currency;
- `verify_ledger`'s checks find no break;
- the balance API's figures equal the sums of the postings on each account;
- the financial report's figures (gross, tax, fees, refunds, net) equal the ledger's for the period.
"""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from rest_framework.test import APIClient

from gateways import base as gw
from gateways.models import GatewayFee, SandboxCheckoutSession
from gateways.sandbox.refunds import sandbox_refund_settle
from gateways.sandbox.services import sandbox_checkout_submit
from gateways.services import merchant_onboard
from invoices.calc import CustomerIn, InstallmentsIn, LineItemIn
from invoices.services import invoice_create
from ledger.api import BALANCE_FIGURES
from ledger.models import AccountCode, Entry, MovementType
from merchants.models import Merchant
from payments.models import Payment, Refund
from payments.services import GatewayStatusUpdate, payment_apply_gateway_status, payment_initiate
from payments.services.capture import payment_capture, payment_void
from payments.services.refund_reconciliation import refund_reconcile
from payments.services.refunds import refund_create
from paytrust import money
from paytrust.errors import ApplicationError
from reporting.ledger_check import ledger_check
from reporting.selectors import financial_report
from tests.factories import make_api_key
from tests.payments.factories import sandbox_account
from tests.webhooks.inbound_support import process_all
from webhooks.inbound.services import sandbox_notification_receive

pytestmark = pytest.mark.django_db

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
FAR = datetime(2100, 1, 1, tzinfo=UTC)
SUCCESS_FAMILY = ("succeeded", "partially_refunded", "refunded")


def ledger_figures(merchant: Merchant, mode: str) -> dict[str, dict[str, int]]:
    """gross, tax, fee, refunds per currency, from the entries alone."""
    figures: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = Entry.objects.filter(movement__merchant=merchant, movement__mode=mode).values_list(
        "movement__currency", "movement__type", "account__code", "amount_minor"
    )
    for currency, type_, code, amount in rows:
        line = figures[currency]
        if type_ == MovementType.PAYMENT:
            if code == AccountCode.GATEWAY_CLEARING:
                line["gross"] += amount
            elif code == AccountCode.TAX_PAYABLE:
                line["tax"] -= amount
            elif code == AccountCode.SERVICE_FEES:
                line["fee"] -= amount
        elif (
            type_ in (MovementType.REFUND_SUCCEEDED, MovementType.CHARGEBACK)
            and code == AccountCode.GATEWAY_CLEARING
        ):
            line["refunds"] -= amount
    # Only currencies with collected or refunded money, as the report shows them (holds alone are not in it).
    return {c: {k: v for k, v in line.items() if v} for c, line in figures.items() if any(line.values())}


def report_figures(merchant: Merchant, mode: str) -> dict[str, dict[str, int]]:
    report = financial_report(merchant=merchant, mode=mode, start=EPOCH, end=FAR)
    out = {}
    for line in report.currencies:
        f = line.figures
        values = {"gross": f.gross_minor, "tax": f.tax_minor, "fee": f.fee_minor, "refunds": f.refunds_minor}
        out[line.currency] = {k: v for k, v in values.items() if v}
    return out


def _minor(text: str, currency: str) -> int:
    """A signed decimal string of the API (a balance may be negative: a chargeback) in minor units."""
    return -money.to_minor(text[1:], currency) if text.startswith("-") else money.to_minor(text, currency)


class LedgerMachine(RuleBasedStateMachine):
    merchant: Merchant
    mode = "test"

    def __init__(self) -> None:
        super().__init__()
        # Each example runs in a savepoint rolled back at teardown: examples never see each other's rows.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.invoices: list[str] = []
        self.payments: list[str] = []
        self.notifications: list[tuple[str, GatewayStatusUpdate]] = []

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # ----- steps ---------------------------------------------------------------------------------------------
    @rule(
        currency=st.sampled_from(["IDR", "USD"]),
        units=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=3),
        tax=st.sampled_from(["0", "0.11", "0.075"]),
        installments=st.sampled_from([None, 2, 3]),
    )
    def create_invoice(self, currency, units, tax, installments) -> None:
        scale = 1000 if currency == "IDR" else 1
        lines = [
            LineItemIn(f"Item {i}", 1, str(u * scale) if currency == "IDR" else f"{u}.{u % 100:02d}", tax)
            for i, u in enumerate(units)
        ]
        now = timezone.now()
        invoice = invoice_create(
            merchant=self.merchant,
            mode=self.mode,
            currency=currency,
            gateway=sandbox_account(self.merchant).id,
            line_items=lines,
            installments=InstallmentsIn(count=installments) if installments else None,
            customer=CustomerIn("Budi", "budi@example.com", "+628123456789"),
            expires_at=now + timezone.timedelta(days=30),
            now=now,
        )
        self.invoices.append(invoice.id)

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), action=st.sampled_from(["pay", "pay", "pay_partial", "overpay", "authorize"]))
    def pay_on_the_sandbox_checkout(self, data, action) -> None:
        """The customer pays the next installment on the sandbox checkout: all of it, part of it, more than it,
        or (a manual payment) only authorizes it. The notification goes through the real inbound pipeline."""
        invoice_id = data.draw(st.sampled_from(self.invoices))
        capture_method = "manual" if action == "authorize" else "automatic"
        try:
            payment = payment_initiate(
                merchant=self.merchant, mode=self.mode, invoice_id=invoice_id, capture_method=capture_method
            ).payment
        except ApplicationError:
            return  # paid, out of order, or the installment already has an open payment of the other kind
        if payment.capture_method != capture_method:
            return
        session = SandboxCheckoutSession.objects.get(payment_id=payment.id)
        factor = {"pay_partial": Decimal("0.4"), "overpay": Decimal("1.25")}.get(action, Decimal(1))
        amount_minor = int((Decimal(payment.amount_minor) * factor).quantize(1, ROUND_HALF_UP))
        if action == "pay_partial" and not 0 < amount_minor < payment.amount_minor:
            action, amount_minor = "pay", payment.amount_minor
        sandbox_checkout_submit(
            token=session.token,
            nonce=session.form_nonce,
            action=action,
            amount=money.format_amount(amount_minor, payment.currency),
            receiver=sandbox_notification_receive,
        )
        process_all()  # what the inbound worker's job does
        payment.refresh_from_db()
        self.payments.append(payment.id)
        if payment.status == "succeeded":
            self.notifications.append(
                (
                    payment.id,
                    GatewayStatusUpdate(
                        status=gw.GatewayOutcome.SUCCEEDED,
                        amount_minor=payment.amount_received_minor,
                        currency=payment.currency,
                        occurred_at=payment.succeeded_at,
                    ),
                )
            )

    @precondition(lambda self: self.payments)
    @rule(data=st.data(), share=st.sampled_from(["0.3", "1", "1.2"]), void=st.booleans())
    def capture_or_void(self, data, share, void) -> None:
        """The merchant captures (part of, or more than: refused) an authorized payment, or voids it."""
        payment = Payment.objects.get(pk=data.draw(st.sampled_from(self.payments)))
        if payment.status != "authorized":
            return
        try:
            if void:
                payment_void(merchant=self.merchant, mode=self.mode, payment_id=payment.id)
            else:
                amount = int(
                    (Decimal(payment.amount_capturable_minor) * Decimal(share)).quantize(1, ROUND_HALF_UP)
                )
                payment_capture(
                    merchant=self.merchant,
                    mode=self.mode,
                    payment_id=payment.id,
                    amount=money.format_amount(max(1, amount), payment.currency),
                )
        except ApplicationError as exc:
            assert exc.code == "capture_exceeds_authorized", exc.code

    @precondition(lambda self: self.payments)
    @rule(
        data=st.data(),
        share=st.sampled_from(["0.3", "0.7", "1", "1.1"]),
        outcome=st.sampled_from(["", "13", "42"]),
    )
    def refund_through_the_api(self, data, share, outcome) -> None:
        """The merchant refunds part or all of a payment; the sandbox fails refunds ending in 13 and leaves those
        ending in 42 pending. More than is refundable is refused (422) and writes nothing."""
        payment = Payment.objects.get(pk=data.draw(st.sampled_from(self.payments)))
        left = payment.amount_received_minor - payment.amount_refunded_minor
        amount = int((Decimal(max(left, 1)) * Decimal(share)).quantize(1, ROUND_HALF_UP))
        if outcome and amount > 100:
            amount = amount - amount % 100 + int(outcome)
        before = Entry.objects.count()
        try:
            refund_create(
                merchant=self.merchant, mode=self.mode, payment_id=payment.id, amount_minor=max(1, amount)
            )
        except ApplicationError as exc:
            assert exc.status_code in (409, 422), (exc.status_code, exc.code)
            assert Entry.objects.count() == before, "a refused refund posted"

    @precondition(lambda self: self.payments)
    @rule(data=st.data(), complete=st.booleans())
    def settle_a_pending_refund(self, data, complete) -> None:
        """A pending sandbox refund is completed or failed at the gateway; reconciliation learns it."""
        # A refund held for review (the gateway settled it after a chargeback took the money back) stays pending
        # here but is settled at the gateway: it cannot be settled again.
        pending = list(
            Refund.objects.filter(payment__merchant=self.merchant, status="pending")
            .exclude(failure_code="refund_exceeds_received")
            .order_by("id")
        )
        if not pending:
            return
        refund = data.draw(st.sampled_from(pending))
        session = SandboxCheckoutSession.objects.get(payment_id=refund.payment_id)
        sandbox_refund_settle(
            token=session.token,
            nonce=session.form_nonce,
            refund_id=refund.id,
            action="refund_succeed" if complete else "refund_fail",
        )
        before = Entry.objects.count()
        refund_reconcile(refund_id=refund.id)
        refund.refresh_from_db()
        if refund.failure_code == "refund_exceeds_received":
            # A chargeback took the money back while the refund was in flight: held for review, nothing posted.
            assert complete and refund.status == "pending" and Entry.objects.count() == before
            return
        assert refund.status == ("succeeded" if complete else "failed")

    @precondition(lambda self: self.notifications)
    @rule(data=st.data())
    def replay_notification(self, data) -> None:
        payment_id, update = data.draw(st.sampled_from(self.notifications))
        before = Entry.objects.count()
        self._apply(payment_id, update, record=False)
        assert Entry.objects.count() == before, "a replayed notification posted again"

    @precondition(lambda self: self.payments)
    @rule(data=st.data(), share=st.sampled_from(["0.1", "0.5", "1"]), chargeback=st.booleans())
    def gateway_refund(self, data, share, chargeback) -> None:
        """The gateway reports a refund or a chargeback made on its side (cumulative total, like Midtrans)."""
        payment = Payment.objects.get(pk=data.draw(st.sampled_from(self.payments)))
        if payment.status not in SUCCESS_FAMILY:
            return
        left = payment.amount_received_minor - payment.amount_refunded_minor
        if left <= 0:
            return
        increment = max(1, int((Decimal(left) * Decimal(share)).quantize(1, ROUND_HALF_UP)))
        total = payment.amount_refunded_minor + increment
        status = (
            gw.GatewayOutcome.REFUNDED
            if total == payment.amount_received_minor
            else gw.GatewayOutcome.PARTIALLY_REFUNDED
        )
        update = GatewayStatusUpdate(
            status=status,
            amount_minor=payment.amount_received_minor,
            currency=payment.currency,
            occurred_at=timezone.now(),
            refund=gw.RefundReport(total_minor=total, chargeback=chargeback),
        )
        before = Entry.objects.count()
        try:
            self._apply(payment.id, update)
        except ApplicationError as exc:
            # A total that is neither exactly one of our pending refunds nor all of them names no refund: nothing
            # is written until reconciliation has settled ours by id (docs/adr/0046).
            assert exc.code == "refund_report_ambiguous", exc.code
            assert Entry.objects.count() == before

    def _apply(self, payment_id: str, update: GatewayStatusUpdate, *, record: bool = True) -> None:
        payment = Payment.objects.get(pk=payment_id)
        payment_apply_gateway_status(
            payment_id=payment_id,
            gateway_account_id=payment.gateway_account_id,
            update=update,
            source="property",
        )
        if record:
            self.notifications.append((payment_id, update))

    # ----- invariants ----------------------------------------------------------------------------------------
    @invariant()
    def database_balance_check_passes(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    @invariant()
    def every_movement_and_tenant_currency_balances(self) -> None:
        per_movement: dict[str, int] = defaultdict(int)
        per_currency: dict[tuple, int] = defaultdict(int)
        for movement_id, mode, currency, amount in Entry.objects.values_list(
            "movement_id", "account__mode", "account__currency", "amount_minor"
        ):
            per_movement[movement_id] += amount
            per_currency[(mode, currency)] += amount
        assert {k: v for k, v in per_movement.items() if v} == {}
        assert {k: v for k, v in per_currency.items() if v} == {}

    @invariant()
    def balance_api_equals_the_sums_of_the_postings(self) -> None:
        response = self.api.get("/v1/balance")
        assert response.status_code == 200, response.content
        shown = {line["currency"]: line for line in response.json()["currencies"]}
        sums: dict[tuple[str, str], int] = defaultdict(int)
        for currency, code, amount in Entry.objects.filter(
            account__merchant=self.merchant, account__mode=self.mode
        ).values_list("account__currency", "account__code", "amount_minor"):
            sums[(currency, code)] += amount
        for currency, line in shown.items():
            for figure, code in BALANCE_FIGURES.items():
                # Liabilities and revenue are credit balances, shown positive.
                assert _minor(line[figure], currency) == -sums[(currency, code)], (currency, figure)
        assert {c for c, _ in sums} <= set(shown)

    @invariant()
    def verify_ledger_finds_no_break(self) -> None:
        result = ledger_check(merchant_id=self.merchant.pk)
        assert [str(b) for b in result.breaks] == []

    @invariant()
    def report_equals_ledger(self) -> None:
        assert report_figures(self.merchant, self.mode) == ledger_figures(self.merchant, self.mode)


def test_ledger_properties_hold_for_random_sequences(db):
    merchant = merchant_onboard(name="Ledger Property Co")
    account = sandbox_account(merchant)
    GatewayFee.objects.create(account=account, currency="IDR", percent="0.025", fixed_minor=1000)
    GatewayFee.objects.create(account=account, currency="USD", percent="0.029", fixed_minor=30)
    LedgerMachine.merchant = merchant
    _, key = make_api_key(merchant)
    LedgerMachine.api = APIClient(HTTP_AUTHORIZATION=f"Bearer {key}")
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=15,
            # CI runs the same examples every time (a red build is then reproducible); locally each run explores.
            derandomize=os.environ.get("CI") == "true",
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
