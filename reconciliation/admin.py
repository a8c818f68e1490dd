"""The back office's reconciliation (docs/adr/0054): runs, their lines, the settlement-file mappings.

- Runs: a list (status, open discrepancies, source) and a page per run: its figures per currency and links to its
  lines, per class. "Run or upload" (permission `reconciliation.run_reconciliation`, finance) reconciles an
  account's day from its gateway's list API or from an uploaded settlement CSV (streamed, size-limited, read with
  the account's mapping; a bad file is refused with its problems and imports nothing).
- Lines: filter by run, class, resolution. Actions: "Resolve with a note" (`resolve_reconciliationline`) for an
  open discrepancy, "Apply after confirming with the gateway" (`apply_reconciliationline`) for money missing in
  PayTrust. Each is audited (`reconciliation.…`) and written to the line's history.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from apikeys.admin_base import BackOfficeAdmin, ReadOnlyAdmin, admin_audit, html_table, short_datetime
from gateways.models import GatewayAccount
from paytrust import money
from paytrust.errors import ApplicationError
from reconciliation.files import FIELDS, PRESETS
from reconciliation.models import (
    LineClass,
    ReconciliationLine,
    ReconciliationRun,
    Resolution,
    SettlementFileMapping,
)
from reconciliation.selectors import run_summary
from reconciliation.services import line_apply, line_resolve, reconcile_day, reconcile_file

RUN_PERMISSION = "reconciliation.run_reconciliation"


class RunForm(forms.Form):
    account = forms.ModelChoiceField(
        queryset=GatewayAccount.objects.filter(enabled=True)
        .select_related("merchant")
        .order_by("created_at"),
        help_text="The gateway account whose day is reconciled.",
    )
    day = forms.DateField(help_text="The UTC day, YYYY-MM-DD.")
    file = forms.FileField(
        required=False,
        help_text="A settlement CSV (read with the account's mapping). Empty: read the gateway's list API.",
    )


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "account",
        "gateway",
        "day",
        "source",
        "status",
        "open_discrepancies",
        "lines_link",
        "finished",
    ]
    list_filter = ["status", "source", "account__gateway", "mode", ("day", admin.DateFieldListFilter)]
    search_fields = ["id", "account__id", "merchant__id", "merchant__name"]
    list_select_related = ["account", "merchant"]
    date_hierarchy = "day"
    fields = [
        "id",
        "merchant",
        "mode",
        "account",
        "day",
        "source",
        "source_name",
        "status",
        "error",
        "class_links",
        "open_discrepancies",
        "totals_table",
        "attempts",
        "started_by",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields

    @admin.display(description="gateway", ordering="account__gateway")
    def gateway(self, obj):
        return obj.account.gateway

    @admin.display(description="finished", ordering="finished_at")
    def finished(self, obj):
        return short_datetime(obj.finished_at)

    @admin.display(description="lines")
    def lines_link(self, obj):
        url = reverse("admin:reconciliation_reconciliationline_changelist") + f"?run__id__exact={obj.pk}"
        return format_html('<a href="{}">{} lines</a>', url, sum((obj.counts or {}).values()))

    @admin.display(description="lines by class")
    def class_links(self, obj):
        base = reverse("admin:reconciliation_reconciliationline_changelist") + f"?run__id__exact={obj.pk}"
        return format_html_join(
            " · ",
            '<a href="{}&line_class__exact={}">{}: {}</a>',
            ((base, cls, label, (obj.counts or {}).get(cls, 0)) for cls, label in LineClass.choices),
        )

    @admin.display(description="totals (matched lines; minor units → shown in major)")
    def totals_table(self, obj):
        rows = []
        for currency, f in (obj.totals or {}).items():

            def fmt(value, currency=currency):
                return money.format_display(value, currency)

            rows.append(
                [
                    currency,
                    fmt(f["gross"]),
                    fmt(f["refunds"]),
                    fmt(f["fees"]),
                    fmt(f["net"]),
                    fmt(f["payouts"]),
                    fmt(f.get("ledger_clearing", 0)),
                    "yes" if f.get("clearing_agrees") else "NO",
                ]
            )
        headers = ["currency", "gross", "refunds", "fees", "net", "payouts", "ledger clearing", "agrees"]
        return html_table(headers, rows)

    # ----- run or upload --------------------------------------------------------------------------------------
    def get_urls(self):
        run = path("run/", self.admin_site.admin_view(self.run_view), name="reconciliation_run")
        return [run, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra = {"can_run": request.user.has_perm(RUN_PERMISSION), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def run_view(self, request):
        if not request.user.has_perm(RUN_PERMISSION):
            raise PermissionDenied
        form = RunForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            run = self._run(request, form)
            if run is not None:
                return HttpResponseRedirect(
                    reverse("admin:reconciliation_reconciliationrun_change", args=[run.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Reconcile a day",
            "opts": self.model._meta,
            "form": form,
            "presets": PRESETS,
        }
        return TemplateResponse(request, "admin/reconciliation/run.html", context)

    def _run(self, request, form: RunForm):
        account, day, upload = (
            form.cleaned_data["account"],
            form.cleaned_data["day"],
            form.cleaned_data["file"],
        )
        started_by = f"user:{request.user.get_username()}"
        try:
            if upload is None:
                run = reconcile_day(account=account, day=day, started_by=started_by)
            else:
                run = reconcile_file(
                    account=account, day=day, stream=upload, filename=upload.name, started_by=started_by
                )
        except ApplicationError as exc:
            form.add_error("file" if upload is not None else None, exc.message)
            admin_audit(
                request,
                "reconciliation.run_refused",
                mode=account.mode,
                account=account.pk,
                day=day.isoformat(),
                file=upload.name if upload is not None else "",
                error=exc.message[:500],
            )
            return None
        self.action_log(
            request,
            "reconciliation.run",
            [run],
            f"Reconciled {day} ({run.source}): {run.status}, {run.open_discrepancies} open.",
            ids_key="runs",
            account=account.pk,
            day=day.isoformat(),
            source=run.source,
            file=run.source_name,
            counts=run.counts,
        )
        level = messages.SUCCESS if run.status == "completed" else messages.WARNING
        messages.add_message(request, level, run_summary(run))
        return run


# ---- lines -------------------------------------------------------------------------------------------------------


class ResolveForm(forms.Form):
    note = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why the discrepancy is fine, or what was done about it (kept with the line and audited).",
    )


def _lines_page(model_admin, request, lines, *, form, action: str, title: str):
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "lines": lines,
        "form": form,
        "action": action,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/reconciliation/line_action.html", context)


@admin.register(ReconciliationLine)
class ReconciliationLineAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "run",
        "line_class",
        "kind",
        "payment_id",
        "refund_id",
        "gateway_reference",
        "gateway_amount",
        "paytrust_amount",
        "fee",
        "resolution",
        "resolved",
    ]
    list_filter = ["line_class", "resolution", "kind", "run__account__gateway", "currency"]
    search_fields = ["=run__id", "=payment_id", "=refund_id", "=gateway_reference"]
    list_select_related = ["run", "resolved_by"]
    actions = ["resolve_selected", "apply_selected"]
    fields = [
        "run",
        "key",
        "line_class",
        "kind",
        "payment_id",
        "refund_id",
        "gateway_reference",
        "currency",
        "gateway_amount",
        "paytrust_currency",
        "paytrust_amount",
        "fee",
        "occurred_at",
        "resolution",
        "resolution_note",
        "resolved_by",
        "resolved_at",
    ]
    readonly_fields = fields

    def _money(self, amount, currency):
        return "-" if amount is None else money.format_display(amount, currency or "IDR")

    @admin.display(description="gateway amount", ordering="gateway_amount_minor")
    def gateway_amount(self, obj):
        return self._money(obj.gateway_amount_minor, obj.currency)

    @admin.display(description="PayTrust amount", ordering="paytrust_amount_minor")
    def paytrust_amount(self, obj):
        return self._money(obj.paytrust_amount_minor, obj.paytrust_currency or obj.currency)

    @admin.display(description="fee", ordering="fee_minor")
    def fee(self, obj):
        return self._money(obj.fee_minor, obj.currency)

    @admin.display(description="resolved", ordering="resolved_at")
    def resolved(self, obj):
        if obj.resolved_at is None:
            return "-"
        return f"{short_datetime(obj.resolved_at)} {obj.resolved_by or ''}".strip()

    def has_resolve_permission(self, request) -> bool:
        return request.user.has_perm("reconciliation.resolve_reconciliationline")

    def has_apply_permission(self, request) -> bool:
        return request.user.has_perm("reconciliation.apply_reconciliationline")

    @admin.action(description="Resolve the selected discrepancies with a note", permissions=["resolve"])
    def resolve_selected(self, request, queryset):
        lines = list(queryset.filter(resolution=Resolution.OPEN)[:100])
        if not lines:
            messages.error(request, "Select open discrepancies to resolve.")
            return None
        if request.POST.get("step") != "apply":
            return _lines_page(
                self,
                request,
                lines,
                form=ResolveForm(),
                action="resolve_selected",
                title="Resolve discrepancies",
            )
        form = ResolveForm(request.POST)
        if not form.is_valid():
            return _lines_page(
                self, request, lines, form=form, action="resolve_selected", title="Resolve discrepancies"
            )
        done = []
        for line in lines:
            try:
                done.append(line_resolve(line_id=line.pk, note=form.cleaned_data["note"], user=request.user))
            except ApplicationError as exc:
                messages.error(request, f"line {line.pk}: {exc.message}")
        self._log(
            request,
            "reconciliation.resolve",
            done,
            f"Resolved: {form.cleaned_data['note']}",
            note=form.cleaned_data["note"],
        )
        if done:
            messages.success(request, f"{len(done)} discrepanc{'y' if len(done) == 1 else 'ies'} resolved.")
        return None

    @admin.action(
        description="Apply after confirming with the gateway (missing in PayTrust)", permissions=["apply"]
    )
    def apply_selected(self, request, queryset):
        lines = list(
            queryset.filter(line_class=LineClass.MISSING_IN_PAYTRUST, resolution=Resolution.OPEN)[:20]
        )
        if not lines:
            messages.error(request, "Select open 'missing in PayTrust' lines to apply.")
            return None
        if request.POST.get("step") != "apply":
            return _lines_page(
                self,
                request,
                lines,
                form=None,
                action="apply_selected",
                title="Apply payments the gateway settled",
            )
        for line in lines:
            try:
                applied = line_apply(line_id=line.pk, user=request.user)
            except ApplicationError as exc:
                messages.error(request, f"line {line.pk}: {exc.message}")
                admin_audit(
                    request,
                    "reconciliation.apply_refused",
                    mode=line.run.mode,
                    lines=[str(line.pk)],
                    error=exc.message[:500],
                )
                continue
            self._log(
                request,
                "reconciliation.apply",
                [applied.line],
                f"Applied: {applied.detail}",
                detail=applied.detail,
            )
            messages.success(request, f"line {line.pk}: {applied.detail}.")
        return None

    def _log(self, request, action: str, lines, message: str, **details) -> None:
        if lines:
            self.action_log(
                request,
                action,
                lines,
                message,
                ids_key="lines",
                runs=sorted({line.run_id for line in lines}),
                payments=[line.payment_id for line in lines],
                at=timezone.now().isoformat(),
                **details,
            )


@admin.register(SettlementFileMapping)
class SettlementFileMappingAdmin(BackOfficeAdmin):
    """Per gateway account: the preset its settlement CSV follows and the columns its export names otherwise."""

    list_display = ["account", "preset", "updated_at"]
    search_fields = ["account__id"]
    autocomplete_fields = []
    raw_id_fields = ["account"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.base_fields["preset"] = forms.ChoiceField(choices=[(name, name) for name in PRESETS])
        form.base_fields["columns"].help_text = (
            f"Optional overrides, field → column header. Fields: {', '.join(FIELDS)}. Presets: "
            + "; ".join(f"{name}: {preset.columns}" for name, preset in PRESETS.items())
        )
        form.base_fields["columns"].required = False
        return form

    def save_model(self, request, obj, form, change):
        from reconciliation.files import mapping_columns, preset_for

        mapping_columns(preset_for(obj.preset), obj.columns)  # refuse unknown fields before saving
        super().save_model(request, obj, form, change)
        admin_audit(
            request,
            "reconciliation.mapping_saved",
            mode=obj.account.mode,
            account=obj.account_id,
            preset=obj.preset,
            columns=obj.columns,
        )
