"""A private PostgreSQL cluster for fault tests: started by the test in a temporary directory on a free port, with
the machine's PostgreSQL binaries, so it can be restarted or stopped without touching the shared server."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.apikeys.servers import free_port

ROOT = Path(__file__).resolve().parents[1]


def _bindir() -> str | None:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]), reverse=True)
    return next((d for d in dirs if os.path.exists(f"{d}/initdb") and os.path.exists(f"{d}/pg_ctl")), None)


def _as_pg_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run the cluster as the `postgres` system user.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PrivateCluster:
    bindir: str
    directory: Path
    port: int

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def pg_ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            _as_pg_user([f"{self.bindir}/pg_ctl", "-D", str(self.data), *args]),
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every connection is closed; returns when the server accepts them again."""
        self.pg_ctl("restart", "-m", "fast", "-w", "-l", str(self.directory / "log"))

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def manage(self, database_url: str, *args: str, stdin: str | None = None) -> str:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PAYTRUST_ALLOW_DEV_SECRET": "true",
            "DB_POOL_MIN": "1",
        }
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"manage.py {args}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return done.stdout


@contextmanager
def private_cluster():
    bindir = _bindir()
    if bindir is None:
        pytest.fail("PostgreSQL's server binaries (initdb, pg_ctl) are missing; `make test` installs them")
    directory = Path(tempfile.mkdtemp(prefix="paytrust-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    cluster = PrivateCluster(bindir=bindir, directory=directory, port=free_port())
    subprocess.run(
        _as_pg_user(
            [f"{bindir}/initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {cluster.port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
    cluster.pg_ctl("start", "-w", "-o", options, "-l", str(directory / "log"))
    try:
        yield cluster
    finally:
        try:
            cluster.pg_ctl("stop", "-m", "immediate")
        except subprocess.SubprocessError:
            pass
        shutil.rmtree(directory, ignore_errors=True)
