"""The gateway contract: what payments and the inbound-webhook pipeline call, whatever the gateway.

Everything in and out is a frozen dataclass with integer minor-unit amounts and aware UTC datetimes. Get an
instance with `gateways.registry.gateway_for_account(account)`; never construct adapters by hand.

Calling rules (see docs/adr/0010-gateway-contract.md):
- Call `create_payment`, `get_status`, `expire_payment`, `refund` OUTSIDE any database transaction (they do
  HTTP; the sandbox writes its own rows). `verify_webhook` / `parse_webhook` do no I/O and may run anywhere.
- `create_payment` is idempotent per `payment_id`: it is the gateway's external id / order id and idempotency key.
- Failures raise `paytrust.errors.GatewayError` (502) or `GatewayTimeout` (504, always retryable). `retryable`
  True = the same call may succeed later. `outcome_unknown(exc)` tells whether a failed `create_payment` may still
  have created the payment at the gateway (timeout, 5xx, unreadable answer): leave the payment `unknown` and ask
  `get_status(payment_id=...)` later. `code="gateway_unavailable"` = the circuit breaker is open (nothing sent).
- `GatewayPaymentNotFound` (a GatewayError, not retryable) = the gateway has no payment for that id/reference.
- `webhook_verification_does_io` (class attribute): `verify_webhook` calls the gateway (PayPal's verify-webhook-signature
  API), so it runs outside any transaction; a GatewayError from it means "could not verify now" (503 + Retry-After,
  the gateway retries), never 401.
- `complete_approved_payment`: for gateways where the customer only APPROVES at the gateway and the merchant must
  then make the call that collects (PayPal Orders: capture, or authorize for capture_method "manual"). A
  notification (or a return) saying so carries `WebhookNotification.approved`; payments calls this once per
  payment (`payments.services.completion`), outside any transaction. Default: nothing to do (None).
- `resolve_notification`: fills in what a verified notification leaves out (PayPal refund events name the capture,
  not the order) with HTTP; called by the inbound pipeline outside any transaction before the notification is
  applied. Default: the notification as is.
- `currency_refusal(code)`: why the gateway cannot take a currency (None when it can); account configuration
  refuses the currency with that reason (400, param `currencies.N`).
- `notifications_are_authoritative` (class attribute): True when a verified webhook's status and amount may be
  applied as they are (the authentication covers them). False (Midtrans: the signature covers only order_id,
  status_code and gross_amount) = a notification is a trigger: the inbound pipeline asks `get_status` and applies
  the gateway's answer instead.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from paytrust import money
from paytrust.errors import (
    GatewayError,
    GatewayTimeout,
    ValidationError,
    WebhookAuthError,
    WebhookPayloadError,
)

if TYPE_CHECKING:
    from gateways.models import GatewayAccount

__all__ = [
    "CreatePaymentRequest",
    "CreatePaymentResult",
    "Customer",
    "Gateway",
    "GatewayError",
    "CaptureRequest",
    "GatewayPaymentNotFound",
    "GatewayRefundNotFound",
    "GatewayTimeout",
    "GatewayOutcome",
    "PaymentStatusResult",
    "RefundReport",
    "RefundRequest",
    "RefundResult",
    "RefundStatus",
    "SettlementKind",
    "SettlementLine",
    "WebhookAuthError",
    "WebhookNotification",
    "WebhookPayloadError",
    "outcome_unknown",
]


class GatewayOutcome(StrEnum):
    """A payment's status as the gateway reports it, in OUR vocabulary (values = payments' Payment statuses)."""

    PENDING = "pending"  # created / waiting for the customer (also: fraud challenge)
    AUTHORIZED = "authorized"  # funds held on the card for a manual capture (capture_method "manual")
    CANCELED = "canceled"  # an authorization voided (released) before capture
    SUCCEEDED = "succeeded"  # money collected (see amount_minor for how much)
    FAILED = "failed"  # denied, cancelled, failed
    EXPIRED = "expired"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    UNKNOWN = "unknown"  # a status this adapter does not know; never treat as success


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class GatewayRefundNotFound(GatewayError):
    """The gateway has no refund with our refund id (the refund request never reached it)."""

    code = "gateway_refund_not_found"
    default_message = "The payment gateway has no such refund."


class GatewayPaymentNotFound(GatewayError):
    """The gateway has no payment for the given payment id / reference (e.g. a create that never arrived)."""

    code = "gateway_payment_not_found"
    default_message = "The payment gateway has no such payment."


# Codes of GatewayErrors raised by create_payment after which the gateway MAY have created the payment.
# A connection error may also happen after the request was sent (reset while reading), so it counts too.
_OUTCOME_UNKNOWN_CODES = frozenset(
    {"gateway_timeout", "gateway_server_error", "gateway_bad_response", "gateway_connection_error"}
)


def outcome_unknown(exc: GatewayError) -> bool:
    """True if the failed call may have taken effect at the gateway (leave the payment `unknown`)."""
    return isinstance(exc, GatewayTimeout) or exc.code in _OUTCOME_UNKNOWN_CODES


@dataclass(frozen=True)
class Customer:
    name: str = ""
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class CreatePaymentRequest:
    payment_id: str  # our pay_ id: external_id / order_id / idempotency key at the gateway
    amount_minor: int  # > 0, in `currency`'s minor units
    currency: str  # ISO 4217, one of the account's currencies
    description: str
    expires_at: datetime  # aware; the gateway's payment expires then (rounded to what the gateway allows)
    customer: Customer = field(default_factory=Customer)
    invoice_id: str = ""
    installment_number: int | None = None
    success_redirect_url: str = ""
    failure_redirect_url: str = ""
    # "automatic" (collect at once) or "manual" (authorize only; `Gateway.capture` collects). Only adapters with
    # `supports_manual_capture` accept "manual".
    capture_method: str = "automatic"

    def __post_init__(self) -> None:
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise TypeError("amount_minor must be an int")
        if self.amount_minor <= 0:
            raise ValueError("amount_minor must be > 0")
        if self.expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")


@dataclass(frozen=True)
class CreatePaymentResult:
    gateway_reference: (
        str  # the gateway's id for this payment (Xendit invoice id, Midtrans order id, ckt_ id)
    )
    payment_url: str  # where to send the customer
    status: GatewayOutcome  # normally PENDING
    expires_at: datetime | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class RefundReport:
    """Refunds (or a chargeback) a gateway reports on one of our payments, with a REFUNDED / PARTIALLY_REFUNDED
    status. Two shapes, by what the gateway says:

    - `total_minor`: the gateway's CUMULATIVE refunded amount on the payment (Midtrans `refund_amount`, the sandbox).
      It is the truth: applied as is, so a replayed or reordered report never refunds twice. Such a report describes
      the whole payment: its status's `amount_minor` is the amount collected and `paid_at` the paid time.
    - `reference` + `amount_minor`: ONE refund, by the gateway's refund id (Xendit refund callbacks). Applied once per
      reference; it says nothing about the payment's collected amount.
    `chargeback`: the money was taken back by a card dispute (Midtrans `chargeback` / `partial_chargeback`), not
    refunded by the merchant. Which of REFUNDED / PARTIALLY_REFUNDED the payment ends in follows from the amounts.
    """

    total_minor: int | None = None
    reference: str = ""
    amount_minor: int | None = None
    chargeback: bool = False
    # Our ref_ id when the gateway echoes it (Xendit `reference_id`, which we send as our refund id): the report is
    # of that refund of ours, even when we do not know the gateway's id for it yet (its answer was lost).
    our_refund_id: str = ""


@dataclass(frozen=True)
class PaymentStatusResult:
    gateway_reference: str
    status: GatewayOutcome
    amount_minor: int  # amount collected when SUCCEEDED/…REFUNDED; otherwise the amount the gateway shows
    currency: str
    paid_at: datetime | None  # the gateway's paid time when SUCCEEDED/…REFUNDED
    payment_id: str = ""  # our pay_ id as the gateway echoes it
    refund: RefundReport | None = None  # with REFUNDED / PARTIALLY_REFUNDED
    # With AUTHORIZED: until when the hold may be captured (the gateway's own limit), when it says.
    capture_before: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class CaptureRequest:
    payment_id: str  # our pay_ id
    gateway_reference: str
    amount_minor: int  # <= the authorized amount; the rest of the hold is released
    currency: str


@dataclass(frozen=True)
class WebhookNotification:
    event_id: (
        str  # dedup key, unique per gateway account: the gateway's own id or a derived one (see adapter)
    )
    gateway_reference: str
    payment_id: (
        str  # our pay_ id, from the gateway's external_id / order_id (may be foreign: not ours; "" when
    )
    # the gateway does not echo it, e.g. a Xendit refund callback: the payment is found by gateway_reference)
    status: GatewayOutcome
    amount_minor: int  # collected amount when SUCCEEDED; otherwise the transaction amount as reported
    currency: str
    occurred_at: datetime  # aware UTC: when the gateway says the status changed
    refunded_amount_minor: int | None = None  # cumulative refunded amount on REFUNDED/PARTIALLY_REFUNDED
    refund: RefundReport | None = None  # with REFUNDED / PARTIALLY_REFUNDED
    # The customer approved the payment at the gateway and PayTrust must now make the call that collects it
    # (`Gateway.complete_approved_payment`: PayPal's CHECKOUT.ORDER.APPROVED). Status stays PENDING.
    approved: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class RefundRequest:
    refund_id: str  # our ref_ id: the gateway's refund key / idempotency key
    payment_id: str
    gateway_reference: str
    amount_minor: int
    currency: str
    reason: str = ""


@dataclass(frozen=True)
class RefundResult:
    gateway_refund_reference: str
    status: RefundStatus  # PENDING: the gateway accepted it and will say later (get_refund / a notification)
    amount_minor: int
    failure_message: str = ""  # with FAILED: the gateway's reason, as it says it
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


class SettlementKind(StrEnum):
    """What one line of a gateway's settlement (or transaction list) for a day is."""

    PAYMENT = "payment"  # money the gateway collected for a payment (gross; its fee in fee_minor)
    REFUND = "refund"  # money the gateway paid back (amount positive; the direction is the kind's)
    CHARGEBACK = "chargeback"  # money a card dispute took back
    FEE = "fee"  # a fee not attached to one payment (monthly fee, dispute fee, …)
    PAYOUT = "payout"  # money the gateway paid out to the merchant's bank account
    ADJUSTMENT = "adjustment"  # anything else the gateway moved (amount signed: + credit to the merchant)


