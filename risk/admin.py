"""The risk rules in the back office (finance: `risk.add_risksettings` / `risk.change_risksettings`, docs/adr/0053).

The form edits a merchant's rules for one mode: thresholds and velocity limits as numbers (empty: no limit),
block lists one entry per line, amount thresholds one `CUR amount` per line in major units ("IDR 75000000",
"USD 5000.00"). Saving goes through `risk.services.risk_settings_update` (the API's PATCH: same validation and
normalisation), which audits it (`risk_settings.update`, actor `user:<username>`) and refreshes every process's
cached rules; Django's history records the change too. Nothing is deleted here: a merchant's rules go back to the
defaults by editing them.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin

from apikeys.admin_base import BackOfficeAdmin
from apikeys.services import Actor
from paytrust import money
from paytrust.errors import ValidationError as ApiValidationError
from risk.models import DEFAULTS, RiskSettings
from risk.services import risk_settings_normalise, risk_settings_update

_LISTS = ("blocked_emails", "blocked_email_domains", "blocked_ips", "blocked_device_ids")
_MAPS = ("amount_thresholds", "new_customer_thresholds")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class RiskSettingsForm(forms.ModelForm):
    blocked_emails = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="One per line."
    )
    blocked_email_domains = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line, e.g. mailinator.com.",
    )
    blocked_ips = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="IPs or CIDR blocks, one per line.",
    )
    blocked_device_ids = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    amount_thresholds = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='One "CUR amount" per line in major units, e.g. "IDR 75000000". A payment above scores 60.',
    )
    new_customer_thresholds = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Same format: a new customer's first payment above it scores 55.",
    )

    class Meta:
        model = RiskSettings
        fields = ["merchant", "mode", *DEFAULTS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        source = self.instance if self.instance.pk else None
        for name in _LISTS:
            values = getattr(source, name) if source else DEFAULTS[name]
            self.initial[name] = "\n".join(values)
        for name in _MAPS:
            values = getattr(source, name) if source else DEFAULTS[name]
            self.initial[name] = "\n".join(
                f"{cur} {money.format_amount(v, cur)}" for cur, v in sorted(values.items())
            )
        for name in ("merchant", "mode"):
            if source is not None and name in self.fields:  # absent when the page is read-only
                self.fields[name].disabled = True

    def clean(self):
        cleaned = super().clean()
        changes = {name: cleaned.get(name) for name in DEFAULTS if name not in (*_LISTS, *_MAPS)}
        for name in _LISTS:
            changes[name] = _lines(cleaned.get(name, ""))
        for name in _MAPS:
            pairs = {}
            for line in _lines(cleaned.get(name, "")):
                currency, _, amount = line.partition(" ")
                pairs[currency.upper()] = amount.replace(",", "").strip()
            changes[name] = pairs
        self.changes = changes  # as entered: the service validates and normalises them again when saving
        try:
            normalised = risk_settings_normalise(changes)
        except ApiValidationError as exc:
            field = (exc.param or "").split(".")[0]
            self.add_error(field if field in self.fields else None, exc.message)
            return cleaned
        if (normalised.get("review_threshold") or 0) >= (normalised.get("block_threshold") or 0):
            self.add_error("review_threshold", "The review threshold must be lower than the block threshold.")
        return cleaned

    def _post_clean(self):
        pass  # the model is written by the service, not by construct_instance/full_clean


@admin.register(RiskSettings)
class RiskSettingsAdmin(BackOfficeAdmin):
    form = RiskSettingsForm
    list_display = [
        "merchant",
        "mode",
        "review_threshold",
        "block_threshold",
        "velocity_email_hour",
        "updated_at",
    ]
    list_filter = ["mode"]
    search_fields = ["merchant__id", "merchant__name"]
    list_select_related = ["merchant"]
    fieldsets = [
        (None, {"fields": ["merchant", "mode", "review_threshold", "block_threshold"]}),
        (
            "Velocity (payments that passed the check, per key; empty: no limit)",
            {
                "fields": [
                    ("velocity_email_hour", "velocity_email_day"),
                    ("velocity_ip_hour", "velocity_ip_day"),
                    ("velocity_device_hour", "velocity_device_day"),
                ]
            },
        ),
        ("Amounts", {"fields": list(_MAPS)}),
        ("Block lists", {"fields": list(_LISTS)}),
    ]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        merchant = obj.merchant if change else form.cleaned_data["merchant"]
        mode = obj.mode if change else form.cleaned_data["mode"]
        risk_settings_update(
            merchant=merchant, mode=mode, changes=form.changes, actor=Actor.for_user(request)
        )
        saved = RiskSettings.objects.get(merchant=merchant, mode=mode)
        obj.pk = saved.pk
