"""The back office's staff roles: four Django groups and the permissions each holds (docs/adr/0042).

A staff user has exactly one role group. Superusers aside, every page and action of the back office checks a
permission (apikeys/admin_base.py: actions refused with 403, pages by Django's own checks), so a role is exactly
its list below. The groups are created by migration reporting/0002 (later migrations add their `ADDED`) and
brought to this definition again by `staff_roles_sync` (called by `manage.py create_staff`), so this module is
the one place to change a role; a test keeps the migrations' copy equal to it.

Roles live here, in the top layer, because they name the permissions of every app below (as strings only).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

from apikeys.models import AuditLog
from apikeys.services import Actor, audit_record
from paytrust.errors import ValidationError

SUPPORT, FINANCE, OPERATIONS, ADMINISTRATOR = "support", "finance", "operations", "administrator"

# Read-only everywhere: every list and detail page of the back office (inlines are models too). No secret is ever
# displayed by these pages; customer e-mail addresses and phone numbers are masked without
# `invoices.view_customer_contact`.
VIEW_EVERYTHING: tuple[str, ...] = (
    "merchants.view_merchant",
    "apikeys.view_apikey",
    "apikeys.view_auditlog",
    "gateways.view_gatewayaccount",
    "gateways.view_gatewayfee",
    "gateways.view_sandboxcheckoutsession",
    "webhooks.view_webhookendpoint",
    "webhooks.view_event",
    "webhooks.view_delivery",
    "webhooks.view_deliveryattempt",
    "invoices.view_invoice",
    "invoices.view_lineitem",
    "invoices.view_installment",
    "invoices.view_paymentapplication",
    "payments.view_payment",
    "payments.view_gatewaycall",
    "payments.view_refund",
    "inbound.view_inboundnotification",
    "inbound.view_inboundnotificationattempt",
    "reporting.view_ledgercheck",  # the daily ledger verification's results (docs/adr/0049)
    "reconciliation.view_reconciliationrun",  # reconciliation runs, their lines and file mappings (docs/adr/0054)
    "reconciliation.view_reconciliationline",
    "reconciliation.view_settlementfilemapping",
    "risk.view_risksettings",  # the risk rules and the review queue (docs/adr/0053)
    "payments.view_paymentreview",
)

# The ledger's pages (read-only for everyone: it is append-only), for the roles that answer money questions.
VIEW_LEDGER: tuple[str, ...] = ("ledger.view_account", "ledger.view_movement", "ledger.view_entry")

ROLES: dict[str, tuple[str, ...]] = {
    SUPPORT: VIEW_EVERYTHING + VIEW_LEDGER,
    FINANCE: VIEW_EVERYTHING
    + VIEW_LEDGER
    + (
        "invoices.void_invoice",
        "invoices.expire_invoice",
        "invoices.change_invoice",  # edit a draft (through invoices.services)
        "invoices.view_customer_contact",
        "payments.reconcile_payment",
        "payments.refund_payment",
        "reporting.view_financial_report",
        "reconciliation.run_reconciliation",
        "reconciliation.resolve_reconciliationline",
        "reconciliation.apply_reconciliationline",
        "reconciliation.add_settlementfilemapping",
        "reconciliation.change_settlementfilemapping",
        "risk.add_risksettings",  # edit a merchant's risk rules (through risk.services)
        "risk.change_risksettings",
        "payments.approve_payment_review",  # the review queue's actions
        "payments.reject_payment_review",
    ),
    OPERATIONS: VIEW_EVERYTHING
    + (
        "inbound.replay_inboundnotification",
        "webhooks.redeliver_event",
        "webhooks.manage_webhookendpoint",
        "gateways.add_gatewayaccount",
        "gateways.change_gatewayaccount",
        "gateways.add_gatewayfee",
        "gateways.change_gatewayfee",
        "gateways.delete_gatewayfee",
    ),
    ADMINISTRATOR: VIEW_EVERYTHING
    + (
        "merchants.add_merchant",
        "merchants.change_merchant",
        "apikeys.add_apikey",
        "apikeys.rotate_apikey",
        "apikeys.revoke_apikey",
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
        "invoices.view_customer_contact",
        "reporting.view_financial_report",
    ),
}

MIN_PASSWORD_LENGTH = 12


def _permissions(names: tuple[str, ...]) -> list[Permission]:
    query = Q()
    for name in names:
        app_label, codename = name.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    found = list(Permission.objects.filter(query).select_related("content_type"))
    missing = set(names) - {f"{p.content_type.app_label}.{p.codename}" for p in found}
    if missing:
        raise LookupError(f"Permissions missing (are all migrations applied?): {', '.join(sorted(missing))}")
    return found


@transaction.atomic
def staff_roles_sync() -> dict[str, Group]:
    """The four role groups, created if missing, each holding exactly its permissions of ROLES."""
    groups = {}
    for role, names in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(_permissions(names))
        groups[role] = group
    return groups


@dataclass(frozen=True)
class StaffSaved:
    user: object
    created: bool
    password: str | None  # the generated password, to be shown once; None when given or kept


@transaction.atomic
def staff_save(*, username: str, email: str, role: str, password: str | None, actor: Actor) -> StaffSaved:
    """Create the staff user `username`, or update it: its e-mail, is_staff/is_active, and its one role group
    (other role groups are removed; groups that are not roles are kept). The password is `password` when given;
    a new user without one gets a generated password (returned, to be shown once); an existing user keeps its
    password. Audited (`staff.saved`)."""
    if role not in ROLES:
        raise ValidationError(f"Unknown role {role!r}; one of {', '.join(ROLES)}.", param="role")
    if not username.strip():
        raise ValidationError("A username is required.", param="username")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"The password must have at least {MIN_PASSWORD_LENGTH} characters.", param="password"
        )
    groups = staff_roles_sync()
    user_model = get_user_model()
    user, created = user_model.objects.select_for_update().get_or_create(
        username=username, defaults={"email": email}
    )
    generated = None
    if password is None and created:
        password = generated = secrets.token_urlsafe(18)
    if password is not None:
        user.set_password(password)
    user.email = email
    user.is_staff = True
    user.is_active = True
    user.save()
    user.groups.remove(*[group for name, group in groups.items() if name != role])
    user.groups.add(groups[role])
    audit_record(
        action=AuditLog.Action.ADMIN_ACTION,
        actor=actor,
        action_name="staff.saved",
        username=username,
        role=role,
        created=created,
        password_changed=password is not None,
    )
    return StaffSaved(user=user, created=created, password=generated)


def staff_role(user) -> str | None:
    """The role group of `user`, or None."""
    names = set(user.groups.values_list("name", flat=True))
    return next((role for role in ROLES if role in names), None)