@dataclass(frozen=True)
class SettlementLine:
    """One line of what a gateway says it moved on a UTC day (its API list or a settlement file), in our vocabulary.

    Reconciliation (issue 15) matches PAYMENT / REFUND lines against PayTrust's succeeded payments and refunds, and
    posts fees and payouts to the ledger (`gateway_fees`, `bank`)."""

    kind: SettlementKind
    reference: (
        str  # the gateway's own id of this line (transaction / charge / capture id): unique in one report
    )
    amount_minor: int  # > 0 for every kind but ADJUSTMENT (signed); the gross amount for PAYMENT / REFUND
    currency: str
    occurred_at: datetime  # aware UTC: when the gateway says it happened (its settlement / paid time)
    payment_id: str = (
        ""  # our pay_ id as the gateway echoes it (external_id / order_id / metadata), "" if none
    )
    gateway_reference: str = ""  # the payment's gateway reference (invoice / order / session id), "" if none
    refund_id: str = ""  # our ref_ id when the gateway echoes it (REFUND lines)
    fee_minor: int = (
        0  # the gateway's fee on this line: > 0 taken, < 0 given back (a fee returned with a refund)
    )
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


class Gateway(ABC):
    """One gateway account's adapter. Instances are cheap; build them with `gateway_for_account`."""

    name: ClassVar[str]
    # Currencies the gateway can take (intersected with money.ENABLED_CURRENCIES at account configuration).
    supported_currencies: ClassVar[frozenset[str]]
    # Credential fields the merchant must supply (all strings). Sandbox: none (it generates its own secret).
    credential_fields: ClassVar[tuple[str, ...]] = ()
    # field -> mode -> the prefixes a key of that mode starts with. A key made for the other mode (a production key
    # on a test account, or the reverse) is refused: test and live money never cross.
    credential_mode_prefixes: ClassVar[Mapping[str, Mapping[str, tuple[str, ...]]]] = {}
    allowed_modes: ClassVar[frozenset[str]] = frozenset({"test", "live"})
    # May a verified webhook's status/amount be applied as is? False: the inbound pipeline confirms it with
    # get_status (outside any transaction) and applies the gateway's answer. See docs/adr/0010-gateway-contract.md.
    notifications_are_authoritative: ClassVar[bool] = True
    # Capabilities (GET /v1/gateway-accounts shows them; payments refuses what an adapter cannot do with 400).
    supports_manual_capture: ClassVar[bool] = False
    supports_refunds: ClassVar[bool] = False
    supports_partial_refunds: ClassVar[bool] = False
    # Can `settlement_lines` read the gateway's own list of what it moved on a day (reconciliation, issue 15)?
    supports_settlement_report: ClassVar[bool] = False
    # Does `verify_webhook` call the gateway (PayPal's verify-webhook-signature API)? Then it is called outside any
    # database transaction, like the other HTTP methods, and a gateway failure there is 503 (retry), never 401.
    webhook_verification_does_io: ClassVar[bool] = False
    # Manual bank transfer (docs/adr/0052): the account holds bank details shown to payers, and refunds are paid
    # out by hand (the adapter's refund stays PENDING until finance marks it paid out).
    takes_bank_details: ClassVar[bool] = False
    refunds_paid_out_by_hand: ClassVar[bool] = False

    @classmethod
    def capabilities(cls) -> dict[str, object]:
        """What GET /v1/gateway-accounts shows: the currencies the adapter can take (of those PayTrust enables) and
        what it can do. Payments refuse what it cannot with 400 (initiation, capture, refunds)."""
        return {
            "currencies": [c for c in money.ENABLED_CURRENCIES if c in cls.supported_currencies],
            "manual_capture": cls.supports_manual_capture,
            "refunds": cls.supports_refunds,
            "partial_refunds": cls.supports_partial_refunds,
            "refunds_paid_out_by_hand": cls.refunds_paid_out_by_hand,
            "settlement_report": cls.supports_settlement_report,
        }

    def __init__(self, *, account: GatewayAccount, credentials: Mapping[str, str]) -> None:
        self.account = account
        self.credentials = dict(credentials)

    def __repr__(self) -> str:  # never shows credentials
        return f"<{type(self).__name__} account={getattr(self.account, 'pk', None)}>"

    # ----- configuration ---------------------------------------------------------------------------------
    @classmethod
    def validate_credentials(
        cls, credentials: object, *, mode: str, param: str = "credentials"
    ) -> dict[str, str]:
        """Shape-check merchant-supplied credentials for an account in `mode` (each key must be one of that mode's,
        see `credential_mode_prefixes`); returns the cleaned dict or raises ValidationError."""
        if credentials is None:
            credentials = {}
        if not isinstance(credentials, dict):
            raise ValidationError("credentials must be an object.", param=param)
        unknown = [k for k in credentials if k not in cls.credential_fields]
        if unknown:
            raise ValidationError(
                f"Unknown credential {unknown[0]!r} for {cls.name}; expected {list(cls.credential_fields)}.",
                code="parameter_unknown",
                param=f"{param}.{unknown[0]}",
            )
        cleaned: dict[str, str] = {}
        for name in cls.credential_fields:
            value = credentials.get(name)
            if value is None or value == "":
                raise ValidationError(
                    f"{cls.name} needs credentials.{name}.", code="parameter_missing", param=f"{param}.{name}"
                )
            if not isinstance(value, str) or len(value) > 500 or value != value.strip():
                raise ValidationError(
                    f"credentials.{name} must be a string without surrounding spaces.",
                    param=f"{param}.{name}",
                )
            cleaned[name] = value
        cls._check_credential_modes(cleaned, mode=mode, param=param)
        return cleaned

    @classmethod
    def _check_credential_modes(cls, credentials: Mapping[str, str], *, mode: str, param: str) -> None:
        for name, by_mode in cls.credential_mode_prefixes.items():
            value = credentials.get(name, "")
            if value.startswith(by_mode.get(mode, ())):
                continue
            made_for = next(
                (other for other, prefixes in by_mode.items() if value.startswith(prefixes)), None
            )
            expected = " or ".join(f"{prefix}…" for prefix in by_mode.get(mode, ()))
            what = f"a {made_for}-mode key" if made_for else "not a key of this mode"
            raise ValidationError(
                f"credentials.{name} is {what}; a {mode}-mode {cls.name} account takes {expected}.",
                code="credentials_mode_mismatch",
                param=f"{param}.{name}",
            )

    @classmethod
    def currency_refusal(cls, currency: str) -> str | None:
        """Why this gateway cannot take `currency` (a sentence for the merchant), or None when it can. Account
        configuration (gateways.services.clean_currencies) refuses the currency with this reason. Default: the
        currencies outside `supported_currencies`."""
        if currency in cls.supported_currencies:
            return None
        return f"{cls.name} does not support {currency}."

    @classmethod
    def generated_credentials(cls) -> dict[str, str]:
        """Credentials PayTrust generates itself for a new account (sandbox: its signing secret)."""
        return {}

    # ----- payments ---------------------------------------------------------------------------------------
    @abstractmethod
    def create_payment(self, request: CreatePaymentRequest) -> CreatePaymentResult:
        """Create the payment at the gateway (idempotent per request.payment_id)."""

    @abstractmethod
    def get_status(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult:
        """The gateway's truth for a payment; by reference when known, else by our payment id (after a timeout).

        Raises GatewayPaymentNotFound when the gateway has no such payment.
        """

    @abstractmethod
    def expire_payment(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult:
        """Ask the gateway to stop accepting money for the payment; returns the resulting status."""

    def refund(self, request: RefundRequest) -> RefundResult:
        """Refund (part of) a succeeded payment, idempotent per request.refund_id (sent as the gateway's refund key /
        idempotency key). Adapters without a refund API raise a permanent GatewayError."""
        raise GatewayError(
            f"Refunds are not supported for {self.name} yet.",
            code="gateway_refund_unsupported",
            retryable=False,
        )

    def get_refund(
        self, *, refund_id: str, payment_id: str, gateway_reference: str, gateway_refund_reference: str = ""
    ) -> RefundResult:
        """The gateway's truth about a refund we asked for (after a timeout or while it is PENDING).
        Raises GatewayRefundNotFound when the gateway has no such refund (the request never arrived)."""
        raise GatewayError(
            f"Refunds are not supported for {self.name} yet.",
            code="gateway_refund_unsupported",
            retryable=False,
        )

    def capture(self, request: CaptureRequest) -> PaymentStatusResult:
        """Collect (part of) an AUTHORIZED payment; answers SUCCEEDED with the captured amount as `amount_minor`."""
        raise GatewayError(
            f"{self.name} cannot capture an authorization.",
            code="gateway_capture_unsupported",
            retryable=False,
        )

    def void_authorization(self, *, payment_id: str, gateway_reference: str) -> PaymentStatusResult:
        """Release an AUTHORIZED payment's hold; answers CANCELED."""
        raise GatewayError(
            f"{self.name} cannot void an authorization.", code="gateway_capture_unsupported", retryable=False
        )

    def complete_approved_payment(
        self, *, payment_id: str, gateway_reference: str, capture_method: str
    ) -> PaymentStatusResult | None:
        """Make the call that collects a payment the customer has approved at the gateway (PayPal: capture the
        order, or authorize it for capture_method "manual"), idempotent per payment_id at the gateway. Returns the
        resulting status (SUCCEEDED / AUTHORIZED / FAILED / PENDING). Default: nothing to complete (None): the
        gateway collects on its own. Call it through payments.services.completion only (once per payment)."""
        return None

    def approval_return_reference(self, query: Mapping[str, str]) -> str:
        """The gateway reference named by the customer's return to PayTrust after approving at the gateway (the
        query string of our return URL; PayPal: `token` = the order id), "" when there is none. Default: ""."""
        return ""

    def resolve_notification(self, notification: WebhookNotification) -> WebhookNotification:
        """The notification with what it leaves out filled in from the gateway (HTTP; outside any transaction).
        Default: as is."""
        return notification

    def settlement_lines(self, *, day: date) -> list[SettlementLine]:
        """What the gateway says it moved on the UTC day `day` (payments, refunds, fees, payouts), from its own list
        API, every page. Adapters without one (`supports_settlement_report` False) raise a permanent GatewayError:
        their day is reconciled from an uploaded settlement file."""
        raise GatewayError(
            f"{self.name} has no settlement list API; upload its settlement file instead.",
            code="gateway_settlement_unsupported",
            retryable=False,
        )

    # ----- inbound webhooks (no I/O unless webhook_verification_does_io) -----------------------------------------------------------------------
    @abstractmethod
    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        """Authenticate an inbound webhook; raise WebhookAuthError (401). Constant-time comparisons only."""

    @abstractmethod
    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookNotification:
        """Map a VERIFIED webhook to a WebhookNotification; raise WebhookPayloadError (400) when malformed."""


# ----- helpers shared by adapters ---------------------------------------------------------------------------


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup over any mapping (Django's request.headers, a dict, …)."""
    getter = getattr(headers, "get", None)
    if getter is not None:
        value = getter(name)
        if value is not None:
            return value
    lowered = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def secure_equals(expected: str, presented: str | None) -> bool:
    if not presented or not expected:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def gateway_amount_to_minor(value: object, currency: str, *, param: str, error: type[Exception]) -> int:
    """A gateway-reported amount (JSON number parsed as int/Decimal, or decimal string) -> minor units.

    Uses money.to_minor (exact; "10000.00" IDR is fine, 4550.50 IDR is not). Raises `error` otherwise.
    """
    if currency not in money.CURRENCIES:
        raise error(f"Unknown currency {currency!r} in gateway payload.")
    try:
        return money.to_minor(value, currency, param=param)
    except ValidationError as exc:
        raise error(f"{param}: {exc.message}") from exc


EVENT_ID_MAX = 128


def derive_event_id(*parts: str) -> str:
    """A dedup event id from parts ("ref:STATUS:time"); hashed when longer than EVENT_ID_MAX (128) chars."""
    event_id = ":".join(parts)
    if len(event_id) > EVENT_ID_MAX:
        event_id = "sha256:" + hashlib.sha256(event_id.encode()).hexdigest()
    return event_id
