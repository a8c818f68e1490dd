from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"

    def ready(self) -> None:
        from invoices.selectors import register_payments_provider
        from payments.selectors import payments_for_invoices

        # The invoice object's `payments` list (one query per page of invoices).
        register_payments_provider(payments_for_invoices)
