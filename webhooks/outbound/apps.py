from django.apps import AppConfig


class OutboundWebhooksConfig(AppConfig):
    """The outbox: merchant webhook endpoints, events, deliveries. Label `webhooks` keeps its tables and history."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks.outbound"
    label = "webhooks"
    verbose_name = "Outbound merchant events"

    def ready(self) -> None:
        from paytrust.crypto import register_encrypted_field

        # Outbound endpoint signing secrets (re-encrypted by `manage.py rotate_encryption_keys`).
        register_encrypted_field("webhooks.WebhookEndpoint", "secret_encrypted")
        register_encrypted_field("webhooks.WebhookEndpoint", "previous_secret_encrypted")
