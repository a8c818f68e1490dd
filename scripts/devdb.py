"""Find (or make) a PostgreSQL database for `make run` / `make test`, print `export DATABASE_URL=...` lines.

Order: $DATABASE_URL as given (its database is created when the server is reachable and it is missing); else a
server on 127.0.0.1:5432 (creating the database); else a private cluster under .data/pg started with the machine's
PostgreSQL binaries (installing Debian's `postgresql` package first when they are missing and we run as root);
else exit 2 with a message saying what to install.

Usage: python scripts/devdb.py DBNAME  (status messages go to stderr, shell lines to stdout)
       python scripts/devdb.py --stop-private

Prints `export DATABASE_URL=...`, `export PAYTRUST_PRIVATE_PG=0|1` (1 = the private cluster is in use) and
`export PAYTRUST_PRIVATE_PG_STARTED=0|1` (1 = this call started it, so the caller should stop it when done).

Environment overrides: PAYTRUST_SYSTEM_PG_PORT (the probed server's port, default 5432; point it at a closed
port to exercise the private-cluster path without stopping the system PostgreSQL), PAYTRUST_PRIVATE_PG_PORT
(the private cluster's port, default 54329).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PRIVATE_DIR = ROOT / ".data" / "pg"
PRIVATE_PORT = int(os.environ.get("PAYTRUST_PRIVATE_PG_PORT", "54329"))
SYSTEM_PORT = int(os.environ.get("PAYTRUST_SYSTEM_PG_PORT", "5432"))


def say(msg: str) -> None:
    print(f"[devdb] {msg}", file=sys.stderr, flush=True)


def can_connect(conninfo: str) -> bool:
    try:
        with psycopg.connect(conninfo, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def ensure_database(server: str, dbname: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{dbname}"')
                say(f"created database {dbname}")
            except psycopg.errors.DuplicateDatabase:
                pass  # created concurrently by another run


def ensure_url_database(url: str) -> None:
    """Create the database named in DATABASE_URL when its server is reachable and it does not exist yet."""
    if can_connect(url):
        return
    parts = urlsplit(url)
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or not re.fullmatch(r"[A-Za-z0-9_\-]+", dbname):
        return
    server = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    try:
        ensure_database(server, dbname)
    except psycopg.Error as exc:
        say(f"cannot reach the server in DATABASE_URL ({exc.__class__.__name__}); using it as given")


def pg_bindir() -> str | None:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    dirs = [d for d in dirs if os.path.exists(f"{d}/initdb") and os.path.exists(f"{d}/pg_ctl")]
    return dirs[-1] if dirs else None


def install_postgresql() -> None:
    say("PostgreSQL binaries not found; installing Debian's postgresql package (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True, env=env, stdout=sys.stderr)


def as_pg_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run the cluster as the `postgres` system user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def start_private_cluster() -> tuple[str, bool]:
    """(server URL, whether this call started it)."""
    bindir = pg_bindir()
    if bindir is None:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            install_postgresql()
            bindir = pg_bindir()
        if bindir is None:
            say(
                "No PostgreSQL found. Install it (Debian/Ubuntu: `sudo apt-get install postgresql`), "
                "or set DATABASE_URL to a reachable PostgreSQL database."
            )
            sys.exit(2)
    server = f"postgresql://postgres@127.0.0.1:{PRIVATE_PORT}"
    if can_connect(f"{server}/postgres"):
        say(f"the private PostgreSQL cluster is already running on 127.0.0.1:{PRIVATE_PORT}")
        return server, False
    run_dir = PRIVATE_DIR / "run"
    data_dir = PRIVATE_DIR / "data"
    PRIVATE_DIR.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(PRIVATE_DIR, "postgres", "postgres")
        shutil.chown(run_dir, "postgres", "postgres")
    if not (data_dir / "PG_VERSION").exists():
        say(f"initialising a private PostgreSQL cluster in {data_dir}")
        subprocess.run(
            as_pg_user(
                [f"{bindir}/initdb", "-D", str(data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            check=True,
            stdout=sys.stderr,
        )
    say(f"starting the private PostgreSQL cluster on 127.0.0.1:{PRIVATE_PORT}")
    opts = f"-c listen_addresses=127.0.0.1 -p {PRIVATE_PORT} -k {run_dir} -c max_connections=200"
    subprocess.run(
        as_pg_user(
            [
                f"{bindir}/pg_ctl",
                "-D",
                str(data_dir),
                "-l",
                str(PRIVATE_DIR / "server.log"),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        stdout=sys.stderr,
    )
    for _ in range(60):
        if can_connect(f"{server}/postgres"):
            return server, True
        time.sleep(0.5)
    say(f"the private cluster did not come up; see {PRIVATE_DIR / 'server.log'}")
    sys.exit(2)


def stop_private_cluster() -> None:
    bindir = pg_bindir()
    data_dir = PRIVATE_DIR / "data"
    if bindir and (data_dir / "postmaster.pid").exists():
        subprocess.run(
            as_pg_user([f"{bindir}/pg_ctl", "-D", str(data_dir), "-m", "fast", "stop"]),
            stdout=sys.stderr,
            check=False,
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--stop-private":
        stop_private_cluster()
        return
    dbname = sys.argv[1] if len(sys.argv) > 1 else "paytrust"
    url = os.environ.get("DATABASE_URL")
    if url:
        say("using DATABASE_URL from the environment")
        ensure_url_database(url)
        print(f"export DATABASE_URL='{url}'")
        print("export PAYTRUST_PRIVATE_PG=0")
        print("export PAYTRUST_PRIVATE_PG_STARTED=0")
        return
    private, started = False, False
    server = f"postgresql://postgres@127.0.0.1:{SYSTEM_PORT}"
    if can_connect(f"{server}/postgres"):
        say(f"using the PostgreSQL server on 127.0.0.1:{SYSTEM_PORT}")
    else:
        say(f"no PostgreSQL server on 127.0.0.1:{SYSTEM_PORT}")
        server, started = start_private_cluster()
        private = True
    ensure_database(server, dbname)
    print(f"export DATABASE_URL='{server}/{dbname}'")
    print(f"export PAYTRUST_PRIVATE_PG={int(private)}")
    print(f"export PAYTRUST_PRIVATE_PG_STARTED={int(started)}")


if __name__ == "__main__":
    main()
