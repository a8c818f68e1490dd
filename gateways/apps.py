from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "gateways"

    def ready(self) -> None:
        from paytrust.crypto import register_encrypted_field

        # Re-encrypted by `manage.py rotate_encryption_keys`.
        register_encrypted_field("gateways.GatewayAccount", "credentials_encrypted")
