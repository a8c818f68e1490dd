"""Django admin for outbound webhooks: endpoints, events, deliveries with their attempts.

Everything is read-only here except through actions that call webhooks.services (the same code as the API and
`manage.py redeliver_events`); each action is audited as `user:<username>`. Secrets are never displayed.
(The inbound side registers its own admin classes in this module under its own names.)
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from apikeys.models import AuditLog
from apikeys.services import Actor, audit_record
from paytrust.errors import ApplicationError
from webhooks import services
from webhooks.models import (
    Delivery,
    DeliveryAttempt,
    Event,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventAttempt,
)


def _audit(request, action: str, **details) -> None:
    actor = Actor(
        label=f"user:{request.user.get_username()}",
        ip=request.META.get("REMOTE_ADDR"),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )
    audit_record(action=AuditLog.Action.ADMIN_ACTION, actor=actor, action_name=action, **details)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class OutboundWebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ["id", "merchant", "mode", "url", "enabled", "disabled_reason", "created_at", "deleted_at"]
    list_filter = ["mode", "enabled", "disabled_reason", ("merchant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "url", "merchant__id", "merchant__name"]
    list_select_related = ["merchant"]
    exclude = ["secret_encrypted", "previous_secret_encrypted"]
    actions = ["enable_endpoints", "disable_endpoints"]

    @admin.action(description="Enable selected endpoints")
    def enable_endpoints(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected endpoints")
    def disable_endpoints(self, request, queryset):
        self._set_enabled(request, queryset, False)

    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        ids = []
        for endpoint in queryset.filter(deleted_at__isnull=True):
            services.endpoint_update(endpoint=endpoint, enabled=enabled)
            ids.append(endpoint.id)
        _audit(request, "webhooks.endpoint_enable" if enabled else "webhooks.endpoint_disable", endpoints=ids)
        messages.success(request, f"{len(ids)} endpoint(s) {'enabled' if enabled else 'disabled'}.")


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = [
        "id",
        "endpoint",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_status_code",
        "last_error",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Event)
class OutboundEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "type", "merchant", "mode", "created_at"]
    list_filter = ["type", "mode", ("merchant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "merchant__id"]
    list_select_related = ["merchant"]
    date_hierarchy = "created_at"
    inlines = [DeliveryInline]
    actions = ["redeliver_events"]

    @admin.action(description="Redeliver selected events to every matching endpoint")
    def redeliver_events(self, request, queryset):
        queued = sum(services.event_redeliver(event=event) for event in queryset)
        _audit(request, "webhooks.event_redeliver", events=list(queryset.values_list("id", flat=True)))
        messages.success(request, f"{queued} delivery(ies) queued.")


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["attempted_at", "succeeded", "status_code", "latency_ms", "error", "response_excerpt"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class EventTypeFilter(admin.SimpleListFilter):
    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request, model_admin):
        from webhooks.models import EventType

        return EventType.choices

    def queryset(self, request, queryset):
        return queryset.filter(event__type=self.value()) if self.value() else queryset


@admin.register(Delivery)
class OutboundDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "event",
        "event_type",
        "endpoint",
        "status",
        "attempt_count",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", EventTypeFilter, ("endpoint", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["id", "event__id", "endpoint__id", "endpoint__url"]
    list_select_related = ["event", "endpoint"]
    date_hierarchy = "created_at"
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver"]

    @admin.display(description="event type", ordering="event__type")
    def event_type(self, obj: Delivery) -> str:
        return obj.event.type

    @admin.action(description="Redeliver selected deliveries")
    def redeliver(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        queued = services.deliveries_requeue(delivery_ids=ids)
        _audit(
            request, "webhooks.delivery_redeliver", deliveries=ids[:1000], selected=len(ids), queued=queued
        )
        skipped = len(ids) - queued
        messages.success(
            request,
            f"{queued} delivery(ies) queued"
            + (f", {skipped} skipped (in flight, or endpoint disabled/deleted)." if skipped else "."),
        )


# --- Inbound gateway webhooks (webhooks/inbound.py) ---------------------------------------------------------


class WebhookEventAttemptInline(admin.TabularInline):
    model = WebhookEventAttempt
    fields = ["number", "started_at", "finished_at", "succeeded", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookEvent)
class InboundWebhookEventAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "gateway",
        "merchant",
        "mode",
        "notification_status",
        "payment_reference",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = [
        "status",
        "gateway",
        "mode",
        "notification_status",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["id", "gateway_event_id", "payment_reference", "gateway_reference", "merchant__id"]
    list_select_related = ["merchant"]
    date_hierarchy = "created_at"
    exclude = ["body", "headers"]
    readonly_fields = ["raw_body", "headers_redacted"]
    inlines = [WebhookEventAttemptInline]
    actions = ["replay_selected"]

    @admin.display(description="raw body")
    def raw_body(self, obj):
        return format_html(
            "<pre style='white-space: pre-wrap'>{}</pre>", bytes(obj.body).decode("utf-8", "replace")
        )

    @admin.display(description="headers (secrets redacted)")
    def headers_redacted(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.headers, indent=2, sort_keys=True))

    @admin.action(description="Replay selected (queue processing again)")
    def replay_selected(self, request, queryset):
        from webhooks.inbound import inbound_event_replay

        replayed, skipped = [], []
        for pk in queryset.values_list("pk", flat=True):
            try:
                inbound_event_replay(event_id=pk)
                replayed.append(pk)
            except ApplicationError:
                skipped.append(pk)
        _audit(request, "webhooks.inbound_replay", events=replayed)
        messages.success(request, f"{len(replayed)} event(s) queued for processing; {len(skipped)} skipped.")
