from django.apps import AppConfig


def _sandbox_inbound_handler(account, headers, body):
    """The sandbox checkout's webhooks go through the same inbound pipeline as a real gateway's HTTP delivery."""
    from webhooks.inbound.services import sandbox_inbound_handler

    return sandbox_inbound_handler(account, headers, body)


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"

    def ready(self) -> None:
        from gateways.sandbox import dispatch
        from invoices.selectors import register_payments_provider
        from invoices.services import register_invoice_voided_hook
        from payments.selectors import payments_for_invoices
        from payments.services import payments_close_for_invoice

        # The invoice object's `payments` list (one query per page of invoices).
        register_payments_provider(payments_for_invoices)
        # A voided invoice's open gateway payments are expired at the gateway.
        register_invoice_voided_hook(payments_close_for_invoice)
        # gateways.sandbox.dispatch asks for an inbound handler (see its docstring).
        dispatch.INBOUND_HANDLER = _sandbox_inbound_handler
