"""A fake PayPal REST API (Orders v2, Payments v2, OAuth2, Notifications v1) speaking the documented protocol
(shared/reference/gateways-global.md §2), answering with the recorded payloads of shared/gateway_samples/paypal_*.json
(see their .source.txt) adjusted to each request, and tests/fixtures/paypal/ for the events the samples lack.

- POST /v1/oauth2/token: Basic client_id:client_secret, form grant_type=client_credentials -> the recorded token
  answer with a fresh access_token and `token_expires_in`; bad credentials -> 401 invalid_client (recorded).
  API calls need `Authorization: Bearer <a token it issued and has not revoked>` (`revoke_tokens()`), else 401.
- Every POST honours PayPal-Request-Id: a repeat returns the first answer (a create: 200 instead of 201).
- Orders: POST /v2/checkout/orders (CAPTURE | AUTHORIZE, amount value a decimal string), GET …/{id},
  POST …/{id}/capture | /authorize (422 ORDER_NOT_APPROVED unless the buyer approved: `approve(order_id)`;
  422 ORDER_ALREADY_CAPTURED / ORDER_ALREADY_AUTHORIZED after). `decline_next_capture` makes the capture DECLINED.
- Payments: authorizations/{id}/capture (amount, final_capture), /void, GET; captures/{id} GET, /refund (amount,
  invoice_id, custom_id; 422 REFUND_AMOUNT_EXCEEDED above what is left); refunds/{id} GET. `refund_status` is the
  status new refunds get (COMPLETED).
- POST /v1/notifications/verify-webhook-signature: SUCCESS only for an event this fake delivered (`deliver`) with
  the same transmission headers, webhook_id and event; FAILURE otherwise (HTTP 200, as PayPal).
- `deliver(event)` -> (raw body, PAYPAL-TRANSMISSION-* headers); event builders: `approved_event`,
  `capture_event`, `refund_event`, `reversal_event`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import threading
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs

from tests.fakes.samples import sample
from tests.fakes.server import FakeGatewayServer, RecordedRequest, Reply

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "paypal"
HOST = "https://api.sandbox.paypal.com"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(), parse_float=Decimal)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pp_id() -> str:
    return uuid.uuid4().hex[:17].upper()


def _error(status: int, issue: str, description: str = "") -> Reply:
    body = copy.deepcopy(sample("paypal_error.json"))  # recorded 422 ORDER_NOT_APPROVED, reshaped per issue
    body["details"] = [{"issue": issue, "description": description or issue}]
    body["name"] = (
        "UNPROCESSABLE_ENTITY"
        if status == 422
        else ("RESOURCE_NOT_FOUND" if status == 404 else "INVALID_REQUEST")
    )
    body["links"][0]["href"] = f"https://developer.paypal.com/api/rest/reference/orders/v2/errors/#{issue}"
    return Reply(status, body, {"paypal-debug-id": body["debug_id"]})


def _public(value):
    """What PayPal shows: the fake's own bookkeeping keys (leading "_") removed."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


