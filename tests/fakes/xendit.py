"""A fake Xendit Invoice API speaking the documented protocol (see shared/reference/gateways.md §1).

- Basic auth: secret key as user, empty password; anything else -> 401 INVALID_API_KEY.
- POST /v2/invoices: external_id (string) and amount (JSON number) required; answers the recorded create
  response adjusted to the request; the same X-IDEMPOTENCY-KEY returns the same invoice.
- GET /v2/invoices/{id}, GET /v2/invoices?external_id=… (a JSON array), POST /invoices/{id}/expire!.
"""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.fakes.samples import sample
from tests.fakes.server import FakeGatewayServer, RecordedRequest, Reply


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
