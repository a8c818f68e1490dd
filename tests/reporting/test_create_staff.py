"""`manage.py create_staff` and the role groups: one role per user, idempotent re-runs, passwords shown once."""

from __future__ import annotations

import importlib
import io
import sys
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client

from apikeys.models import AuditLog
from reporting.roles import ROLES, staff_roles_sync

pytestmark = pytest.mark.django_db


def create_staff(*args: str, stdin: str | None = None) -> str:
    out = StringIO()
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        call_command("create_staff", *args, stdout=out)
    finally:
        sys.stdin = old_stdin
    return out.getvalue()


def roles_of(username: str) -> list[str]:
    user = get_user_model().objects.get(username=username)
    return sorted(user.groups.values_list("name", flat=True))


def test_a_new_user_gets_a_generated_password_printed_once_that_logs_in():
    out = create_staff("--username", "siti", "--email", "siti@paytrust.test", "--role", "finance")

    password = out.strip().splitlines()[-1]
    user = get_user_model().objects.get(username="siti")
    assert len(password) >= 20 and password not in str(AuditLog.objects.values_list("details", flat=True))
    assert user.is_staff and not user.is_superuser and roles_of("siti") == ["finance"]
    assert Client().login(username="siti", password=password)
    assert AuditLog.objects.get(details__action_name="staff.saved").actor == "cli:create_staff"


def test_a_rerun_changes_the_role_and_email_and_keeps_the_password():
    first = create_staff("--username", "siti", "--email", "siti@paytrust.test", "--role", "finance")
    password = first.strip().splitlines()[-1]
    user = get_user_model().objects.get(username="siti")
    user.groups.add(Group.objects.create(name="newsletter"))  # not a role: kept

    again = create_staff("--username", "siti", "--email", "siti@corp.test", "--role", "operations")

    assert "Updated" in again and password not in again and "Password unchanged" in again
    assert roles_of("siti") == ["newsletter", "operations"]
    assert get_user_model().objects.get(username="siti").email == "siti@corp.test"
    assert Client().login(username="siti", password=password)
    assert get_user_model().objects.filter(username="siti").count() == 1


def test_the_password_comes_from_stdin_and_is_never_printed():
    out = create_staff(
        "--username",
        "budi",
        "--email",
        "b@paytrust.test",
        "--role",
        "support",
        "--password-stdin",
        stdin="a-long-secret-phrase\n",
    )

    assert "a-long-secret-phrase" not in out
    assert Client().login(username="budi", password="a-long-secret-phrase")


def test_a_short_stdin_password_is_refused():
    with pytest.raises(CommandError, match="at least 12"):
        create_staff(
            "--username",
            "budi",
            "--email",
            "b@paytrust.test",
            "--role",
            "support",
            "--password-stdin",
            stdin="short\n",
        )
    assert not get_user_model().objects.filter(username="budi").exists()


def test_an_unknown_role_is_refused():
    with pytest.raises(CommandError):
        create_staff("--username", "x", "--email", "x@paytrust.test", "--role", "root")


def test_sync_sets_each_role_group_to_exactly_its_permissions():
    group = Group.objects.get_or_create(name="support")[0]
    group.permissions.clear()

    groups = staff_roles_sync()

    for role, names in ROLES.items():
        held = {f"{p.content_type.app_label}.{p.codename}" for p in groups[role].permissions.all()}
        assert held == set(names), role
    assert not any(name.startswith(("invoices.void", "payments.reconcile")) for name in ROLES["support"])


def test_the_migration_creates_the_roles_of_the_code():
    """0002 holds a frozen copy of the roles; with the permissions later migrations add (their `ADDED`), it equals
    the code."""
    migration = importlib.import_module("reporting.migrations.0002_staff_roles")
    later = [
        importlib.import_module("reporting.migrations.0003_refund_permissions"),
        importlib.import_module("reporting.migrations.0004_ledger_view_roles"),
        importlib.import_module("reporting.migrations.0006_ledger_check_roles"),
        importlib.import_module("reconciliation.migrations.0002_reconciliation_roles"),
        importlib.import_module("reporting.migrations.0007_risk_roles"),
    ]

    migrated = {role: set(names) for role, names in migration.ROLES.items()}
    for delta in later:
        for role, names in delta.ADDED.items():
            migrated[role] |= set(names)
    assert migrated == {role: set(names) for role, names in ROLES.items()}
