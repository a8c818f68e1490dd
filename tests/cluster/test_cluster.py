"""The scale-out claims of issue 16, against a whole cluster (conftest.py): nginx, 3 app instances, PgBouncer,
a streaming replica, Redis and job workers, all real processes on this machine (`make test-cluster`).

Order matters only for speed: the fault tests run last (each leaves the cluster whole again)."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.cluster.conftest import HEALTH_INTERVAL, REPLICA_CHECK, REPLICA_MAX_LAG, auth, invoice_body
from tests.cluster.load import Load


def _upstreams(log: list[dict], request_ids: set[str]) -> Counter:
    return Counter(line["upstream"] for line in log if line["request_id"] in request_ids)


def test_rate_limit_is_exact_across_instances(cluster):
    """1,200 requests with one key (limit 1,000 per rolling minute) spread over the 3 instances within a minute:
    exactly 1,000 accepted, the other 200 answered 429 with Retry-After."""
    headers = auth(cluster.keys["limited_key"])
    ids = [f"rl-{uuid.uuid4().hex}" for _ in range(1200)]
    started = time.monotonic()

    def get(request_id: str):
        response = requests.get(
            f"{cluster.http}/v1/merchant", headers={**headers, "X-Request-Id": request_id}, timeout=30
        )
        return response.status_code, response.headers.get("Retry-After")

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(get, ids))
    elapsed = time.monotonic() - started
    assert elapsed < 60, f"the 1,200 requests took {elapsed:.0f} s"
    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 1000, 429: 200}
    assert all(retry_after and int(retry_after) >= 1 for status, retry_after in results if status == 429)
    spread = _upstreams(cluster.nginx_log(), set(ids))
    assert len(spread) == 3 and min(spread.values()) > 300, (
        spread
    )  # round robin: every instance took its share


def test_same_idempotency_key_on_every_instance_has_one_effect(cluster):
    key = f"idem-{uuid.uuid4().hex}"
    external_id = f"order-{uuid.uuid4().hex[:12]}"
    body = invoice_body(external_id=external_id)
    headers = {**auth(cluster.keys["load_key"]), "Idempotency-Key": key}
    barrier = threading.Barrier(9)

    def post(index: int):
        barrier.wait()
        return requests.post(f"{cluster.app(index % 3)}/v1/invoices", json=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(9) as pool:
        responses = list(pool.map(post, range(9)))
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    rows = cluster.query(
        cluster.primary, "SELECT count(*) FROM invoices_invoice WHERE external_id = %s", (external_id,)
    )
    assert rows == [(1,)]
    # A retry afterwards, on any instance, replays the one response.
    replay = requests.post(f"{cluster.app(2)}/v1/invoices", json=body, headers=headers, timeout=30)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] in created


def test_concurrent_initiations_of_one_invoice_make_one_gateway_call(cluster):
    headers = auth(cluster.keys["load_key"])
    invoice = requests.post(
        f"{cluster.http}/v1/invoices", json=invoice_body(gateway="xendit"), headers=headers, timeout=30
    ).json()
    before = [r for r in cluster.xendit.requests if r.method == "POST" and r.path == "/v2/invoices"]
    barrier = threading.Barrier(30)

    def initiate(index: int):
        barrier.wait()
        url = f"{cluster.app(index % 3)}/v1/invoices/{invoice['id']}/payments"
        return requests.post(url, json={}, headers=headers, timeout=60)

    with ThreadPoolExecutor(30) as pool:
        responses = list(pool.map(initiate, range(30)))
    statuses = Counter(r.status_code for r in responses)
    assert all(status < 500 for status in statuses), statuses
    payments = {r.json()["id"] for r in responses if r.status_code in (200, 201)}
    assert len(payments) == 1, statuses
    creates = [r for r in cluster.xendit.requests if r.method == "POST" and r.path == "/v2/invoices"]
    assert len(creates) - len(before) == 1


def _replica_statements(cluster, pattern: str) -> int:
    rows = cluster.query(
        cluster.replica,
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query ILIKE %s",
        (pattern,),
    )
    return int(rows[0][0])


def _our_statements(cluster, url: str) -> dict[int, tuple[str, int]]:
    """queryid -> (query, calls) of the statements on the app's tables (pg_stat_statements; a statement has the
    same queryid on the primary and on its physical replica)."""
    rows = cluster.query(
        url,
        "SELECT queryid, query, calls FROM pg_stat_statements WHERE query ~ '\"(invoices|payments|apikeys|reporting|ledger)_'",
    )
    return {queryid: (query, calls) for queryid, query, calls in rows}


def test_reports_and_lists_read_from_the_replica_and_fall_back_to_the_primary(cluster):
    headers = auth(cluster.keys["load_key"])
    time.sleep(1.5)  # every instance re-checks the replica's lag within DATABASE_REPLICA_CHECK_SECONDS
    for url in (cluster.primary, cluster.replica):
        cluster.query(url, "SELECT pg_stat_statements_reset()")
    for _ in range(3):  # one per instance (round robin)
        for path in ("/v1/reports/financial", "/v1/invoices?limit=5", "/v1/payments?limit=5"):
            assert requests.get(f"{cluster.http}{path}", headers=headers, timeout=30).status_code == 200
    on_replica = _our_statements(cluster, cluster.replica)
    on_primary = _our_statements(cluster, cluster.primary)
    assert any(
        "payments_payment" in query for query, _ in on_replica.values()
    )  # the report's and lists' reads
    assert any('FROM "invoices_invoice"' in query for query, _ in on_replica.values())
    # ... ran there and not on the primary, which got only what stays on it: authentication, rate limiting.
    assert set(on_replica) & set(on_primary) == set(), [
        on_primary[q][0][:120] for q in set(on_replica) & set(on_primary)
    ]
    assert not any("apikeys_" in query for query, _ in on_replica.values())
    assert any("apikeys_" in query for query, _ in on_primary.values())
    # A write goes to the primary, never to the replica.
    created = requests.post(f"{cluster.http}/v1/invoices", json=invoice_body(), headers=headers, timeout=30)
    assert created.status_code == 201
    assert any("INSERT INTO" in q for q, _ in _our_statements(cluster, cluster.primary).values())
    # The replica stops: reports and lists are read from the primary, never a 500.
    cluster.pg_ctl("replica", "stop", "-m", "fast", "-w")
    try:
        statuses = Counter()
        for _ in range(9):
            statuses[
                requests.get(f"{cluster.http}/v1/reports/financial", headers=headers, timeout=30).status_code
            ] += 1
            statuses[
                requests.get(f"{cluster.http}/v1/invoices?limit=5", headers=headers, timeout=30).status_code
            ] += 1
        assert statuses == {200: 18}
        ready = requests.get(f"{cluster.app(0)}/readyz", timeout=10).json()
        assert ready["status"] == "ok" and "reading from the primary" in ready["checks"]["replica"]
    finally:
        cluster.pg_ctl(
            "replica",
            "start",
            "-w",
            "-l",
            str(cluster.directory / "log" / "pg" / "replica.log"),
            "-o",
            f"-p {cluster.replica_port} -k {cluster.directory / 'run' / 'pg'}",
        )
    # Back: after the next check, reads go to the replica again.
    cluster.query(cluster.replica, "SELECT pg_stat_statements_reset()")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _replica_statements(cluster, "%payments_payment%") == 0:
        requests.get(f"{cluster.http}/v1/payments?limit=5", headers=headers, timeout=30)
        time.sleep(0.3)
    assert _replica_statements(cluster, "%payments_payment%") > 0


def test_a_replica_further_behind_than_the_bound_is_not_read(cluster):
    """Replay paused on the replica (it still receives WAL): once it is DATABASE_REPLICA_MAX_LAG_SECONDS behind,
    lists come from the primary, so an invoice created after the pause shows up within the documented bound."""
    headers = auth(cluster.keys["load_key"])
    cluster.query(cluster.replica, "SELECT pg_wal_replay_pause()")
    try:
        created = requests.post(
            f"{cluster.http}/v1/invoices", json=invoice_body(), headers=headers, timeout=30
        )
        assert created.status_code == 201
        invoice_id, started = created.json()["id"], time.monotonic()
        bound = REPLICA_MAX_LAG + REPLICA_CHECK + 2  # + the time the requests themselves take
        seen_at = None
        while time.monotonic() - started < bound + 5:
            listed = requests.get(f"{cluster.http}/v1/invoices?limit=20", headers=headers, timeout=30).json()
            if invoice_id in {row["id"] for row in listed["data"]}:
                seen_at = time.monotonic() - started
                break
            time.sleep(0.2)
        assert seen_at is not None and seen_at <= bound, seen_at
        replica_states = {
            requests.get(f"{cluster.app(i)}/readyz", timeout=10).json()["checks"]["replica"] for i in range(3)
        }
        assert any("behind" in state for state in replica_states), replica_states
    finally:
        cluster.query(cluster.replica, "SELECT pg_wal_replay_resume()")


def test_nginx_passes_request_ids_and_answers_its_own_errors_in_the_envelope(cluster):
    headers = auth(cluster.keys["load_key"])
    mine = requests.get(
        f"{cluster.http}/v1/merchant", headers={**headers, "X-Request-Id": "cluster-req-42"}, timeout=30
    )
    assert mine.status_code == 200 and mine.headers["X-Request-Id"] == "cluster-req-42"
    unsafe = requests.get(
        f"{cluster.http}/v1/merchant", headers={**headers, "X-Request-Id": "bad id\t!"}, timeout=30
    )
    generated = unsafe.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)  # nginx's own id, the same in its log and the app's
    log_ids = {line["request_id"] for line in cluster.nginx_log()}
    assert {"cluster-req-42", generated} <= log_ids
    # The operational endpoints answer through nginx from inside (the scraper, an operator on the host).
    assert requests.get(f"{cluster.http}/readyz", timeout=10).json()["status"] == "ok"
    assert requests.get(f"{cluster.http}/metrics", timeout=10).status_code == 200
    too_big = requests.post(
        f"{cluster.http}/v1/invoices",
        data=b"x" * (2 * 1024 * 1024),
        headers={**headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert too_big.status_code == 413
    error = too_big.json()["error"]
    assert error["code"] == "request_too_large" and error["request_id"] == too_big.headers["X-Request-Id"]


def _invoice_load(cluster, connections: int, *, keepalive: bool = False) -> Load:
    headers = auth(cluster.keys["load_key"])
    return Load(
        cluster.http,
        connections=connections,
        keepalive=keepalive,
        request=lambda n: ("POST", "/v1/invoices", headers, invoice_body()),
    )


def _wait_all_ready(cluster, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(cluster.ready(i) for i in range(3)):
            return
        time.sleep(0.3)
    raise AssertionError("the instances did not all become ready")


def test_sigkill_of_one_instance_under_load(cluster):
    """100 connections through nginx; one instance is killed with SIGKILL. Only the requests that instance held
    fail (nginx answers them 502: their connection to it broke after they were sent); no 500s; and after the health
    check's interval nginx sends it nothing more."""
    victim_port = cluster.app_ports[1]
    victim = f"127.0.0.1:{victim_port}"
    with _invoice_load(cluster, 100) as load:
        time.sleep(4)
        killed_at = time.monotonic()
        os.killpg(cluster.pid(f"app-{victim_port}"), signal.SIGKILL)
        # nginx's passive check stops using it at the first failed connection; the health loop marks it down
        # after two failed polls (and reloads nginx) before the passive check's 5 s run out.
        time.sleep(HEALTH_INTERVAL + 0.5)
        cutoff = time.monotonic()
        time.sleep(8)
    outcomes = load.outcomes
    before = Counter(o.status or o.error for o in outcomes if o.ended < killed_at)
    assert set(before) == {201} and before[201] > 50, before
    # What failed: only requests in flight on that instance when it died (started before it was killed, ended
    # after), each a 502 from nginx or, when the instance had already begun its answer, a cut-off response.
    failed = [o for o in outcomes if o.status != 201]
    assert all(o.status == 502 or o.error == "IncompleteRead" for o in failed), Counter(
        o.status or o.error for o in failed
    )
    assert all(o.started < killed_at + 0.5 and o.ended >= killed_at for o in failed)
    later = [o for o in outcomes if o.started >= killed_at + 0.5]
    assert later and all(o.status == 201 for o in later)
    # nginx's log: after the health-check interval, no request was passed to the dead instance.
    log = cluster.nginx_log()
    started_wall = time.time() - (time.monotonic() - cutoff)
    late = [
        line
        for line in log
        if line["msec"] - line["request_time"] >= started_wall and victim in line["upstream"]
    ]
    assert late == []
    failed_ids = {o.request_id for o in failed}
    assert failed_ids <= {line["request_id"] for line in log if victim in line["upstream"]}
    # Start it again for the next tests.
    cluster.command("restart-app", str(victim_port))
    _wait_all_ready(cluster)


