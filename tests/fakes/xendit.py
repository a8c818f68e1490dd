"""A fake Xendit Invoice API speaking the documented protocol (see shared/reference/gateways.md §1).

- Basic auth: secret key as user, empty password; anything else -> 401 INVALID_API_KEY.
- POST /v2/invoices: external_id (string) and amount (JSON number) required; answers the recorded create
  response adjusted to the request; the same X-IDEMPOTENCY-KEY returns the same invoice.
- GET /v2/invoices/{id}, GET /v2/invoices?external_id=… (a JSON array), POST /invoices/{id}/expire!.
- Refund API (XPY docs/RefundApi.md + docs/refund/*.md, xendit-php docs/Refund/*.md, docs.xendit.co
  apidocs/refund-payment-request and qr-codes/test-scenarios): POST /refunds (header idempotency-key; body
  invoice_id, reference_id, amount (number), currency, reason in FRAUDULENT / DUPLICATE / REQUESTED_BY_CUSTOMER /
  CANCELLATION / OTHERS, metadata) answers the Refund object, PENDING unless `refund_initial_status` says otherwise;
  a reused idempotency-key -> 409 DUPLICATE_ERROR; invoice not paid -> 403 INELIGIBLE_TRANSACTION; more than what
  is left -> 400 MAXIMUM_REFUND_AMOUNT_REACHED; unknown invoice -> 404 DATA_NOT_FOUND; `refund_errors` (a list of
  (http status, error_code)) makes the next refund creations fail that way (REFUND_NOT_SUPPORTED, …).
  GET /refunds/{id}; GET /refunds?invoice_id=…&limit=…&after_id=… -> {"data": [...], "has_more"} (no reference_id
  filter, as in the API). `settle_refund` moves a refund to SUCCEEDED / FAILED (failure_code) like Xendit does later.
- Transaction API (reconciliation; sources in tests/fixtures/reconciliation/SOURCES.md): GET /transactions with
  `created[gte]` / `created[lte]` (ISO 8601), `limit` (default 10) and the cursor `after_id` -> {"has_more",
  "data", "links"}, ordered by `created`. `record_transaction(**changes)` adds one built from the documented
  Transaction example (tests/fixtures/reconciliation/xendit_transaction.json).
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tests.fakes.samples import sample
from tests.fakes.server import FakeGatewayServer, RecordedRequest, Reply

TRANSACTION_SAMPLE = (
    Path(__file__).resolve().parents[1] / "fixtures" / "reconciliation" / "xendit_transaction.json"
)
REFUND_REASONS = ("FRAUDULENT", "DUPLICATE", "REQUESTED_BY_CUSTOMER", "CANCELLATION", "OTHERS")


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeXendit(FakeGatewayServer):
    def __init__(self, *, secret_key: str) -> None:
        super().__init__()
        self.secret_key = secret_key
        # One Xendit business has a development and a production secret key; both authenticate here.
        self.secret_keys = {secret_key, secret_key.replace("xnd_development_", "xnd_production_")}
        self.invoices: dict[str, dict] = {}
        self._by_idempotency: dict[str, str] = {}
        self._state_lock = threading.Lock()
        self.refunds: dict[str, dict] = {}  # rfd- id -> Refund object, in creation order
        self._refund_keys: set[str] = set()
        self.refund_initial_status = "PENDING"
        self.refund_errors: list[tuple[int, str]] = []
        self.transactions: list[dict] = []

    def _unauthorized(self) -> Reply:
        return Reply(
            401,
            {"error_code": "INVALID_API_KEY", "message": "API key is not authorized for this API service"},
        )

    def route(self, request: RecordedRequest) -> Reply:
        if (
            request.basic_auth is None
            or request.basic_auth[1] != ""
            or request.basic_auth[0] not in self.secret_keys
        ):
            return self._unauthorized()
        path = request.path
        if request.method == "POST" and path in ("/v2/invoices", "/v2/invoices/"):
            return self._create(request)
        if request.method == "GET" and path in ("/v2/invoices", "/v2/invoices/"):
            external_id = (request.query.get("external_id") or [""])[0]
            return Reply(200, [inv for inv in self.invoices.values() if inv["external_id"] == external_id])
        if request.method == "GET" and path.startswith("/v2/invoices/"):
            invoice = self.invoices.get(path.removeprefix("/v2/invoices/"))
            return Reply(200, invoice) if invoice else self._not_found()
        if request.method == "POST" and path == "/refunds":
            return self._create_refund(request)
        if request.method == "GET" and path == "/transactions":
            return self._list_transactions(request)
        if request.method == "GET" and path == "/refunds":
            return self._list_refunds(request)
        if request.method == "GET" and path.startswith("/refunds/"):
            refund = self.refunds.get(path.removeprefix("/refunds/"))
            return Reply(200, refund) if refund else self._refund_not_found()
        if request.method == "POST" and path.startswith("/invoices/") and path.endswith("/expire!"):
            return self._expire(path.removeprefix("/invoices/").removesuffix("/expire!"))
        return Reply(404, {"error_code": "NOT_FOUND", "message": "route not found"})

    def _not_found(self) -> Reply:
        return Reply(404, {"error_code": "INVOICE_NOT_FOUND_ERROR", "message": "Invoice not found"})

    def _create(self, request: RecordedRequest) -> Reply:
        body = request.json
        if not isinstance(body, dict):
            return Reply(400, {"error_code": "API_VALIDATION_ERROR", "message": "body must be JSON"})
        amount = body.get("amount")
        if (
            not isinstance(body.get("external_id"), str)
            or isinstance(amount, bool)
            or not isinstance(amount, int | Decimal)
        ):
            return Reply(
                400, {"error_code": "API_VALIDATION_ERROR", "message": "external_id and amount are required"}
            )
        key = request.header("X-IDEMPOTENCY-KEY")
        with self._state_lock:
            if key and key in self._by_idempotency:
                return Reply(200, self.invoices[self._by_idempotency[key]])
            now = datetime.now(UTC)
            invoice = sample("xendit_invoice_create_response.json")
            invoice_id = secrets.token_hex(12)
            invoice.update(
                id=invoice_id,
                external_id=body["external_id"],
                amount=amount,
                currency=body.get("currency", "IDR"),
                description=body.get("description", ""),
                payer_email=body.get("payer_email", ""),
                status="PENDING",
                invoice_url=f"https://checkout-staging.xendit.co/web/{invoice_id}",
                expiry_date=_iso(now + timedelta(seconds=int(body.get("invoice_duration", 86400)))),
                created=_iso(now),
                updated=_iso(now),
            )
            self.invoices[invoice_id] = invoice
            if key:
                self._by_idempotency[key] = invoice_id
        return Reply(200, invoice)

    def _expire(self, invoice_id: str) -> Reply:
        with self._state_lock:
            invoice = self.invoices.get(invoice_id)
            if invoice is None or invoice["status"] != "PENDING":
                return self._not_found()
            invoice.update(status="EXPIRED", updated=_iso(datetime.now(UTC)))
        return Reply(200, invoice)

    # ----- Refund API -----------------------------------------------------------------------------------------
    def _refund_not_found(self) -> Reply:
        return Reply(404, {"error_code": "DATA_NOT_FOUND", "message": "Data not found"})

    def _create_refund(self, request: RecordedRequest) -> Reply:
        body = request.json if isinstance(request.json, dict) else {}
        key = request.header("idempotency-key")
        amount = body.get("amount")
        if body.get("reason") not in REFUND_REASONS or (
            amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | Decimal))
        ):
            return Reply(
                400, {"error_code": "API_VALIDATION_ERROR", "message": "reason or amount is invalid"}
            )
        with self._state_lock:
            if key and key in self._refund_keys:
                return Reply(
                    409,
                    {
                        "error_code": "DUPLICATE_ERROR",
                        "message": "duplicate value on idempotency_key, try again with a new key",
                    },
                )
            if self.refund_errors:
                status, code = self.refund_errors.pop(0)
                return Reply(status, {"error_code": code, "message": f"{code} (test scenario)"})
            invoice = self.invoices.get(body.get("invoice_id") or "")
            if invoice is None:
                return self._refund_not_found()
            if invoice["status"] not in ("PAID", "SETTLED"):
                return Reply(
                    403, {"error_code": "INELIGIBLE_TRANSACTION", "message": "Transaction is not refundable"}
                )
            paid = Decimal(str(invoice.get("paid_amount", invoice["amount"])))
            taken = sum(
                (
                    Decimal(str(r["amount"]))
                    for r in self.refunds.values()
                    if r["invoice_id"] == invoice["id"] and r["status"] != "FAILED"
                ),
                Decimal(0),
            )
            amount = paid - taken if amount is None else Decimal(str(amount))
            if amount <= 0 or taken + amount > paid:
                return Reply(
                    400,
                    {
                        "error_code": "MAXIMUM_REFUND_AMOUNT_REACHED",
                        "message": "Error because the provided amount is greater than the allowed refund amount.",
                    },
                )
            now = _iso(datetime.now(UTC))
            refund = {
                "id": f"rfd-{uuid.uuid4()}",
                "payment_request_id": None,
                "invoice_id": invoice["id"],
                "payment_id": None,
                "amount": int(amount) if amount == amount.to_integral_value() else amount,
                "payment_method_type": invoice.get("payment_method", "BANK_TRANSFER"),
                "channel_code": "BCA",
                "currency": body.get("currency") or invoice["currency"],
                "status": self.refund_initial_status,
                "reason": body["reason"],
                "reference_id": body.get("reference_id"),
                "failure_code": None,
                "refund_fee_amount": None,
                "country": "ID",
                "created": now,
                "updated": now,
                "metadata": body.get("metadata"),
            }
            self.refunds[refund["id"]] = refund
            if key:
                self._refund_keys.add(key)
            return Reply(200, refund)

    def _list_refunds(self, request: RecordedRequest) -> Reply:
        invoice_id = (request.query.get("invoice_id") or [""])[0]
        limit = int((request.query.get("limit") or ["10"])[0])
        after_id = (request.query.get("after_id") or [""])[0]
        with self._state_lock:
            items = [r for r in self.refunds.values() if not invoice_id or r["invoice_id"] == invoice_id]
        if after_id:
            ids = [r["id"] for r in items]
            items = items[ids.index(after_id) + 1 :] if after_id in ids else []
        return Reply(200, {"data": items[:limit], "has_more": len(items) > limit})

    def _list_transactions(self, request: RecordedRequest) -> Reply:
        def when(value: str) -> datetime:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))

        try:
            gte = [when(v) for v in request.query.get("created[gte]", [])]
            lte = [when(v) for v in request.query.get("created[lte]", [])]
            limit = int((request.query.get("limit") or ["10"])[0])
        except ValueError:
            return Reply(400, {"error_code": "API_VALIDATION_ERROR", "message": "invalid filter"})
        after_id = (request.query.get("after_id") or [""])[0]
        with self._state_lock:
            items = sorted(self.transactions, key=lambda t: (t["created"], t["id"]))
        items = [
            t
            for t in items
            if all(when(t["created"]) >= g for g in gte) and all(when(t["created"]) <= upper for upper in lte)
        ]
        if after_id:
            ids = [t["id"] for t in items]
            items = items[ids.index(after_id) + 1 :] if after_id in ids else []
        page, more = items[:limit], len(items) > limit
        links = (
            [{"href": f"/transactions?after_id={page[-1]['id']}", "rel": "next", "method": "GET"}]
            if more
            else []
        )
        return Reply(200, {"has_more": more, "data": page, "links": links})

    # ----- test controls ----------------------------------------------------------------------------------
    def mark_paid(self, invoice_id: str, *, paid_amount=None) -> dict:
        with self._state_lock:
            invoice = self.invoices[invoice_id]
            now = _iso(datetime.now(UTC))
            invoice.update(
                status="PAID",
                paid_amount=invoice["amount"] if paid_amount is None else paid_amount,
                paid_at=now,
                updated=now,
                payment_method="BANK_TRANSFER",
            )
            return invoice

    def settle_refund(
        self, refund_id: str, *, status: str = "SUCCEEDED", failure_code: str | None = None
    ) -> dict:
        """Xendit finishes a refund (what its refund.succeeded / refund.failed callback then reports)."""
        with self._state_lock:
            refund = self.refunds[refund_id]
            refund.update(status=status, failure_code=failure_code, updated=_iso(datetime.now(UTC)))
            return dict(refund)

    def record_transaction(self, **changes) -> dict:
        """A Transaction as Xendit lists it: the documented example with `changes` (id, type, reference_id, amount,
        created, fee, …); a fresh txn id unless given."""
        transaction = json.loads(TRANSACTION_SAMPLE.read_text(), parse_float=Decimal)
        transaction.update(id="txn_" + uuid.uuid4().hex[:20], **changes)
        with self._state_lock:
            self.transactions.append(transaction)
        return transaction
