"""paytrust/db_routing.py without a cluster: which alias a read goes to, and the fallback to the primary.
(tests/cluster proves it against a real streaming replica.)"""

from __future__ import annotations

import copy

import pytest
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections, router
from django.db.backends.base.base import BaseDatabaseWrapper

from merchants.models import Merchant
from paytrust import db_routing
from paytrust.db_routing import REPLICA, ReplicaRouter, reads_from_replica, replica_health

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")]


def _fresh_connection() -> None:
    try:
        del connections[REPLICA]
    except AttributeError:
        pass


@pytest.fixture
def replica(settings, monkeypatch, django_db_blocker):
    """A `replica` alias pointing at the test database itself (not in recovery: lag 0), routed by ReplicaRouter."""
    alias = copy.deepcopy(connections.settings[DEFAULT_DB_ALIAS])
    alias["OPTIONS"] = {}  # no pool: a plain connection
    alias["CONN_MAX_AGE"] = 0
    settings.DATABASES = {**settings.DATABASES, REPLICA: alias}
    settings.DATABASE_ROUTERS = ["paytrust.db_routing.ReplicaRouter"]
    settings.DATABASE_REPLICA_CHECK_SECONDS = 0
    connections.settings[REPLICA] = alias
    _fresh_connection()
    # Django's test case refuses connections to aliases it was not told of (it patches ensure_connection for the
    # class); this alias is made per test, after that: give it the real method for the test's duration.
    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", django_db_blocker._real_ensure_connection)
    router.routers = [ReplicaRouter()]
    replica_health.mark_unusable("reset")
    yield alias
    connections[REPLICA].close()
    _fresh_connection()
    del connections.settings[REPLICA]
    router.routers = []
    replica_health.mark_unusable("reset")


def test_writes_and_unmarked_reads_use_the_primary_and_marked_reads_the_replica(replica):
    seen = []

    @reads_from_replica
    def handler():
        seen.append(router.db_for_read(Merchant))
        return router.db_for_write(Merchant)

    assert handler() == DEFAULT_DB_ALIAS  # a write inside a marked handler still goes to the primary
    assert seen == [REPLICA]
    assert router.db_for_read(Merchant) == DEFAULT_DB_ALIAS  # outside it
    assert not ReplicaRouter().allow_migrate(REPLICA, "merchants")


def test_a_query_the_replica_cancels_runs_again_on_the_primary(replica):
    calls = []

    @reads_from_replica
    def handler():
        alias = router.db_for_read(Merchant)
        calls.append(alias)
        if alias == REPLICA:
            raise OperationalError("canceling statement due to conflict with recovery")
        return Merchant.objects.count()

    assert handler() == Merchant.objects.count()
    assert calls == [REPLICA, DEFAULT_DB_ALIAS]
    assert replica_health.usable()  # its connection is fine: it stays in use


def test_a_lost_replica_connection_takes_it_out_of_use_until_the_next_check(replica):
    calls = []

    @reads_from_replica
    def handler():
        alias = router.db_for_read(Merchant)
        calls.append(alias)
        if alias == REPLICA:
            connections[REPLICA].close()
            raise OperationalError("server closed the connection unexpectedly")
        return "read on the primary"

    assert handler() == "read on the primary"
    assert calls == [REPLICA, DEFAULT_DB_ALIAS]
    assert replica_health.peek() == (False, "failed (OperationalError)")


def test_other_database_errors_are_not_retried_on_the_primary(replica):
    from django.db import DataError

    calls = []

    @reads_from_replica
    def handler():
        calls.append(router.db_for_read(Merchant))
        raise DataError("invalid input syntax")

    with pytest.raises(DataError):
        handler()
    assert calls == [REPLICA]


def test_an_unreachable_replica_is_not_used(replica, settings):
    replica["PORT"] = "1"  # nothing listens there: the check fails fast
    replica["OPTIONS"] = {"connect_timeout": 1}
    _fresh_connection()
    seen = []

    @reads_from_replica
    def handler():
        seen.append(router.db_for_read(Merchant))

    handler()
    assert seen == [DEFAULT_DB_ALIAS]
    assert replica_health.reason.startswith("unreachable")


def test_a_replica_too_far_behind_is_not_used(replica, settings, monkeypatch):
    monkeypatch.setattr(db_routing, "LAG_SQL", "SELECT 120")
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 5
    assert not replica_health.usable()
    assert replica_health.reason == "120.0 s behind"
    monkeypatch.setattr(db_routing, "LAG_SQL", "SELECT NULL")  # its WAL receiver is not streaming
    assert not replica_health.usable()
    assert replica_health.reason == "not streaming from the primary"
    monkeypatch.setattr(db_routing, "LAG_SQL", "SELECT 1")
    assert replica_health.usable()
