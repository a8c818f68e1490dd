"""Django admin for outbound webhooks: endpoints, events, deliveries with their attempts.

Everything is read-only here except through actions that call webhooks.outbound.services (the same code as the API and
`manage.py redeliver_events`); each action needs its permission (`webhooks.manage_webhookendpoint`,
`webhooks.redeliver_event`: the operations role) and is audited as `user:<username>` and in each object's history.
Secrets are never displayed.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from apikeys.admin_base import ReadOnlyAdmin, can_see_contacts, short_datetime, truncated
from paytrust.redaction import mask_contacts
from webhooks.outbound import services
from webhooks.outbound.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint


@admin.register(WebhookEndpoint)
class OutboundWebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "merchant_short",
        "mode",
        "url_short",
        "enabled",
        "disabled_reason",
        "created",
        "deleted_at",
    ]
    list_filter = ["mode", "enabled", "disabled_reason", ("merchant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "url", "merchant__id", "merchant__name"]
    list_select_related = ["merchant"]
    exclude = ["secret_encrypted", "previous_secret_encrypted"]
    actions = ["enable_endpoints", "disable_endpoints"]

    @admin.display(description="merchant", ordering="merchant__name")
    def merchant_short(self, obj):
        return truncated(obj.merchant.name)

    @admin.display(description="url", ordering="url")
    def url_short(self, obj):
        return truncated(obj.url, 48)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return short_datetime(obj.created_at)

    def has_manage_permission(self, request) -> bool:
        return request.user.has_perm("webhooks.manage_webhookendpoint")

    @admin.action(description="Enable selected endpoints", permissions=["manage"])
    def enable_endpoints(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected endpoints", permissions=["manage"])
    def disable_endpoints(self, request, queryset):
        self._set_enabled(request, queryset, False)

    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        changed = []
        for endpoint in queryset.filter(deleted_at__isnull=True):
            services.endpoint_update(endpoint=endpoint, enabled=enabled)
            changed.append(endpoint)
        verb = "enabled" if enabled else "disabled"
        self.action_log(
            request,
            "webhooks.endpoint_enable" if enabled else "webhooks.endpoint_disable",
            changed,
            f"{verb.capitalize()} from the back office.",
            ids_key="endpoints",
        )
        messages.success(request, f"{len(changed)} endpoint(s) {verb}.")


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
    list_display = ["id", "type", "merchant_short", "mode", "created"]
    list_filter = ["type", "mode", ("merchant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "merchant__id"]
    list_select_related = ["merchant"]
    date_hierarchy = "created_at"
    exclude = ["data"]
    inlines = [DeliveryInline]
    actions = ["redeliver_events"]

    def get_readonly_fields(self, request, obj=None):
        """The payload as sent, with customer e-mail and phone masked for staff who may not see them."""
        return ["payload"] if can_see_contacts(request) else ["payload_masked"]

    @admin.display(description="payload")
    def payload(self, obj):
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.data, indent=2, sort_keys=True, ensure_ascii=False)
        )

    @admin.display(description="payload")
    def payload_masked(self, obj):
        return format_html(
            "<pre>{}</pre>", json.dumps(mask_contacts(obj.data), indent=2, sort_keys=True, ensure_ascii=False)
        )

    @admin.display(description="merchant", ordering="merchant__name")
    def merchant_short(self, obj):
        return truncated(obj.merchant.name)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return short_datetime(obj.created_at)

    def has_redeliver_permission(self, request) -> bool:
        return request.user.has_perm("webhooks.redeliver_event")

    @admin.action(
        description="Redeliver selected events to every matching endpoint", permissions=["redeliver"]
    )
    def redeliver_events(self, request, queryset):
        events = list(queryset)
        queued = sum(services.event_redeliver(event=event) for event in events)
        self.action_log(
            request,
            "webhooks.event_redeliver",
            events,
            "Redelivery to every matching endpoint requested.",
            ids_key="events",
            queued=queued,
        )
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
        from webhooks.outbound.models import EventType

        return EventType.choices

    def queryset(self, request, queryset):
        return queryset.filter(event__type=self.value()) if self.value() else queryset


@admin.register(Delivery)
class OutboundDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "event_short",
        "event_type",
        "endpoint_short",
        "status",
        "attempt_count",
        "last_status_code",
        "next_attempt_at",
        "created",
    ]
    list_filter = ["status", EventTypeFilter, ("endpoint", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["id", "event__id", "endpoint__id", "endpoint__url"]
    list_select_related = ["event", "endpoint"]
    date_hierarchy = "created_at"
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver"]

    @admin.display(description="event", ordering="event_id")
    def event_short(self, obj: Delivery) -> str:
        return obj.event_id

    @admin.display(description="endpoint", ordering="endpoint__url")
    def endpoint_short(self, obj: Delivery) -> str:
        return truncated(obj.endpoint.url, 40)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: Delivery) -> str:
        return short_datetime(obj.created_at)

    @admin.display(description="event type", ordering="event__type")
    def event_type(self, obj: Delivery) -> str:
        return obj.event.type

    def has_redeliver_permission(self, request) -> bool:
        return request.user.has_perm("webhooks.redeliver_event")

    @admin.action(description="Redeliver selected deliveries", permissions=["redeliver"])
    def redeliver(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        queued = services.deliveries_requeue(delivery_ids=ids)
        self.action_log(
            request,
            "webhooks.delivery_redeliver",
            queryset.filter(pk__in=ids[:1000]),
            "Redelivery requested (queued unless in flight or its endpoint is disabled or deleted).",
            ids_key="deliveries",
            selected=len(ids),
            queued=queued,
        )
        skipped = len(ids) - queued
        messages.success(
            request,
            f"{queued} delivery(ies) queued"
            + (f", {skipped} skipped (in flight, or endpoint disabled/deleted)." if skipped else "."),
        )
