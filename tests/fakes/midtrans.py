"""A fake Midtrans (Snap + Core API) speaking the documented protocol (shared/reference/gateways.md §2).

- Basic auth: server key as user, empty password; otherwise 401 with the recorded Snap error body.
- POST /snap/v1/transactions: transaction_details.order_id and an INTEGER gross_amount; answers 201 with the
  recorded {token, redirect_url} shape; a reused order_id is refused (400) unless the Idempotency-Key repeats.
- GET /v2/{order_id}/status: 404 until the customer starts paying (`customer_starts`), then the recorded status
  shape adjusted to the transaction's current state (`set_status`: settlement, expire, deny, …).
- POST /v2/{order_id}/expire (pending -> expire, status_code 407; settled -> body status_code 412),
  POST /v2/{order_id}/refund (only settlement / partial_refund -> refund / partial_refund, the transaction keeps a
  `refunds` list and the cumulative `refund_amount` as in the published refund notification; refund_key reused ->
  406 "Duplicate refund ID"; not settled -> 412; amount not an integer, <= 0 or more than what is left -> 414),
  POST /v2/{order_id}/cancel (pending / authorize / capture -> cancel, answer status_code "200"; else 412),
  POST /v2/capture {"transaction_id", "gross_amount"} (authorize -> capture with the captured gross_amount, answer
  shaped like the recorded card capture; other states 412; more than authorized 414).
- Refusals come as HTTP 200 with the code in the body's status_code (as the expire answer); `http_errors = True`
  sends the same body with that HTTP status instead (Midtrans does both, see gateways/midtrans/client.py).
- A Snap transaction created with credit_card.type "authorize" becomes a credit_card `authorize` transaction.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from tests.fakes.samples import midtrans_signature, sample
from tests.fakes.server import FakeGatewayServer, RecordedRequest, Reply

WIB = timezone(timedelta(hours=7))


def _wib_now() -> str:
    return datetime.now(UTC).astimezone(WIB).strftime("%Y-%m-%d %H:%M:%S")


# The status_code Midtrans reports with each transaction_status (MDOCS reference/code-2xx, code-4xx,
# cancel-transaction-card; recorded samples).
STATUS_CODES = {
    "settlement": "200",
    "capture": "200",
    "refund": "200",
    "partial_refund": "200",
    "authorize": "200",
    "pending": "201",
    "deny": "202",
    "cancel": "202",
    "failure": "202",
    "expire": "407",
}


class FakeMidtrans(FakeGatewayServer):
    SNAP_PREFIX = "/snap/v1"

    def __init__(self, *, server_key: str) -> None:
        super().__init__()
        self.server_key = server_key
        self.snaps: dict[str, dict] = {}  # order_id -> {"token", "redirect_url", "body"}
        self.transactions: dict[str, dict] = {}  # order_id -> status body
        self._idempotency: dict[str, str] = {}
        self.http_errors = False
        self._state_lock = threading.Lock()

    @property
    def snap_base(self) -> str:
        return self.base_url + self.SNAP_PREFIX

    def route(self, request: RecordedRequest) -> Reply:
        if request.basic_auth != (self.server_key, ""):
            return Reply(401, sample("midtrans_snap_401_error.json"))
        path = request.path
        if request.method == "POST" and path == f"{self.SNAP_PREFIX}/transactions":
            return self._snap(request)
        parts = path.strip("/").split("/")
        if request.method == "POST" and parts == ["v2", "capture"]:
            return self._capture(request)
        if len(parts) == 3 and parts[0] == "v2":
            order_id, action = parts[1], parts[2]
            if request.method == "GET" and action == "status":
                return self._status(order_id)
            if request.method == "POST" and action == "expire":
                return self._expire(order_id)
            if request.method == "POST" and action == "refund":
                return self._refund(order_id, request)
            if request.method == "POST" and action == "cancel":
                return self._cancel(order_id)
        return Reply(404, {"status_code": "404", "status_message": "route not found"})

    def _snap(self, request: RecordedRequest) -> Reply:
        body = request.json if isinstance(request.json, dict) else {}
        details = body.get("transaction_details") or {}
        order_id, gross = details.get("order_id"), details.get("gross_amount")
        if not isinstance(order_id, str) or isinstance(gross, bool) or not isinstance(gross, int):
            return Reply(400, {"error_messages": ["transaction_details.gross_amount must be an integer"]})
        key = request.header("Idempotency-Key")
        with self._state_lock:
            if key and self._idempotency.get(key) == order_id:
                snap = self.snaps[order_id]
                return Reply(201, {"token": snap["token"], "redirect_url": snap["redirect_url"]})
            if order_id in self.snaps:
                return Reply(400, {"error_messages": ["transaction_details.order_id sudah digunakan"]})
            token = str(uuid.uuid4())
            template = sample("midtrans_snap_create_response.json")
            snap = {
                "token": token,
                "redirect_url": template["redirect_url"].replace("{{snap_token}}", token),
                "body": body,
                "headers": request.headers,
            }
            self.snaps[order_id] = snap
            if key:
                self._idempotency[key] = order_id
        return Reply(201, {"token": snap["token"], "redirect_url": snap["redirect_url"]})

    def _not_found(self) -> Reply:
        return Reply(404, {"status_code": "404", "status_message": "Transaction doesn't exist."})

    def _status(self, order_id: str) -> Reply:
        tx = self.transactions.get(order_id)
        if tx is None:
            return self._not_found()
        return Reply(200, self._public(tx))

    def _expire(self, order_id: str) -> Reply:
        with self._state_lock:
            tx = self.transactions.get(order_id)
            if tx is None:
                return self._not_found()
            if tx["transaction_status"] != "pending":
                return self._refusal("412", "Merchant cannot modify the status of the transaction")
            tx.update(
                transaction_status="expire",
                status_code="407",
                status_message="Success, transaction is expired",
            )
            self._sign(tx)
            return Reply(200, {k: v for k, v in tx.items() if not k.startswith("_")})

    def _refusal(self, code: str, message: str) -> Reply:
        return Reply(int(code) if self.http_errors else 200, {"status_code": code, "status_message": message})

    def _public(self, tx: dict) -> dict:
        return {k: v for k, v in tx.items() if not k.startswith("_")}

    def _refund(self, order_id: str, request: RecordedRequest) -> Reply:
        body = request.json if isinstance(request.json, dict) else {}
        with self._state_lock:
            tx = self.transactions.get(order_id)
            if tx is None:
                return self._not_found()
            refunds = tx.setdefault("refunds", [])
            if any(item["refund_key"] == body.get("refund_key") for item in refunds):
                return self._refusal("406", "Duplicate refund ID")
            if tx["transaction_status"] not in ("settlement", "partial_refund"):
                return self._refusal("412", "Merchant cannot modify the status of the transaction")
            amount = body.get("amount")
            gross = int(Decimal(tx["gross_amount"]))
            already = int(Decimal(tx.get("refund_amount", "0")))
            if (
                isinstance(amount, bool)
                or not isinstance(amount, int)
                or amount <= 0
                or already + amount > gross
            ):
                return self._refusal("414", "Refund amount is invalid")
            total = already + amount
            status = "refund" if total == gross else "partial_refund"
            refunds.append(
                {
                    "refund_chargeback_id": len(refunds) + 1,
                    "refund_amount": f"{amount}.00",
                    "created_at": _wib_now(),
                    "reason": body.get("reason", ""),
                    "refund_key": body.get("refund_key"),
                    "refund_method": "online",
                }
            )
            tx.update(transaction_status=status, refund_amount=f"{total}.00", status_code="200")
            self._sign(tx)
            response = sample(
                "midtrans_refund_response.json"
                if status == "refund"
                else "midtrans_partial_refund_response.json"
            )
            response.update(
                order_id=order_id,
                transaction_id=tx["transaction_id"],
                gross_amount=tx["gross_amount"],
                refund_amount=f"{amount}.00",
                refund_key=body.get("refund_key"),
                refund_chargeback_id=len(refunds),
                transaction_status=status,
            )
            return Reply(200, response)

    def _cancel(self, order_id: str) -> Reply:
        with self._state_lock:
            tx = self.transactions.get(order_id)
            if tx is None:
                return self._not_found()
            if tx["transaction_status"] not in ("pending", "authorize", "capture"):
                return self._refusal("412", "Merchant cannot modify the status of the transaction")
            # The state keeps the notification's code ("202"); the API answer says "200" (MDOCS cancel page).
            tx.update(transaction_status="cancel", status_code="202")
            self._sign(tx)
            answer = self._public(tx)
            answer.update(status_code="200", status_message="Success, transaction is canceled")
            return Reply(200, answer)

    def _capture(self, request: RecordedRequest) -> Reply:
        body = request.json if isinstance(request.json, dict) else {}
        with self._state_lock:
            tx = next(
                (t for t in self.transactions.values() if t["transaction_id"] == body.get("transaction_id")),
                None,
            )
            if tx is None:
                return self._not_found()
            if tx["transaction_status"] != "authorize":
                return self._refusal("412", "Merchant cannot modify the status of the transaction")
            amount = body.get("gross_amount")
            if (
                isinstance(amount, bool)
                or not isinstance(amount, int)
                or not 0 < amount <= int(Decimal(tx["gross_amount"]))
            ):
                return self._refusal("414", "Capture amount is invalid")
            tx.update(
                transaction_status="capture",
                fraud_status="accept",
                status_code="200",
                gross_amount=f"{amount}.00",
                _authorized_amount=tx["gross_amount"],
            )
            self._sign(tx)
            answer = sample("midtrans_card_capture.json")
            for key in ("signature_key", "merchant_id", "masked_card", "approval_code"):
                answer.pop(key, None)
            answer.update(
                {k: tx[k] for k in ("order_id", "transaction_id", "transaction_time", "gross_amount")},
                status_message="Success, Credit Card capture transaction is successful",
            )
            return Reply(200, answer)

    def _sign(self, tx: dict) -> None:
        tx["signature_key"] = midtrans_signature(
            order_id=tx["order_id"],
            status_code=tx["status_code"],
            gross_amount=tx["gross_amount"],
            server_key=self.server_key,
        )

    # ----- test controls ----------------------------------------------------------------------------------
    def customer_starts(self, order_id: str, *, status: str = "pending") -> dict:
        """The customer picked a method in Snap: a Core API transaction now exists."""
        snap = self.snaps[order_id]
        tx = sample("midtrans_status_capture_response.json")
        tx.update(
            order_id=order_id,
            transaction_id=str(uuid.uuid4()),
            gross_amount=f"{snap['body']['transaction_details']['gross_amount']}.00",
            transaction_status=status,
            status_code=STATUS_CODES.get(status, "200"),
            transaction_time=_wib_now(),
            payment_type="bank_transfer",
            approval_code=secrets.token_hex(4),
        )
        tx.pop("fraud_status", None)
        card = (snap["body"].get("credit_card") or {}).get("type") == "authorize"
        if card or status in ("authorize", "capture"):
            tx.update(payment_type="credit_card", fraud_status="accept")
        if status == "settlement":
            tx["settlement_time"] = _wib_now()
        self._sign(tx)
        with self._state_lock:
            self.transactions[order_id] = tx
        return tx

    def set_status(self, order_id: str, transaction_status: str, *, fraud_status: str | None = None) -> dict:
        """Midtrans' state of the transaction moves to `transaction_status` (created first if the customer had not
        started): what GET /status answers from now on. Returns the transaction."""
        if order_id not in self.transactions:
            self.customer_starts(order_id)
        with self._state_lock:
            tx = self.transactions[order_id]
            tx.update(
                transaction_status=transaction_status,
                status_code=STATUS_CODES.get(transaction_status, "200"),
                status_message="Success, transaction is found",
            )
            if transaction_status in ("settlement", "capture"):
                tx.setdefault("settlement_time", _wib_now())
            if fraud_status is None:
                tx.pop("fraud_status", None)
            else:
                tx["fraud_status"] = fraud_status
                if fraud_status == "challenge":
                    tx["status_code"] = "201"
                elif fraud_status == "deny":
                    tx["status_code"] = "202"
            self._sign(tx)
            return dict(tx)

    def notification(self, order_id: str, **changes) -> bytes:
        """The HTTP notification Midtrans sends for the transaction's current state (signed with the server key);
        `changes` are applied AFTER signing (a tampered delivery)."""
        with self._state_lock:
            tx = {k: v for k, v in self.transactions[order_id].items() if not k.startswith("_")}
        tx["status_message"] = "midtrans payment notification"
        tx.update(changes)
        return json.dumps(tx, default=str).encode()
