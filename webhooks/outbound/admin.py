"""Django admin for outbound webhooks: endpoints, events, deliveries with their attempts.

Everything is read-only here except through actions that call webhooks.outbound.services (the same code as the API and
`manage.py redeliver_events`); each action is audited as `user:<username>`. Secrets are never displayed.
"""

from __future__ import annotations

from django.contrib import admin, messages

from apikeys.admin_base import ReadOnlyAdmin, admin_audit
from webhooks.outbound import services
from webhooks.outbound.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint


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
        admin_audit(
            request, "webhooks.endpoint_enable" if enabled else "webhooks.endpoint_disable", endpoints=ids
        )
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
        admin_audit(request, "webhooks.event_redeliver", events=list(queryset.values_list("id", flat=True)))
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
        admin_audit(
            request, "webhooks.delivery_redeliver", deliveries=ids[:1000], selected=len(ids), queued=queued
        )
        skipped = len(ids) - queued
        messages.success(
            request,
            f"{queued} delivery(ies) queued"
            + (f", {skipped} skipped (in flight, or endpoint disabled/deleted)." if skipped else "."),
        )
