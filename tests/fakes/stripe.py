"""A fake Stripe API speaking Stripe's protocol (shared/reference/gateways-global.md §1), fed with the recorded
payloads (shared/gateway_samples/stripe_*.json and tests/fixtures/stripe/*.json, each with its .source.txt).

- Auth: the secret key as HTTP Basic user (or Bearer); anything else -> 401 with Stripe's error envelope.
- Bodies application/x-www-form-urlencoded with nested `a[b][0][c]=v` keys; `Idempotency-Key` on POST: the same key
  replays the first answer.
- POST /v1/checkout/sessions (mode=payment, line_items[0][price_data][unit_amount|currency], expires_at within
  30 min–24 h, else 400 like Stripe); GET /v1/checkout/sessions/{id} (expand payment_intent(.latest_charge));
  GET /v1/checkout/sessions?created[gte]=…&limit=…&starting_after=… (a list object);
  POST /v1/checkout/sessions/{id}/expire (only while open).
- POST /v1/payment_intents/{id}/capture (amount_to_capture <= amount_capturable, from requires_capture only) and
  /cancel; POST /v1/refunds (payment_intent, amount <= what is left, metadata); GET /v1/refunds/{id};
  GET /v1/refunds?payment_intent=….
- Test controls: `pay` (the customer pays on the hosted page: intent + charge, session complete), `decline`,
  `dispute`; `event(type, object)` builds the event Stripe would send and `signature_header` signs it (computed
  here with hmac, independently of the adapter's stripe library).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl

from tests.fakes.samples import sample
from tests.fakes.server import FakeGatewayServer, RecordedRequest, Reply

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stripe"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def parse_form(body: bytes) -> dict:
    """`a[b][0]=x` -> {"a": {"b": {"0": "x"}}} (lists stay dicts keyed by index, as Stripe's decoder allows)."""
    result: dict = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


def signature_header(
    body: bytes, secret: str, *, timestamp: int | None = None, extra: tuple[str, ...] = ()
) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    signed = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return ",".join([f"t={t}", *(f"v1={s}" for s in extra), f"v1={signed}"])


def _error(status: int, type_: str, message: str, code: str = "", **more) -> Reply:
    error = {"type": type_, "message": message, **more}
    if code:
        error["code"] = code
    return Reply(status, {"error": error})


class FakeStripe(FakeGatewayServer):
    def __init__(self, *, secret_key: str) -> None:
        super().__init__()
        self.secret_key = secret_key
        self.sessions: dict[str, dict] = {}
        self.intents: dict[str, dict] = {}
        self.charges: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.disputes: dict[str, dict] = {}
        self.refund_status = "succeeded"
        self.balance_transactions: list[dict] = []  # (txn, source kind, source id), see _txn
        self.fee_minor = 59  # Stripe's fee on each charge in these tests, in Stripe's minor units
        self._replies: dict[str, Reply] = {}
        self._state = threading.RLock()

    # ----- routing ------------------------------------------------------------------------------------------
    def route(self, request: RecordedRequest) -> Reply:
        auth = request.header("Authorization") or ""
        key = request.basic_auth[0] if request.basic_auth else auth.removeprefix("Bearer ")
        if key != self.secret_key:
            return _error(401, "invalid_request_error", "Invalid API Key provided: sk_test_****")
        if request.method == "POST":
            idem = request.header("Idempotency-Key") or ""
            with self._state:
                if idem and (request.path, idem) in self._replies:
                    return self._replies[(request.path, idem)]
                reply = self._post(request.path, parse_form(request.body))
                if idem and reply.status < 500:
                    self._replies[(request.path, idem)] = reply
                return reply
        with self._state:
            return self._get(request)

    def _post(self, path: str, form: dict) -> Reply:
        parts = path.strip("/").split("/")
        if path == "/v1/checkout/sessions":
            return self._create_session(form)
        if parts[:3] == ["v1", "checkout", "sessions"] and len(parts) == 5 and parts[4] == "expire":
            return self._expire(parts[3])
        if parts[:2] == ["v1", "payment_intents"] and len(parts) == 4:
            return self._capture(parts[2], form) if parts[3] == "capture" else self._cancel(parts[2])
        if path == "/v1/refunds":
            return self._create_refund(form)
        return _error(404, "invalid_request_error", f"Unrecognized request URL (POST: {path}).")

    def _get(self, request: RecordedRequest) -> Reply:
        path, query = request.path, {k: v[-1] for k, v in request.query.items()}
        parts = path.strip("/").split("/")
        if path == "/v1/checkout/sessions":
            items = [s for s in self.sessions.values() if s["created"] >= int(query.get("created[gte]", 0))]
            return self._list(sorted(items, key=lambda s: -s["created"]), query)
        if parts[:3] == ["v1", "checkout", "sessions"] and len(parts) == 4:
            session = self.sessions.get(parts[3])
            if session is None:
                return self._missing("checkout session", parts[3])
            expand = {v for k, v in query.items() if k.startswith("expand")}
            return Reply(200, self._expanded(session, expand))
        if path == "/v1/refunds":
            items = [r for r in self.refunds.values() if r["payment_intent"] == query.get("payment_intent")]
            return self._list(items, query)
        if path == "/v1/balance_transactions":
            return self._balance_transactions(query)
        if parts[:2] == ["v1", "payment_intents"] and len(parts) == 3:
            intent = self.intents.get(parts[2])
            return Reply(200, copy.deepcopy(intent)) if intent else self._missing("payment_intent", parts[2])
        if parts[:2] == ["v1", "refunds"] and len(parts) == 3:
            refund = self.refunds.get(parts[2])
            return Reply(200, refund) if refund else self._missing("refund", parts[2])
        return _error(404, "invalid_request_error", f"Unrecognized request URL (GET: {path}).")

    def _list(self, items: list[dict], query: dict) -> Reply:
        after, limit = query.get("starting_after"), int(query.get("limit", 10))
        if after:
            ids = [item["id"] for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        return Reply(
            200, {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": "/v1/x"}
        )

    def _missing(self, what: str, ident: str) -> Reply:
        return _error(404, "invalid_request_error", f"No such {what}: '{ident}'", "resource_missing")

    def _expanded(self, session: dict, expand: set[str]) -> dict:
        out = copy.deepcopy(session)
        intent_id = out.get("payment_intent")
        if intent_id and "payment_intent" in expand:
            intent = copy.deepcopy(self.intents[intent_id])
            if "payment_intent.latest_charge" in expand and intent.get("latest_charge"):
                intent["latest_charge"] = copy.deepcopy(self.charges[intent["latest_charge"]])
            out["payment_intent"] = intent
        return out

    # ----- Checkout Sessions --------------------------------------------------------------------------------
    def _create_session(self, form: dict) -> Reply:
        now = int(time.time())
        try:
            item = form["line_items"]["0"]
            unit_amount, currency = int(item["price_data"]["unit_amount"]), item["price_data"]["currency"]
            quantity = int(item.get("quantity", "1"))
            expires_at = int(form.get("expires_at", now + 86400))
        except (KeyError, ValueError):
            return _error(
                400, "invalid_request_error", "Missing required param: line_items.", "parameter_missing"
            )
        if form.get("mode") != "payment":
            return _error(
                400, "invalid_request_error", "Invalid mode.", "parameter_invalid_string", param="mode"
            )
        if not now + 1800 <= expires_at <= now + 86400:
            return _error(
                400,
                "invalid_request_error",
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.",
                "parameter_invalid_integer",
                param="expires_at",
            )
        session = sample("stripe_checkout_session_created.json")
        session_id = "cs_test_" + secrets.token_hex(24)
        session.update(
            id=session_id,
            amount_subtotal=unit_amount * quantity,
            amount_total=unit_amount * quantity,
            currency=currency,
            created=now,
            expires_at=expires_at,
            client_reference_id=form.get("client_reference_id"),
            metadata=form.get("metadata", {}),
            success_url=form.get("success_url"),
            cancel_url=form.get("cancel_url"),
            customer_email=form.get("customer_email"),
            url=f"https://checkout.stripe.com/c/pay/{session_id}",
        )
        session["_intent_data"] = form.get("payment_intent_data", {})  # kept for `pay`; stripped from answers
        self.sessions[session_id] = session
        return Reply(200, self._public(session))

    @staticmethod
    def _public(session: dict) -> dict:
        return {k: v for k, v in session.items() if not k.startswith("_")}

    def _expire(self, session_id: str) -> Reply:
        session = self.sessions.get(session_id)
        if session is None:
            return self._missing("checkout session", session_id)
        if session["status"] != "open":
            return _error(
                400, "invalid_request_error", "Only Checkout Sessions with a status of `open` can be expired."
            )
        session.update(status="expired", url=None)
        return Reply(200, self._public(session))

    # ----- PaymentIntents -----------------------------------------------------------------------------------
    def _capture(self, intent_id: str, form: dict) -> Reply:
        intent = self.intents.get(intent_id)
        if intent is None:
            return self._missing("payment_intent", intent_id)
        if intent["status"] != "requires_capture":
            return _error(
                400,
                "invalid_request_error",
                f"This PaymentIntent could not be captured because it has a status of {intent['status']}.",
                "payment_intent_unexpected_state",
            )
        amount = int(form.get("amount_to_capture", intent["amount_capturable"]))
        if amount > intent["amount_capturable"]:
            return _error(400, "invalid_request_error", "Amount to capture is too large.", "amount_too_large")
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        self.charges[intent["latest_charge"]].update(amount_captured=amount, captured=True)
        self._txn(
            "charge", amount, intent["currency"], ("charge", intent["latest_charge"]), fee=self.fee_minor
        )
        return Reply(200, self._intent_answer(intent, form))

    def _cancel(self, intent_id: str) -> Reply:
        intent = self.intents.get(intent_id)
        if intent is None:
            return self._missing("payment_intent", intent_id)
        if intent["status"] in ("succeeded", "canceled"):
            return _error(
                400,
                "invalid_request_error",
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}.",
                "payment_intent_unexpected_state",
            )
        intent.update(status="canceled", amount_capturable=0, canceled_at=int(time.time()))
        intent["cancellation_reason"] = "requested_by_customer"
        return Reply(200, self._intent_answer(intent, {}))

    def _intent_answer(self, intent: dict, form: dict) -> dict:
        out = copy.deepcopy(intent)
        expand = form.get("expand", {})
        if "latest_charge" in expand.values() and out.get("latest_charge"):
            out["latest_charge"] = copy.deepcopy(self.charges[out["latest_charge"]])
        return out

    # ----- Refunds ------------------------------------------------------------------------------------------
    def _create_refund(self, form: dict) -> Reply:
        intent = self.intents.get(form.get("payment_intent", ""))
        if intent is None:
            return self._missing("payment_intent", form.get("payment_intent", ""))
        charge = self.charges[intent["latest_charge"]]
        if intent["status"] != "succeeded":
            return _error(
                400, "invalid_request_error", "This PaymentIntent has no successful charge to refund."
            )
        left = charge["amount_captured"] - charge["amount_refunded"]
        amount = int(form.get("amount", left))
        if amount <= 0 or amount > left:
            return _error(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                "amount_too_large",
            )
        refund = sample("stripe_refund_created.json")
        refund.update(
            id="re_" + secrets.token_hex(12),
            amount=amount,
            charge=charge["id"],
            payment_intent=intent["id"],
            currency=intent["currency"],
            created=int(time.time()),
            metadata=form.get("metadata", {}),
            reason=form.get("reason"),
            status=self.refund_status,
        )
        self.refunds[refund["id"]] = refund
        if refund["status"] == "succeeded":
            self._refund_charge(charge, amount)
            self._txn("refund", -amount, refund["currency"], ("refund", refund["id"]))
        return Reply(200, refund)

    def _refund_charge(self, charge: dict, amount: int) -> None:
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]

    # ----- test controls ------------------------------------------------------------------------------------
    def pay(self, session_id: str, *, amount: int | None = None) -> dict:
        """The customer pays on the hosted page: the intent (automatic capture: succeeded; manual:
        requires_capture) and its charge are created, the session completes. Returns the public session."""
        with self._state:
            session = self.sessions[session_id]
            data = session["_intent_data"]
            manual = data.get("capture_method") == "manual"
            amount = session["amount_total"] if amount is None else amount
            now = int(time.time())
            name = (
                "stripe_payment_intent_requires_capture.json"
                if manual
                else "stripe_payment_intent_succeeded_event.json"
            )
            intent = sample(name)
            intent = intent["data"]["object"] if "data" in intent else intent
            charge = fixture("charge")
            charge_id = "ch_" + secrets.token_hex(12)
            intent.update(
                id="pi_" + secrets.token_hex(12),
                amount=amount,
                amount_received=0 if manual else amount,
                amount_capturable=amount if manual else 0,
                currency=session["currency"],
                capture_method="manual" if manual else "automatic",
                status="requires_capture" if manual else "succeeded",
                metadata=data.get("metadata", {}),
                description=data.get("description"),
                latest_charge=charge_id,
                created=now,
            )
            charge.update(
                id=charge_id,
                amount=amount,
                amount_captured=0 if manual else amount,
                amount_refunded=0,
                refunded=False,
                captured=not manual,
                currency=session["currency"],
                payment_intent=intent["id"],
                metadata=data.get("metadata", {}),
                created=now,
                paid=True,
                status="succeeded",
            )
            self.intents[intent["id"]] = intent
            self.charges[charge_id] = charge
            if not manual:
                self._txn("charge", amount, session["currency"], ("charge", charge_id), fee=self.fee_minor)
            session.update(
                status="complete",
                payment_status="unpaid" if manual else "paid",
                payment_intent=intent["id"],
                url=None,
            )
            return self._public(session)

    def decline(self, session_id: str) -> dict:
        """A card is declined: the intent exists with last_payment_error (the recorded card_declined error)."""
        with self._state:
            session = self.sessions[session_id]
            intent = sample("stripe_payment_intent_created.json")
            intent.update(
                id="pi_" + secrets.token_hex(12),
                amount=session["amount_total"],
                currency=session["currency"],
                metadata=session["_intent_data"].get("metadata", {}),
                last_payment_error=sample("stripe_error_card_declined.json")["error"],
            )
            self.intents[intent["id"]] = intent
            session["payment_intent"] = intent["id"]
            return copy.deepcopy(intent)

    def intent_of(self, session_id: str) -> dict:
        return copy.deepcopy(self.intents[self.sessions[session_id]["payment_intent"]])

    def charge_of(self, session_id: str) -> dict:
        return copy.deepcopy(self.charges[self.intent_of(session_id)["latest_charge"]])

    def refund_in_dashboard(self, session_id: str, amount: int) -> tuple[dict, dict]:
        """A refund made in Stripe's dashboard (no metadata of ours): returns the charge afterwards and the Refund
        object Stripe creates for it (what charge.refunded and refund.created carry)."""
        with self._state:
            intent = self.intents[self.sessions[session_id]["payment_intent"]]
            charge = self.charges[intent["latest_charge"]]
            self._refund_charge(charge, amount)
            refund = sample("stripe_refund_created.json")
            refund.update(
                id="re_" + secrets.token_hex(12),
                amount=amount,
                charge=charge["id"],
                payment_intent=intent["id"],
                currency=intent["currency"],
                created=int(time.time()),
                metadata={},
                status="succeeded",
            )
            self.refunds[refund["id"]] = refund
            return copy.deepcopy(charge), copy.deepcopy(refund)

    def dispute(self, session_id: str, *, amount: int | None = None) -> dict:
        """A card dispute on the session's charge (the recorded Dispute object with our charge / intent)."""
        charge = self.charge_of(session_id)
        dispute = fixture("dispute")
        dispute.update(
            id="dp_" + secrets.token_hex(12),
            amount=charge["amount_captured"] if amount is None else amount,
            currency=charge["currency"],
            charge=charge["id"],
            payment_intent=charge["payment_intent"],
            created=int(time.time()),
        )
        return dispute

    def record_dispute(self, dispute: dict, *, fee: int = 1500) -> None:
        """The dispute's debit (and Stripe's dispute fee) on the balance."""
        with self._state:
            self.disputes[dispute["id"]] = dispute
            self._txn("dispute", -dispute["amount"], dispute["currency"], ("dispute", dispute["id"]), fee=fee)

    def record_payout(self, amount: int, currency: str) -> None:
        with self._state:
            self._txn("payout", -amount, currency, None)

    def _txn(self, category: str, amount: int, currency: str, source, *, fee: int = 0) -> None:
        txn = fixture("balance_transaction")
        txn.update(
            id="txn_" + secrets.token_hex(12),
            amount=amount,
            fee=fee,
            net=amount - fee,
            currency=currency,
            created=int(time.time()),
            available_on=int(time.time()) + 2 * 86400,
            reporting_category=category,
            type=category if category != "dispute" else "adjustment",
            description=None,
            source=source[1] if source else "po_" + secrets.token_hex(12),
        )
        self.balance_transactions.append({"txn": txn, "source": source})

    def _source(self, source, expand: set[str]):
        kind, ident = source
        obj = copy.deepcopy(
            {"charge": self.charges, "refund": self.refunds, "dispute": self.disputes}[kind][ident]
        )
        if "data.source.payment_intent" in expand and isinstance(obj.get("payment_intent"), str):
            obj["payment_intent"] = copy.deepcopy(self.intents[obj["payment_intent"]])
        return obj

    def _balance_transactions(self, query: dict) -> Reply:
        gte, lt = int(query.get("created[gte]", 0)), int(query.get("created[lt]", 2**40))
        expand = {v for k, v in query.items() if k.startswith("expand")}
        items = []
        for entry in self.balance_transactions:
            txn = copy.deepcopy(entry["txn"])
            if not gte <= txn["created"] < lt:
                continue
            if "data.source" in expand and entry["source"]:
                txn["source"] = self._source(entry["source"], expand)
            items.append(txn)
        return self._list(items, query)

    def session(self, session_id: str) -> dict:
        return self._public(copy.deepcopy(self.sessions[session_id]))


def stripe_event(event_type: str, obj: dict, *, created: int | None = None, event_id: str = "") -> bytes:
    """The event Stripe delivers: the recorded envelope (tests/fixtures/stripe/event.json) around `obj`."""
    event = fixture("event")
    event.update(
        id=event_id or "evt_" + secrets.token_hex(12),
        type=event_type,
        created=int(time.time()) if created is None else created,
        data={"object": obj},
    )
    return json.dumps(event).encode()
