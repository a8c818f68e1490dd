from django.contrib.postgres.fields import ArrayField
from django.db import models

from paytrust.ids import ID_MAX_LENGTH, id_default
from paytrust.models import Mode, TimeStampedModel


class Scope(models.TextChoices):
    ADMIN = "admin", "Admin"


class ApiKey(TimeStampedModel):
    """An API key. Only an Argon2id hash of the secret is stored; `prefix` is the non-secret lookup handle.

    Plaintext format: ``pt_<mode>_<lookup 12>_<secret 32>``; ``prefix`` = ``pt_<mode>_<lookup>``.
    """

    id = models.CharField(
        primary_key=True, max_length=ID_MAX_LENGTH, default=id_default("key"), editable=False
    )
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    mode = models.CharField(max_length=4, choices=Mode.choices)
    scopes = ArrayField(models.CharField(max_length=20, choices=Scope.choices), default=list, blank=True)
    prefix = models.CharField(max_length=40, unique=True)
    secret_hash = models.CharField(max_length=200)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Set when the key was rotated with a grace period: refused from this instant on.
    expires_at = models.DateTimeField(null=True, blank=True)
    rotated_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rotated_to"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["merchant", "-created_at"])]
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        # Back-office actions (reporting/roles.py grants them; docs/adr/0042).
        permissions = [
            ("rotate_apikey", "Can rotate API keys (shows the new secret once)"),
            ("revoke_apikey", "Can revoke API keys"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or self.id})"

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes


class AuditLog(models.Model):
    """Append-only record of key lifecycle events, failed authentications and admin actions. Kept one year."""

    class Action(models.TextChoices):
        KEY_CREATED = "api_key.created", "API key created"
        KEY_ROTATED = "api_key.rotated", "API key rotated"
        KEY_REVOKED = "api_key.revoked", "API key revoked"
        AUTH_FAILED = "auth.failed", "Authentication failed"
        ADMIN_ACTION = "admin.action", "Staff or operator action"

    id = models.CharField(
        primary_key=True, max_length=ID_MAX_LENGTH, default=id_default("aud"), editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=40, choices=Action.choices)
    actor = models.CharField(max_length=200, help_text="key id, 'user:<username>', 'system' or 'anonymous'")
    merchant = models.ForeignKey("merchants.Merchant", null=True, blank=True, on_delete=models.SET_NULL)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The mode of the data the row is about (the key's mode for key events and failed authentications); empty for
    # back-office and operator actions that belong to no mode. Admin keys read only their own mode's rows.
    mode = models.CharField(max_length=4, choices=Mode.choices, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"]),
            models.Index(fields=["merchant", "-created_at"]),
            models.Index(fields=["action", "-created_at"]),
            models.Index(fields=["mode", "-created_at"], name="audit_mode_created_idx"),
        ]


class IdempotencyRecord(models.Model):
    """One `Idempotency-Key` of one merchant and mode: claimed before the work runs, completed with the response.

    The UNIQUE constraint on (merchant, mode, key) is the lock: a request first INSERTs its claim, and a concurrent
    or later request with the same key hits the conflict and reads the existing row instead (apikeys/idempotency.py).
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    # Indexed by the (merchant, mode, key) unique constraint: no separate index (each POST inserts a row).
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    mode = models.CharField(max_length=4, choices=Mode.choices)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and canonical body")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    locked_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "mode", "key"], name="idempotency_key_unique"),
        ]
