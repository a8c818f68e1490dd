"""One whole cluster (deploy/cluster.py) for the tests in this folder, on free ports under a temporary directory:
private PostgreSQL primary and streaming replica, PgBouncer, Redis, 3 app instances behind nginx, 2 job workers,
and a fake Xendit (tests/fakes/xendit.py) the instances call. Started once per session, stopped at the end."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests

from tests.fakes.xendit import FakeXendit
from tests.pgcluster import _as_pg_user, _bindir

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = [sys.executable, str(ROOT / "deploy" / "cluster.py")]
XENDIT_SECRET = "xnd_development_P4qDfOss0OCpl8RtKrROHjaQYNCk9dN5lSfk+R1l9Wbe+rSiCwZ3jw=="
XENDIT_CALLBACK_TOKEN = "cbtok_8d3f0e6a5b9c4e21a7f1c2d3e4f5a6b7"
HEALTH_INTERVAL = 1.0
REPLICA_MAX_LAG = 2.0
REPLICA_CHECK = 1.0


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, start: int) -> list[int]:
    """`count` consecutive free ports from `start` on."""
    port = start
    while not all(_free(p) for p in range(port, port + count)):
        port += count
    return list(range(port, port + count))


@dataclass
class Cluster:
    env: dict[str, str]
    directory: Path
    http: str
    app_ports: list[int]
    primary: str
    replica: str
    replica_port: int
    xendit: FakeXendit
    keys: dict[str, str]

    def app(self, index: int) -> str:
        return f"http://127.0.0.1:{self.app_ports[index]}"

    def command(self, *args: str, timeout: float = 180) -> None:
        subprocess.run([*CLUSTER, *args], env=self.env, check=True, timeout=timeout, capture_output=True)

    def pid(self, name: str) -> int:
        return int((self.directory / "run" / f"{name}.pid").read_text())

    def ready(self, index: int) -> bool:
        try:
            return requests.get(f"{self.app(index)}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def nginx_log(self) -> list[dict]:
        time.sleep(1.2)  # the access log is flushed every second
        path = self.directory / "log" / "nginx-access.log"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def query(self, url: str, sql: str, params=()) -> list[tuple]:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()

    def pg_ctl(self, name: str, *args: str) -> None:
        argv = [f"{_bindir()}/pg_ctl", "-D", str(self.directory / name), *args]
        subprocess.run(_as_pg_user(argv), check=True, capture_output=True, timeout=90)


@pytest.fixture(scope="session")
def cluster():
    directory = Path(tempfile.mkdtemp(prefix="paytrust-cluster-"))
    directory.chmod(0o755)  # the postgres user runs the databases and PgBouncer in here
    app_ports = free_ports(3, 23001)
    pg, replica, pgbouncer, redis, http = free_ports(5, 24001)
    fake = FakeXendit(secret_key=XENDIT_SECRET).start()
    env = {
        **os.environ,
        "CLUSTER_DIR": str(directory),
        "CLUSTER_HTTP_PORT": str(http),
        "CLUSTER_APP_PORT": str(app_ports[0]),
        "CLUSTER_APPS": "3",
        "CLUSTER_WORKERS": "2",
        "CLUSTER_PG_PORT": str(pg),
        "CLUSTER_REPLICA_PORT": str(replica),
        "CLUSTER_PGBOUNCER_PORT": str(pgbouncer),
        "CLUSTER_REDIS_PORT": str(redis),
        "CLUSTER_HEALTH_INTERVAL": str(HEALTH_INTERVAL),
        "CLUSTER_SEED": "0",
        "XENDIT_API_BASE": fake.base_url,
        "DATABASE_REPLICA_CHECK_SECONDS": str(REPLICA_CHECK),
        "DATABASE_REPLICA_MAX_LAG_SECONDS": str(REPLICA_MAX_LAG),
        "PAYTRUST_ALLOW_DEV_SECRET": "",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    try:
        subprocess.run([*CLUSTER, "up"], env=env, check=True, timeout=240, capture_output=True)
    except subprocess.SubprocessError as exc:
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in (directory / "log").glob("*.log"))
        subprocess.run([*CLUSTER, "down"], env=env, check=False, timeout=180)
        fake.stop()
        pytest.fail(
            f"the cluster did not start: {exc}\n{getattr(exc, 'stderr', b'').decode()[-3000:]}\n{logs}"
        )
    primary = f"postgresql://postgres@127.0.0.1:{pg}/paytrust"
    seeded = subprocess.run(
        [
            *CLUSTER,
            "run",
            sys.executable,
            str(Path(__file__).with_name("seed.py")),
            XENDIT_SECRET,
            XENDIT_CALLBACK_TOKEN,
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    keys = json.loads(seeded.stdout.strip().splitlines()[-1])
    yield Cluster(
        env=env,
        directory=directory,
        http=f"http://127.0.0.1:{http}",
        app_ports=app_ports,
        primary=primary,
        replica=f"postgresql://postgres@127.0.0.1:{replica}/paytrust",
        replica_port=replica,
        xendit=fake,
        keys=keys,
    )
    subprocess.run([*CLUSTER, "down"], env=env, check=False, timeout=240)
    fake.stop()
    if not os.environ.get("CLUSTER_TEST_KEEP"):  # keep the logs to read after a failure
        shutil.rmtree(directory, ignore_errors=True)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def invoice_body(**extra) -> dict:
    return {
        "currency": "IDR",
        "line_items": [{"name": "Course", "quantity": 1, "unit_price": "150000", "tax_rate": "0.11"}],
        **extra,
    }
