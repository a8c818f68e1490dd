"""How the sandbox gateway "sends" its webhooks: straight into PayTrust's inbound pipeline, in process.

The sandbox does not POST over the network (it would call itself). `send_webhook` hands the signed delivery to
`INBOUND_HANDLER`, which the inbound-webhooks work points at its ingestion service, e.g. in
`webhooks/apps.py`:

    class WebhooksConfig(AppConfig):
        def ready(self):
            from gateways.sandbox import dispatch
            from webhooks.outbound.services import inbound_webhook_receive
            dispatch.INBOUND_HANDLER = lambda account, headers, body: inbound_webhook_receive(
                gateway="sandbox", account_id=account.pk, headers=headers, raw_body=body)

Handler contract: `handler(account: GatewayAccount, headers: dict[str, str], body: bytes) -> object`. It must treat
the delivery exactly like `POST /v1/webhooks/sandbox/{account.id}` with those headers and that raw body: verify
with `gateway_for_account(account).verify_webhook(headers, body)`, store, deduplicate on the event id, enqueue
processing, return. Raising means "not delivered": the checkout page says so, and submitting the form again
re-delivers the SAME event (same id and body, fresh signature timestamp).
It is called after the checkout outcome has committed, inside a transaction that holds the checkout session's
row lock, wrapped in a savepoint: the handler's writes commit together with the session's "delivered" mark (so
concurrent form submissions deliver exactly once), and a raising handler's writes are rolled back.
The handler must therefore not do network I/O or rely on running outside a transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateways.models import GatewayAccount

InboundHandler = Callable[["GatewayAccount", dict[str, str], bytes], Any]

INBOUND_HANDLER: InboundHandler | None = None


class WebhookNotDelivered(Exception):
    """The inbound handler is missing or failed; the message is safe to show on the sandbox page."""


def send_webhook(account: GatewayAccount, headers: Mapping[str, str], body: bytes) -> Any:
    handler = INBOUND_HANDLER
    if handler is None:
        raise WebhookNotDelivered(
            "No inbound webhook handler is installed (gateways.sandbox.dispatch.INBOUND_HANDLER)."
        )
    return handler(account, dict(headers), body)