def test_rolling_restart_under_load_fails_no_request(cluster):
    before = {port: cluster.pid(f"app-{port}") for port in cluster.app_ports}
    with _invoice_load(cluster, 100) as load:
        time.sleep(3)
        cluster.command("rolling-restart", timeout=240)
        time.sleep(3)
    statuses = load.statuses()
    assert set(statuses) == {201}, statuses
    assert statuses[201] > 300
    # Every instance was restarted (a new gunicorn master each) and serves again.
    after = {port: cluster.pid(f"app-{port}") for port in cluster.app_ports}
    assert all(after[port] != before[port] for port in cluster.app_ports), (before, after)
    _wait_all_ready(cluster)


def test_primary_restart_under_load_gives_503_then_recovers(cluster):
    """PgBouncer's server connections die with the primary (`pg_ctl restart -m fast`): while it is down the API
    answers 503 with Retry-After (no 500), and within 10 s of the primary's return everything is 201 again."""
    with _invoice_load(cluster, 100) as load:
        time.sleep(3)
        down_at = time.monotonic()
        cluster.pg_ctl("primary", "stop", "-m", "fast", "-w")
        time.sleep(3)
        cluster.pg_ctl(
            "primary",
            "start",
            "-w",
            "-l",
            str(cluster.directory / "log" / "pg" / "primary.log"),
            "-o",
            f"-p {int(cluster.primary.rsplit(':', 1)[1].split('/')[0])} -k {cluster.directory / 'run' / 'pg'}",
        )
        up_at = time.monotonic()
        time.sleep(14)
    outcomes = load.outcomes
    statuses = load.statuses()
    assert 500 not in statuses and None not in statuses, statuses
    assert set(statuses) <= {201, 503}, statuses
    unavailable = [o for o in outcomes if o.status == 503]
    assert unavailable, "the outage was not seen"
    assert all(o.retry_after and int(o.retry_after) >= 1 for o in unavailable)
    assert all(o.started >= down_at - 1 for o in unavailable)
    recovered = [o for o in outcomes if o.started >= up_at + 10]
    assert recovered and all(o.status == 201 for o in recovered)
    last_failure = max(o.ended for o in unavailable)
    assert last_failure - up_at < 10, f"503s went on {last_failure - up_at:.1f} s after the primary was back"
