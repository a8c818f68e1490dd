"""The back office's roles (reporting/roles.py): each role logs in and is allowed exactly its actions and pages.

Users are made by `staff_save` (what `manage.py create_staff` calls) - never only superusers. For every admin
action and every role: the action is in the page's menu only for the role that holds its permission, running it
works for that role (audited, in the object's history), and a forged POST of it by any other role is a 403 that
changes nothing and records nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from apikeys.models import ApiKey, AuditLog
from apikeys.services import Actor
from gateways.models import GatewayAccount
from gateways.services import merchant_onboard
from invoices.models import Invoice
from payments.models import Payment
from reporting.roles import ROLES, staff_save
from tests.factories import make_api_key
from tests.payments.factories import make_invoice
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.inbound.models import InboundNotification
from webhooks.outbound.models import Delivery, WebhookEndpoint
from webhooks.outbound.services import event_record

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def merchant(db):
    return merchant_onboard(name="Toko Peran Sejahtera Abadi Makmur")


def login(role: str) -> Client:
    saved = staff_save(
        username=f"{role}-user",
        email=f"{role}@paytrust.test",
        role=role,
        password=PASSWORD,
        actor=Actor.system(),
    )
    client = Client()
    assert client.login(username=saved.user.username, password=PASSWORD)
    return client


# ---- the actions ----------------------------------------------------------------------------------------------


def _queued_reconciles() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'payments.reconcile_payment'"
        )
        return cursor.fetchone()[0]


def _api_key(merchant, api):
    return make_api_key(merchant)[0]


def _draft(merchant, api):
    return make_invoice(merchant)


def _overdue(merchant, api):
    return make_invoice(merchant, expires_in=timedelta(hours=2), now=timezone.now() - timedelta(hours=3))


def _pending_payment(merchant, api):
    invoice = make_invoice(merchant)
    return Payment.objects.get(
        pk=api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").json()["id"]
    )


def _endpoint(merchant, api, *, enabled=True):
    return WebhookEndpointFactory(merchant=merchant, enabled=enabled)


def _event_with_failed_delivery(merchant, api):
    WebhookEndpointFactory(merchant=merchant)
    with transaction.atomic():
        event = event_record(merchant=merchant, mode="test", type="invoice.created", data={"id": "inv_x"})
    Delivery.objects.filter(event=event).update(status="failed")
    return event


def _failed_delivery(merchant, api):
    return Delivery.objects.get(event=_event_with_failed_delivery(merchant, api))


def _failed_notification(merchant, api):
    account = GatewayAccount.objects.get(merchant=merchant, gateway="sandbox")
    return InboundNotification.objects.create(
        gateway_account=account,
        merchant=merchant,
        mode="test",
        gateway="sandbox",
        gateway_event_id="evt-1",
        body=b'{"status": "succeeded"}',
        status="failed",
        last_error="boom",
    )


@dataclass(frozen=True)
class Action:
    url: str
    name: str
    role: str  # the one role that holds the permission
    make: Callable  # (merchant, api) -> the object to select
    state: Callable  # (obj) -> what the action changes
    audit_name: str | None  # action_name of the admin.action audit row (None: the service audits it)


ACTIONS = [
    Action(
        "/admin/apikeys/apikey/",
        "revoke_keys",
        "administrator",
        _api_key,
        lambda key: ApiKey.objects.get(pk=key.pk).revoked_at is not None,
        None,
    ),
    Action(
        "/admin/apikeys/apikey/",
        "rotate_keys",
        "administrator",
        _api_key,
        lambda key: ApiKey.objects.filter(rotated_from=key).exists(),
        None,
    ),
    Action(
        "/admin/invoices/invoice/",
        "void_selected",
        "finance",
        _draft,
        lambda invoice: Invoice.objects.get(pk=invoice.pk).status,
        "invoices.void",
    ),
    Action(
        "/admin/invoices/invoice/",
        "expire_overdue_selected",
        "finance",
        _overdue,
        lambda invoice: Invoice.objects.get(pk=invoice.pk).status,
        "invoices.expire",
    ),
    Action(
        "/admin/payments/payment/",
        "reconcile_selected",
        "finance",
        _pending_payment,
        lambda payment: _queued_reconciles(),
        "payments.reconcile",
    ),
    Action(
        "/admin/webhooks/webhookendpoint/",
        "disable_endpoints",
        "operations",
        _endpoint,
        lambda endpoint: WebhookEndpoint.objects.get(pk=endpoint.pk).enabled,
        "webhooks.endpoint_disable",
    ),
    Action(
        "/admin/webhooks/webhookendpoint/",
        "enable_endpoints",
        "operations",
        lambda merchant, api: _endpoint(merchant, api, enabled=False),
        lambda endpoint: WebhookEndpoint.objects.get(pk=endpoint.pk).enabled,
        "webhooks.endpoint_enable",
    ),
    Action(
        "/admin/webhooks/event/",
        "redeliver_events",
        "operations",
        _event_with_failed_delivery,
        lambda event: sorted(Delivery.objects.filter(event=event).values_list("status", flat=True)),
        "webhooks.event_redeliver",
    ),
    Action(
        "/admin/webhooks/delivery/",
        "redeliver",
        "operations",
        _failed_delivery,
        lambda delivery: Delivery.objects.get(pk=delivery.pk).status,
        "webhooks.delivery_redeliver",
    ),
    Action(
        "/admin/inbound/inboundnotification/",
        "replay_selected",
        "operations",
        _failed_notification,
        lambda notification: InboundNotification.objects.get(pk=notification.pk).status,
        "webhooks.inbound_replay",
    ),
]


def _post_action(client: Client, action: Action, obj):
    return client.post(action.url, {"action": action.name, "_selected_action": [obj.pk], "index": "0"})


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_the_role_holding_the_permission_sees_and_runs_the_action_audited_and_in_the_history(
    action, merchant, api
):
    obj = action.make(merchant, api)
    client = login(action.role)
    before = action.state(obj)

    listing = client.get(action.url).content.decode()
    response = _post_action(client, action, obj)

    assert f'<option value="{action.name}"' in listing
    assert response.status_code == 302, response.content[:500]
    assert action.state(obj) != before
    actor = f"user:{action.role}-user"
    if action.audit_name:
        audit = AuditLog.objects.get(actor=actor, details__action_name=action.audit_name)
        assert audit.request_id.startswith("req_")
        assert str(obj.pk) in str(audit.details)
    else:
        assert AuditLog.objects.filter(actor=actor, api_key_id=obj.pk).exists()
    history = LogEntry.objects.get(object_id=str(obj.pk), user__username=f"{action.role}-user")
    assert history.is_change() and history.get_change_message()


@pytest.mark.parametrize(
    ("action", "role"),
    [(action, role) for action in ACTIONS for role in ROLES if role != action.role],
    ids=lambda value: value if isinstance(value, str) else value.name,
)
def test_other_roles_get_no_button_and_a_forged_post_is_403_changing_nothing(action, role, merchant, api):
    obj = action.make(merchant, api)
    client = login(role)
    before = action.state(obj)
    audit_rows = AuditLog.objects.count()

    listing = client.get(action.url)
    response = _post_action(client, action, obj)

    assert listing.status_code == 200  # every role reads every list
    assert f'<option value="{action.name}"' not in listing.content.decode()
    assert response.status_code == 403
    assert action.state(obj) == before
    assert AuditLog.objects.count() == audit_rows
    assert not LogEntry.objects.filter(object_id=str(obj.pk)).exists()


def test_a_forged_action_by_a_support_user_with_no_action_at_all_is_403(merchant):
    """Support has no action anywhere: Django renders no action form, and would quietly show the list again."""
    invoice = make_invoice(merchant)
    client = login("support")

    response = client.post(
        "/admin/invoices/invoice/", {"action": "void_selected", "_selected_action": [invoice.pk]}
    )

    assert response.status_code == 403
    assert Invoice.objects.get(pk=invoice.pk).status == "draft"


def test_an_empty_action_choice_is_still_the_usual_message_not_a_403(merchant):
    invoice = make_invoice(merchant)
    client = login("finance")

    response = client.post(
        "/admin/invoices/invoice/",
        {"action": "", "_selected_action": [invoice.pk], "index": "0"},
        follow=True,
    )

    assert response.status_code == 200 and "No action selected" in response.content.decode()


# ---- pages ---------------------------------------------------------------------------------------------------

LISTS = [
    "/admin/merchants/merchant/",
    "/admin/apikeys/apikey/",
    "/admin/apikeys/auditlog/",
    "/admin/gateways/gatewayaccount/",
    "/admin/gateways/sandboxcheckoutsession/",
    "/admin/webhooks/webhookendpoint/",
    "/admin/webhooks/event/",
    "/admin/webhooks/delivery/",
    "/admin/invoices/invoice/",
    "/admin/invoices/paymentapplication/",
    "/admin/payments/payment/",
    "/admin/payments/refund/",
    "/admin/inbound/inboundnotification/",
    "/admin/reporting/ledgercheck/",
]


@pytest.mark.parametrize("role", list(ROLES))
def test_every_role_reads_every_list(role, merchant):
    client = login(role)
    for url in LISTS:
        assert client.get(url).status_code == 200, url


# (url, the one role - besides superusers - that may open it; GET)
ADD_PAGES = [
    ("/admin/merchants/merchant/add/", {"administrator"}),
    ("/admin/apikeys/apikey/add/", {"administrator"}),
    ("/admin/gateways/gatewayaccount/add/", {"operations"}),
    ("/admin/auth/user/add/", {"administrator"}),
    ("/admin/auth/user/", {"administrator"}),
    ("/admin/reporting/financial/", {"finance", "administrator"}),
]


@pytest.mark.parametrize("role", list(ROLES))
def test_add_pages_the_staff_user_list_and_the_report_open_only_for_their_roles(role, merchant):
    client = login(role)
    for url, allowed in ADD_PAGES:
        assert client.get(url).status_code == (200 if role in allowed else 403), (url, role)


def _hidden_inputs(client: Client, url: str) -> dict:
    """The hidden inputs of a change page (inline management forms), as a browser would post them."""
    data = {}
    for tag in re.findall(r"<input[^>]*>", client.get(url).content.decode()):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', tag))
        if attrs.get("type") == "hidden" and "name" in attrs and attrs["name"] != "csrfmiddlewaretoken":
            data[attrs["name"]] = attrs.get("value", "")
    return data


def _merchant_form(merchant) -> dict:
    return {
        "name": merchant.name,
        "is_active": "on",
        "rate_limit_per_minute": "90",
        "legal_name": "",
        "country": "",
        "account_iban": "",
        "account_number": "",
        "bank_bic": "",
        "bank_name": "",
    }


def _account_form(account) -> dict:
    return {"currencies": "IDR", "enabled": "on", "credentials": "", "metadata": '{"note": "changed"}'}


def _invoice_form(invoice) -> dict:
    return {
        "description": "changed by staff",
        "customer_name": "Budi",
        "customer_email": "budi@example.com",
        "customer_phone": "+628123456789",
        "expires_at_0": invoice.expires_at.strftime("%Y-%m-%d"),
        "expires_at_1": invoice.expires_at.strftime("%H:%M:%S"),
        "metadata": "{}",
    }


@pytest.mark.parametrize("role", list(ROLES))
def test_change_pages_save_only_for_their_role_and_are_view_only_otherwise(role, merchant):
    account = GatewayAccount.objects.get(merchant=merchant, gateway="sandbox")
    draft = make_invoice(merchant)
    client = login(role)
    pages = [
        (
            f"/admin/merchants/merchant/{quote(merchant.pk)}/change/",
            _merchant_form(merchant),
            "administrator",
        ),
        (f"/admin/gateways/gatewayaccount/{quote(account.pk)}/change/", _account_form(account), "operations"),
        (f"/admin/invoices/invoice/{quote(draft.pk)}/change/", _invoice_form(draft), "finance"),
    ]
    for url, data, allowed in pages:
        page = client.get(url)
        assert page.status_code == 200, url  # everybody reads it
        saves = 'name="_save"' in page.content.decode()
        response = client.post(url, {**_hidden_inputs(client, url), **data})
        if role == allowed:
            assert saves, url
            assert response.status_code == 302, (url, response.content.decode()[:3000])
        else:
            assert not saves, url
            assert response.status_code == 403, url
    merchant.refresh_from_db()
    assert (merchant.rate_limit_per_minute == 90) == (role == "administrator")
    assert (Invoice.objects.get(pk=draft.pk).description == "changed by staff") == (role == "finance")


# ---- staff users: the administrator's guard rails ---------------------------------------------------------------


def _user_form(user, **changes) -> dict:
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": user.email,
        "is_active": "on",
        "is_staff": "on",
        "groups": [g.pk for g in user.groups.all()],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_an_administrator_gives_a_role_but_never_superuser_status_or_loose_permissions():
    admin_client = login("administrator")
    clerk = staff_save(
        username="clerk", email="clerk@paytrust.test", role="support", password=PASSWORD, actor=Actor.system()
    ).user
    finance = Group.objects.get(name="finance")
    url = f"/admin/auth/user/{clerk.pk}/change/"

    response = admin_client.post(url, _user_form(clerk, groups=[finance.pk], is_superuser="on"))

    assert response.status_code == 302, response.content.decode()[:2000]
    clerk.refresh_from_db()
    assert [g.name for g in clerk.groups.all()] == ["finance"]
    assert not clerk.is_superuser and not clerk.user_permissions.exists()
    audit = AuditLog.objects.get(details__action_name="staff.changed")
    assert audit.actor == "user:administrator-user" and audit.details["role"] == "finance"

    two_roles = admin_client.post(
        url, _user_form(clerk, groups=[finance.pk, Group.objects.get(name="support").pk])
    )
    assert two_roles.status_code == 200 and "exactly one role" in two_roles.content.decode()


def test_an_administrator_cannot_change_a_superuser_nor_its_password():
    root = get_user_model().objects.create_superuser("root", "root@paytrust.test", PASSWORD)
    client = login("administrator")

    assert 'name="_save"' not in client.get(f"/admin/auth/user/{root.pk}/change/").content.decode()
    assert client.post(f"/admin/auth/user/{root.pk}/change/", _user_form(root)).status_code == 403
    response = client.post(
        f"/admin/auth/user/{root.pk}/password/",
        {"password1": "a-new-password-123", "password2": "a-new-password-123", "usable_password": "true"},
    )
    assert response.status_code == 403
    root.refresh_from_db()
    assert root.check_password(PASSWORD)


# ---- the site's admins all follow the rules ---------------------------------------------------------------------


def test_every_admin_of_the_site_is_a_back_office_admin_and_every_action_declares_permissions():
    from django.contrib import admin

    from apikeys.admin_base import BackOfficeAdmin

    ours = {"merchants", "apikeys", "gateways", "webhooks", "invoices", "payments", "inbound", "reporting"}
    for model, model_admin in admin.site._registry.items():
        assert isinstance(model_admin, BackOfficeAdmin), model
        if model._meta.app_label not in ours:
            continue  # third-party actions without a permission are for superusers (BackOfficeAdmin.get_actions)
        for name in model_admin.actions or ():
            func = getattr(type(model_admin), name) if isinstance(name, str) else name
            assert getattr(func, "allowed_permissions", None), (model, name)


def test_a_third_party_action_without_a_permission_is_for_superusers_only(merchant, api):
    """procrastinate's job admin declares no permission on retry/cancel/abort: staff who may view jobs still
    cannot run them (the back-office site gives every admin the back office's base)."""
    from django.contrib.auth.models import Permission
    from procrastinate.contrib.django.models import ProcrastinateJob

    from payments.services import payments_reconcile_queue

    payments_reconcile_queue(payment_ids=[_pending_payment(merchant, api).pk])
    job = ProcrastinateJob.objects.filter(status="todo").first()
    user = staff_save(
        username="viewer", email="v@paytrust.test", role="support", password=PASSWORD, actor=Actor.system()
    ).user
    user.user_permissions.add(Permission.objects.get(codename="view_procrastinatejob"))
    client = Client()
    client.force_login(user)

    listing = client.get("/admin/procrastinate/procrastinatejob/")
    response = client.post(
        "/admin/procrastinate/procrastinatejob/",
        {"action": "cancel", "_selected_action": [job.pk], "index": "0"},
    )

    assert listing.status_code == 200 and '<option value="cancel"' not in listing.content.decode()
    assert response.status_code == 403
    assert ProcrastinateJob.objects.get(pk=job.pk).status == "todo"
