from django.apps import AppConfig


class ApikeysConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apikeys"
    verbose_name = "API keys and audit log"

    def ready(self) -> None:
        from apikeys import schema  # noqa: F401 - registers the OpenAPI authentication extension