class FakePayPal(FakeGatewayServer):
    def __init__(self, *, client_id: str, client_secret: str, webhook_id: str) -> None:
        super().__init__()
        self.client_id, self.client_secret, self.webhook_id = client_id, client_secret, webhook_id
        self.token_expires_in = 32400
        self.tokens: set[str] = set()
        self.orders: dict[str, dict] = {}
        self.captures: dict[str, dict] = {}  # capture id -> capture (with supplementary_data)
        self.authorizations: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self._idempotent: dict[tuple[str, str], Reply] = {}
        self._transmissions: dict[str, tuple[str, dict]] = {}
        self._secret = secrets.token_bytes(16)
        self._state = threading.RLock()
        self.decline_next_capture = False
        self.refund_status = "COMPLETED"
        self.verify_result: str | None = None  # force "FAILURE" / "SUCCESS" regardless of the signature
        self.extra_transactions: list[
            dict
        ] = []  # transaction_info rows not made through the API (payouts, fees)

    # ----- test helpers -----------------------------------------------------------------------------------------
    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def count(self, method: str, suffix: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path.endswith(suffix))

    def approve(self, order_id: str) -> None:
        with self._state:
            order = self.orders[order_id]
            order["status"] = "APPROVED"
            order["payer"] = {
                "name": {"given_name": "John", "surname": "Doe"},
                "email_address": "buyer@example.com",
                "payer_id": "QYR5Z8XDVJNXQ",
            }
            order["update_time"] = _now()

    def only_capture(self, order_id: str) -> dict:
        return self.orders[order_id]["purchase_units"][0]["payments"]["captures"][0]

    # ----- routing ----------------------------------------------------------------------------------------------
    def route(self, request: RecordedRequest) -> Reply:
        if request.path == "/v1/oauth2/token" and request.method == "POST":
            return self._token(request)
        auth = request.header("Authorization") or ""
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.tokens:
            return Reply(
                401, {"error": "invalid_token", "error_description": "Token signature verification failed"}
            )
        request_id = request.header("PayPal-Request-Id")
        if request.method == "POST" and request_id:
            key = (request.path, request_id)
            with self._state:
                if key in self._idempotent:
                    first = self._idempotent[key]
                    return Reply(200 if first.status == 201 else first.status, first.body, first.headers)
                reply = self._route(request)
                if reply.status < 500:
                    self._idempotent[key] = reply
                return reply
        with self._state:
            return self._route(request)

    def _route(self, request: RecordedRequest) -> Reply:
        parts = request.path.strip("/").split("/")
        method = request.method
        if parts[:3] == ["v2", "checkout", "orders"]:
            if len(parts) == 3 and method == "POST":
                return self._create_order(request)
            order = self.orders.get(parts[3]) if len(parts) > 3 else None
            if order is None:
                return _error(404, "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
            if len(parts) == 4 and method == "GET":
                return Reply(200, _public(order))
            if len(parts) == 5 and method == "POST" and parts[4] in ("capture", "authorize"):
                return self._complete(order, parts[4])
        if parts[:3] == ["v2", "payments", "authorizations"] and len(parts) >= 4:
            auth = self.authorizations.get(parts[3])
            if auth is None:
                return _error(404, "INVALID_RESOURCE_ID")
            if len(parts) == 4 and method == "GET":
                return Reply(200, _public(auth))
            if len(parts) == 5 and parts[4] == "capture" and method == "POST":
                return self._capture_authorization(auth, request.json or {})
            if len(parts) == 5 and parts[4] == "void" and method == "POST":
                return self._void(auth)
        if parts[:3] == ["v2", "payments", "captures"] and len(parts) >= 4:
            capture = self.captures.get(parts[3])
            if capture is None:
                return _error(404, "INVALID_RESOURCE_ID")
            if len(parts) == 4 and method == "GET":
                return Reply(200, capture)
            if len(parts) == 5 and parts[4] == "refund" and method == "POST":
                return self._refund(capture, request.json or {})
        if parts[:3] == ["v2", "payments", "refunds"] and len(parts) == 4 and method == "GET":
            refund = self.refunds.get(parts[3])
            return Reply(200, refund) if refund else _error(404, "INVALID_RESOURCE_ID")
        if request.path == "/v1/notifications/verify-webhook-signature" and method == "POST":
            return self._verify(request.json or {})
        if request.path == "/v1/reporting/transactions" and method == "GET":
            return self._transactions(request)
        return _error(404, "NOT_FOUND")

    # ----- OAuth2 -----------------------------------------------------------------------------------------------
    def _token(self, request: RecordedRequest) -> Reply:
        form = parse_qs(request.body.decode())
        if request.basic_auth != (self.client_id, self.client_secret) or form.get("grant_type") != [
            "client_credentials"
        ]:
            return Reply(
                401, {"error": "invalid_client", "error_description": "Client Authentication failed"}
            )
        body = copy.deepcopy(sample("paypal_oauth_token.json"))
        body["access_token"] = "A21AA" + secrets.token_urlsafe(48)
        body["expires_in"] = self.token_expires_in
        self.tokens.add(body["access_token"])
        return Reply(200, body)

    # ----- orders -----------------------------------------------------------------------------------------------
    def _create_order(self, request: RecordedRequest) -> Reply:
        body = request.json or {}
        units = body.get("purchase_units")
        if body.get("intent") not in ("CAPTURE", "AUTHORIZE") or not isinstance(units, list) or not units:
            return _error(400, "MISSING_REQUIRED_PARAMETER")
        amount = units[0].get("amount") or {}
        if not isinstance(amount.get("value"), str) or amount.get("currency_code") not in (
            "USD",
            "EUR",
            "MYR",
            "JPY",
            "SGD",
            "THB",
            "PHP",
        ):
            return _error(422, "INVALID_CURRENCY_CODE")
        order = copy.deepcopy(sample("paypal_order_created.json"))
        order_id = _pp_id()
        order["id"] = order_id
        order["intent"] = body["intent"]
        unit = order["purchase_units"][0]
        for key in ("reference_id", "custom_id", "invoice_id", "description"):
            if key in units[0]:
                unit[key] = units[0][key]
        unit["amount"] = {"currency_code": amount["currency_code"], "value": amount["value"]}
        order["create_time"] = _now()
        action = "capture" if body["intent"] == "CAPTURE" else "authorize"
        order["links"] = [
            {"href": f"{HOST}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"},
            {
                "href": f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}",
                "rel": "approve",
                "method": "GET",
            },
            {"href": f"{HOST}/v2/checkout/orders/{order_id}", "rel": "update", "method": "PATCH"},
            {"href": f"{HOST}/v2/checkout/orders/{order_id}/{action}", "rel": action, "method": "POST"},
        ]
        order["_context"] = body.get("application_context") or {}
        self.orders[order_id] = order
        return Reply(201, _public(order))

    def _new_capture(self, order: dict, amount: dict, *, final: bool, up: str) -> dict:
        unit = order["purchase_units"][0]
        capture = copy.deepcopy(
            sample("paypal_order_captured.json")["purchase_units"][0]["payments"]["captures"][0]
        )
        capture_id = _pp_id()
        capture.update(
            id=capture_id,
            status="DECLINED" if self.decline_next_capture else "COMPLETED",
            amount=dict(amount),
            final_capture=final,
            custom_id=unit.get("custom_id"),
            invoice_id=unit.get("invoice_id"),
            create_time=_now(),
            update_time=_now(),
        )
        if self.decline_next_capture:
            capture["status_details"] = {"reason": "DECLINED_BY_RISK_FRAUD_FILTERS"}
        self.decline_next_capture = False
        value = Decimal(amount["value"])
        fee = (value * Decimal("0.0349") + Decimal("0.49")).quantize(Decimal("0.01"))
        capture["seller_receivable_breakdown"] = {
            "gross_amount": dict(amount),
            "paypal_fee": {"currency_code": amount["currency_code"], "value": str(fee)},
            "net_amount": {"currency_code": amount["currency_code"], "value": str(value - fee)},
        }
        capture["links"] = [
            {"href": f"{HOST}/v2/payments/captures/{capture_id}", "rel": "self", "method": "GET"},
            {"href": f"{HOST}/v2/payments/captures/{capture_id}/refund", "rel": "refund", "method": "POST"},
            {"href": up, "rel": "up", "method": "GET"},
        ]
        unit.setdefault("payments", {}).setdefault("captures", []).append(capture)
        self.captures[capture_id] = {
            **capture,
            "supplementary_data": {"related_ids": {"order_id": order["id"]}},
        }
        return capture

    def _complete(self, order: dict, action: str) -> Reply:
        if order["status"] == "COMPLETED":
            issue = "ORDER_ALREADY_CAPTURED" if order["intent"] == "CAPTURE" else "ORDER_ALREADY_AUTHORIZED"
            return _error(422, issue)
        if order["status"] != "APPROVED":
            reply = _error(422, "ORDER_NOT_APPROVED")
            reply.body = sample("paypal_error.json")  # the recorded answer, verbatim
            return reply
        if (action == "capture") != (order["intent"] == "CAPTURE"):
            return _error(422, "ACTION_DOES_NOT_MATCH_INTENT")
        unit = order["purchase_units"][0]
        if action == "capture":
            self._new_capture(
                order, unit["amount"], final=True, up=f"{HOST}/v2/checkout/orders/{order['id']}"
            )
        else:
            auth = fixture("order_authorized.json")["purchase_units"][0]["payments"]["authorizations"][0]
            auth_id = _pp_id()
            auth.update(
                id=auth_id,
                amount=dict(unit["amount"]),
                custom_id=unit.get("custom_id"),
                invoice_id=unit.get("invoice_id"),
                create_time=_now(),
                update_time=_now(),
                expiration_time=(datetime.now(UTC) + timedelta(days=29)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            auth["links"] = [
                {"href": f"{HOST}/v2/payments/authorizations/{auth_id}", "rel": "self", "method": "GET"},
                {
                    "href": f"{HOST}/v2/payments/authorizations/{auth_id}/capture",
                    "rel": "capture",
                    "method": "POST",
                },
                {
                    "href": f"{HOST}/v2/payments/authorizations/{auth_id}/void",
                    "rel": "void",
                    "method": "POST",
                },
                {"href": f"{HOST}/v2/checkout/orders/{order['id']}", "rel": "up", "method": "GET"},
            ]
            unit.setdefault("payments", {})["authorizations"] = [auth]
            self.authorizations[auth_id] = {**auth, "_order": order["id"]}
        order["status"] = "COMPLETED"
        order["update_time"] = _now()
        return Reply(201, _public(order))

    # ----- authorizations ---------------------------------------------------------------------------------------
    def _order_auth(self, auth: dict) -> tuple[dict, dict]:
        order = self.orders[auth["_order"]]
        return order, order["purchase_units"][0]["payments"]["authorizations"][0]

    def _capture_authorization(self, auth: dict, body: dict) -> Reply:
        order, in_order = self._order_auth(auth)
        if auth["status"] not in ("CREATED", "PARTIALLY_CAPTURED"):
            return _error(
                422,
                "AUTHORIZATION_ALREADY_CAPTURED" if auth["status"] == "CAPTURED" else "AUTHORIZATION_VOIDED",
            )
        amount = body.get("amount") or auth["amount"]
        if Decimal(amount["value"]) > Decimal(auth["amount"]["value"]):
            return _error(422, "MAX_CAPTURE_AMOUNT_EXCEEDED")
        capture = self._new_capture(
            order,
            amount,
            final=bool(body.get("final_capture")),
            up=f"{HOST}/v2/payments/authorizations/{auth['id']}",
        )
        status = "CAPTURED" if body.get("final_capture") or amount == auth["amount"] else "PARTIALLY_CAPTURED"
        auth["status"] = in_order["status"] = status
        return Reply(201, _public(self.captures[capture["id"]]))

    def _void(self, auth: dict) -> Reply:
        _, in_order = self._order_auth(auth)
        if auth["status"] != "CREATED":
            return _error(422, "PREVIOUSLY_VOIDED" if auth["status"] == "VOIDED" else "CANNOT_BE_VOIDED")
        auth["status"] = in_order["status"] = "VOIDED"
        return Reply(200, _public(auth))

    # ----- refunds ----------------------------------------------------------------------------------------------
    def _refund(self, capture: dict, body: dict) -> Reply:
        order = self.orders[capture["supplementary_data"]["related_ids"]["order_id"]]
        payments = order["purchase_units"][0]["payments"]
        in_order = next(c for c in payments["captures"] if c["id"] == capture["id"])
        if in_order["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED"):
            return _error(
                422, "CAPTURE_FULLY_REFUNDED" if in_order["status"] == "REFUNDED" else "REFUND_NOT_ALLOWED"
            )
        refunded = sum(
            Decimal(r["amount"]["value"])
            for r in payments.get("refunds", [])
            if r["status"] == "COMPLETED" and r["_capture"] == capture["id"]
        )
        left = Decimal(capture["amount"]["value"]) - refunded
        amount = body.get("amount") or {
            "currency_code": capture["amount"]["currency_code"],
            "value": str(left),
        }
        if Decimal(amount["value"]) > left:
            return _error(422, "REFUND_AMOUNT_EXCEEDED")
        refund = copy.deepcopy(sample("paypal_refund_created.json"))
        refund_id = _pp_id()
        refund.update(
            id=refund_id,
            amount=dict(amount),
            status=self.refund_status,
            create_time=_now(),
            update_time=_now(),
        )
        for key in ("invoice_id", "custom_id", "note_to_payer"):
            if key in body:
                refund[key] = body[key]
            else:
                refund.pop(key, None)
        breakdown = refund["seller_payable_breakdown"]
        breakdown["gross_amount"] = breakdown["net_amount"] = dict(amount)
        breakdown["total_refunded_amount"] = {
            "currency_code": amount["currency_code"],
            "value": str(refunded + Decimal(amount["value"])),
        }
        refund["links"] = [
            {"href": f"{HOST}/v2/payments/refunds/{refund_id}", "rel": "self", "method": "GET"},
            {"href": f"{HOST}/v2/payments/captures/{capture['id']}", "rel": "up", "method": "GET"},
        ]
        self.refunds[refund_id] = refund
        payments.setdefault("refunds", []).append({**refund, "_capture": capture["id"]})
        if self.refund_status == "COMPLETED":
            status = "REFUNDED" if Decimal(amount["value"]) == left else "PARTIALLY_REFUNDED"
            in_order["status"] = capture["status"] = status
        return Reply(201, refund)

    # ----- Transaction Search (PPSPEC reporting_transactions_v1.json) ----------------------------------------------
    def transaction_rows(self) -> list[dict]:
        rows = []
        for capture in self.captures.values():
            if capture["status"] == "DECLINED":
                continue
            fee = capture["seller_receivable_breakdown"]["paypal_fee"]
            rows.append(
                {
                    "transaction_id": capture["id"],
                    "transaction_event_code": "T0006",
                    "transaction_initiation_date": capture["create_time"],
                    "transaction_updated_date": capture["update_time"],
                    "transaction_amount": dict(capture["amount"]),
                    "fee_amount": {"currency_code": fee["currency_code"], "value": f"-{fee['value']}"},
                    "transaction_status": "S",
                    "invoice_id": capture.get("invoice_id"),
                    "custom_field": capture.get("custom_id"),
                    "protection_eligibility": "02",
                }
            )
        for refund in self.refunds.values():
            if refund["status"] != "COMPLETED":
                continue
            capture_id = refund["links"][1]["href"].rsplit("/", 1)[-1]
            row = {
                "transaction_id": refund["id"],
                "paypal_reference_id": capture_id,
                "paypal_reference_id_type": "TXN",
                "transaction_event_code": "T1107",
                "transaction_initiation_date": refund["create_time"],
                "transaction_updated_date": refund["update_time"],
                "transaction_amount": {
                    "currency_code": refund["amount"]["currency_code"],
                    "value": f"-{refund['amount']['value']}",
                },
                "transaction_status": "S",
            }
            row.update({k: refund[k] for k in ("invoice_id",) if k in refund})
            if "custom_id" in refund:
                row["custom_field"] = refund["custom_id"]
            rows.append(row)
        return rows + self.extra_transactions

    def _transactions(self, request: RecordedRequest) -> Reply:
        query = {k: v[0] for k, v in request.query.items()}
        try:
            start = datetime.fromisoformat(query["start_date"])
            end = datetime.fromisoformat(query["end_date"])
            size, page = int(query.get("page_size", "100")), int(query.get("page", "1"))
        except (KeyError, ValueError):
            return _error(400, "INVALID_REQUEST")
        if end < start or end - start > timedelta(days=31) or not 1 <= size <= 500:
            return _error(400, "INVALID_REQUEST")
        rows = [
            r
            for r in self.transaction_rows()
            if start <= datetime.fromisoformat(r["transaction_initiation_date"]) <= end
        ]
        pages = max(1, -(-len(rows) // size))
        chunk = rows[(page - 1) * size : page * size]
        return Reply(
            200,
            {
                "transaction_details": [{"transaction_info": row} for row in chunk],
                "account_number": "7CL55F9ES7MLC",
                "start_date": query["start_date"],
                "end_date": query["end_date"],
                "last_refreshed_datetime": _now(),
                "page": page,
                "total_items": len(rows),
                "total_pages": pages,
            },
        )

    # ----- webhooks ---------------------------------------------------------------------------------------------
    def _signature(self, transmission_id: str, time: str, body: bytes) -> str:
        message = f"{transmission_id}|{time}|{self.webhook_id}|{zlib.crc32(body)}".encode()
        return base64.b64encode(hmac.new(self._secret, message, hashlib.sha256).digest()).decode()

    def deliver(self, event: dict) -> tuple[bytes, dict[str, str]]:
        """The raw body and headers PayPal would POST to the webhook URL (recorded for verification)."""
        body = json.dumps(event, default=str).encode()
        transmission_id = str(uuid.uuid4())
        time = _now()
        signature = self._signature(transmission_id, time, body)
        self._transmissions[transmission_id] = (signature, json.loads(body, parse_float=Decimal))
        return body, {
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": time,
            "PAYPAL-TRANSMISSION-SIG": signature,
            "PAYPAL-CERT-URL": "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "Content-Type": "application/json",
        }

    def _verify(self, body: dict) -> Reply:
        required = (
            "auth_algo",
            "cert_url",
            "transmission_id",
            "transmission_sig",
            "transmission_time",
            "webhook_id",
            "webhook_event",
        )
        if any(not body.get(key) for key in required):
            return _error(400, "MISSING_REQUIRED_PARAMETER")
        known = self._transmissions.get(body["transmission_id"])
        ok = (
            known is not None
            and hmac.compare_digest(known[0], body["transmission_sig"])
            and body["webhook_id"] == self.webhook_id
            and known[1] == body["webhook_event"]
        )
        status = self.verify_result or ("SUCCESS" if ok else "FAILURE")
        return Reply(200, {"verification_status": status})

    @staticmethod
    def _envelope(event: dict, resource: dict, event_type: str | None = None) -> dict:
        event = copy.deepcopy(event)
        event["id"] = f"WH-{_pp_id()}-{_pp_id()}"
        event["create_time"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if event_type:
            event["event_type"] = event_type
        event["resource"] = _public(resource)
        for link in event.get("links", []):
            base = link["href"].split("/webhooks-events/")[0]
            link["href"] = f"{base}/webhooks-events/{event['id']}" + (
                "/resend" if link["rel"] == "resend" else ""
            )
        return event

    def approved_event(self, order_id: str) -> dict:
        return self._envelope(fixture("checkout_order_approved_event.json"), self.orders[order_id])

    def capture_event(self, capture_id: str, event_type: str = "PAYMENT.CAPTURE.COMPLETED") -> dict:
        template = (
            sample("paypal_capture_completed_event.json")  # recorded
            if event_type == "PAYMENT.CAPTURE.COMPLETED"
            else fixture("payment_capture_denied_event.json")
        )
        return self._envelope(template, self.captures[capture_id], event_type)

    def refund_event(self, refund_id: str) -> dict:
        return self._envelope(fixture("payment_capture_refunded_event.json"), self.refunds[refund_id])

    def reversal_event(self, capture_id: str, amount_value: str | None = None) -> dict:
        """PayPal takes the money back (a chargeback): PAYMENT.CAPTURE.REVERSED, a refund-shaped resource."""
        capture = self.captures[capture_id]
        event = fixture("payment_capture_reversed_event.json")
        resource = event["resource"]
        resource["id"] = _pp_id()
        resource["amount"] = {
            "currency_code": capture["amount"]["currency_code"],
            "value": amount_value or capture["amount"]["value"],
        }
        resource["links"] = [
            {"href": f"{HOST}/v2/payments/refunds/{resource['id']}", "rel": "self", "method": "GET"},
            {"href": f"{HOST}/v2/payments/captures/{capture_id}", "rel": "up", "method": "GET"},
        ]
        return self._envelope(event, resource)
