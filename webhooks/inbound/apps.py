from django.apps import AppConfig


class InboundWebhooksConfig(AppConfig):
    """Inbound gateway notifications: receive, verify, store, process by calling payments."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks.inbound"
    label = "inbound"
    verbose_name = "Inbound gateway notifications"
