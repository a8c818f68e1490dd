"""Real servers for tests: gunicorn against the test database, and a Redis to talk to."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_for_tests() -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "postgres")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@contextmanager
def gunicorn(*, workers: int = 3, env: dict | None = None):
    """Start gunicorn (paytrust.gunicorn_conf) on a free port against the test database; yield its base URL."""
    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="paytrust-prom-")
    full_env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "PAYTRUST_ALLOW_DEV_SECRET": "true",
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": str(workers),
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "DB_POOL_MIN": "1",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "paytrust.wsgi:application",
            "-c",
            "python:paytrust.gunicorn_conf",
        ],
        cwd=ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"gunicorn exited early:\n{log.read().decode()[-3000:]}")
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail("gunicorn did not become ready in 60 s")
            time.sleep(0.2)
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _redis_ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url():
    """$TEST_REDIS_URL, else a Redis on 127.0.0.1:6379, else a private `redis-server` on a free port."""
    candidates = [os.environ.get("TEST_REDIS_URL"), "redis://127.0.0.1:6379/0"]
    for url in filter(None, candidates):
        if _redis_ping(url):
            yield url
            return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis reachable and no redis-server binary (apt-get install redis-server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="paytrust-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            if _redis_ping(url):
                break
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
