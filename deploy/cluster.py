"""`make cluster`: PayTrust scaled out on this machine, from Debian's packages (installed when missing, as root).

    PostgreSQL primary (CLUSTER_PG_PORT)  --streaming-->  replica (CLUSTER_REPLICA_PORT, pg_basebackup)
    PgBouncer, transaction pooling, in front of the primary (CLUSTER_PGBOUNCER_PORT)
    Redis (CLUSTER_REDIS_PORT): rate limits and the risk check's velocity counters
    CLUSTER_APPS app instances (gunicorn) on CLUSTER_APP_PORT, +1, ... -> PgBouncer (writes), replica (reports, lists)
    nginx on CLUSTER_HTTP_PORT, round robin over the instances (deploy/nginx.conf)
    CLUSTER_WORKERS procrastinate job workers -> the primary directly (LISTEN/NOTIFY needs a session)
    a health loop polling every instance's /readyz and taking failing ones out of nginx

Usage: python deploy/cluster.py up | down | status | rolling-restart | restart-app PORT | restart-primary | run CMD...
(health-loop is started by `up`). `run` runs a command with the job workers' environment (the primary directly):
`python deploy/cluster.py run .venv/bin/python manage.py create_merchant --name Shop`.
Everything lives under CLUSTER_DIR (default .data/cluster): data directories, rendered configs, logs, pid files.
Ports and counts come from the environment (defaults in `Config`). Any other variable in the environment reaches
the app instances and workers too (e.g. XENDIT_API_BASE), so tests can point them at fake gateways.
The topology, its connection budget and its limits: docs/capacity.md, docs/adr/0057-scale-out.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
sys.path.insert(0, str(ROOT / "scripts"))

from devdb import as_pg_user, can_connect, pg_bindir  # noqa: E402
from render import render  # noqa: E402

PACKAGES = {"nginx": "nginx", "pgbouncer": "pgbouncer", "redis-server": "redis-server"}


def say(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass
class Config:
    directory: Path = field(
        default_factory=lambda: Path(os.environ.get("CLUSTER_DIR", ROOT / ".data" / "cluster"))
    )
    http_port: int = field(default_factory=lambda: _int("CLUSTER_HTTP_PORT", 3000))
    app_port: int = field(default_factory=lambda: _int("CLUSTER_APP_PORT", 3001))
    apps: int = field(default_factory=lambda: _int("CLUSTER_APPS", 3))
    workers: int = field(default_factory=lambda: _int("CLUSTER_WORKERS", 2))
    # gunicorn processes per instance; 1 on this 2-core machine (3 instances = 3 processes), threads: GUNICORN_THREADS
    web_concurrency: int = field(default_factory=lambda: _int("CLUSTER_WEB_CONCURRENCY", 1))
    # Below the kernel's ephemeral range (32768-60999): a port there can be taken at any moment by some client
    # connection's local end, and then PostgreSQL, PgBouncer or Redis could not bind it.
    pg_port: int = field(default_factory=lambda: _int("CLUSTER_PG_PORT", 15432))
    replica_port: int = field(default_factory=lambda: _int("CLUSTER_REPLICA_PORT", 15433))
    pgbouncer_port: int = field(default_factory=lambda: _int("CLUSTER_PGBOUNCER_PORT", 16432))
    redis_port: int = field(default_factory=lambda: _int("CLUSTER_REDIS_PORT", 16379))
    db_name: str = field(default_factory=lambda: os.environ.get("CLUSTER_DB_NAME", "paytrust"))
    health_interval: float = field(
        default_factory=lambda: float(os.environ.get("CLUSTER_HEALTH_INTERVAL", "1"))
    )
    replica: bool = field(default_factory=lambda: os.environ.get("CLUSTER_REPLICA", "1") != "0")
    seed: bool = field(default_factory=lambda: os.environ.get("CLUSTER_SEED", "1") != "0")

    @property
    def run(self) -> Path:
        return self.directory / "run"

    @property
    def logs(self) -> Path:
        return self.directory / "log"

    @property
    def pg_run(
        self,
    ) -> Path:  # the only directories the postgres user writes to, besides the data directories
        return self.run / "pg"

    @property
    def pg_logs(self) -> Path:
        return self.logs / "pg"

    @property
    def app_ports(self) -> list[int]:
        return [self.app_port + i for i in range(self.apps)]

    def primary_url(self, db: str | None = None) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{db or self.db_name}"

    def replica_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.replica_port}/{self.db_name}"

    def pgbouncer_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pgbouncer_port}/{self.db_name}"

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


# --- processes ---------------------------------------------------------------------------------------------
def _pidfile(cfg: Config, name: str) -> Path:
    return cfg.run / f"{name}.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(cfg: Config, name: str) -> int | None:
    try:
        pid = int(_pidfile(cfg, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def spawn(cfg: Config, name: str, argv: list[str], env: dict[str, str]) -> int:
    """Start a process in its own session (so it can be stopped as a group), output to log/NAME.log."""
    log = open(cfg.logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    _pidfile(cfg, name).write_text(str(proc.pid))
    return proc.pid


def stop_process(cfg: Config, name: str, *, sig: int = signal.SIGTERM, timeout: float = 40) -> None:
    pid = read_pid(cfg, name)
    if pid is None:
        _pidfile(cfg, name).unlink(missing_ok=True)
        return
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if _alive(pid):
        say(f"{name} did not stop in {timeout:.0f} s; killing it")
    try:
        os.killpg(pid, signal.SIGKILL)  # whatever is left of its group
    except ProcessLookupError:
        pass
    _reap(pid)
    _pidfile(cfg, name).unlink(missing_ok=True)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_for(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"[cluster] {what} did not come up in {timeout:.0f} s (logs: see {Config().logs})")


def http_ok(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own http://127.0.0.1 URLs
            return response.status == 200
    except (OSError, ValueError):
        return False


# --- packages ----------------------------------------------------------------------------------------------
def ensure_packages() -> None:
    missing = [
        pkg
        for binary, pkg in PACKAGES.items()
        if not shutil.which(binary) and not Path(f"/usr/sbin/{binary}").exists()
    ]
    if pg_bindir() is None:
        missing.append("postgresql")
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(
            f"[cluster] missing {', '.join(missing)}: install Debian's packages {' '.join(missing)}"
        )
    say(f"installing {' '.join(missing)} (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    quiet = {"stdout": subprocess.DEVNULL, "env": env}
    if subprocess.run(["apt-get", "install", "-y", "-q", *missing], **quiet, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], **quiet, check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], **quiet, check=True)
    # Debian starts the packaged services on install; ours run under CLUSTER_DIR, on their own ports.
    for service in ("nginx", "pgbouncer"):
        subprocess.run(["service", service, "stop"], capture_output=True, check=False)


def _binary(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


# --- PostgreSQL --------------------------------------------------------------------------------------------
def _pg_ctl(cfg: Config, data: Path, port: int, action: str) -> None:
    bindir = pg_bindir()
    opts = f"-p {port} -k {cfg.pg_run}"
    argv = [
        f"{bindir}/pg_ctl",
        "-D",
        str(data),
        "-l",
        str(cfg.pg_logs / f"{data.name}.log"),
        "-w",
        "-t",
        "60",
    ]
    if action in ("start", "restart"):
        argv += ["-o", opts]
    argv += [action] + (["-m", "fast"] if action in ("stop", "restart") else [])
    subprocess.run(as_pg_user(argv), check=True, stdout=subprocess.DEVNULL)


def _chown(*paths: Path) -> None:
    if os.geteuid() == 0:
        for path in paths:
            shutil.chown(path, "postgres", "postgres")


def _postmaster_running(data: Path) -> bool:
    try:
        return _alive(int((data / "postmaster.pid").read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return False


def require_free(port: int, what: str) -> None:
    """Refuse to start next to something else on our port (another cluster, the system's services)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(
                f"[cluster] port {port} ({what}) is taken by another process: set the CLUSTER_* ports"
            ) from None


def start_primary(cfg: Config) -> None:
    data = cfg.directory / "primary"
    if _postmaster_running(data):
        return
    require_free(cfg.pg_port, "PostgreSQL primary")
    if not (data / "PG_VERSION").exists():
        say(f"initialising the primary in {data}")
        data.mkdir(parents=True, exist_ok=True)
        _chown(data)
        subprocess.run(
            as_pg_user(
                [f"{pg_bindir()}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        conf = cfg.directory / "postgresql.conf"
        with open(data / "postgresql.conf", "a") as fh:
            fh.write(f"\ninclude '{conf}'\n")
    say(f"starting the primary on 127.0.0.1:{cfg.pg_port}")
    _pg_ctl(cfg, data, cfg.pg_port, "start")
    with psycopg.connect(cfg.primary_url("postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (cfg.db_name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{cfg.db_name}"')
    with psycopg.connect(cfg.primary_url(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def start_replica(cfg: Config) -> None:
    data = cfg.directory / "replica"
    if _postmaster_running(data):
        return
    require_free(cfg.replica_port, "PostgreSQL replica")
    if not (data / "PG_VERSION").exists():
        say("copying the primary into the replica (pg_basebackup)")
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)
        _chown(data)
        backup = [f"{pg_bindir()}/pg_basebackup", "-h", "127.0.0.1", "-p", str(cfg.pg_port), "-U", "postgres"]
        # -C -S: a replication slot, so the primary keeps the WAL the replica has not received yet (bounded by
        # max_slot_wal_keep_size in deploy/postgresql.conf) instead of leaving it unable to catch up.
        with psycopg.connect(cfg.primary_url("postgres"), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'replica1'"
            )
        backup += ["-D", str(data), "-R", "-X", "stream", "-c", "fast", "-C", "-S", "replica1"]
        subprocess.run(as_pg_user(backup), check=True, stdout=subprocess.DEVNULL)
    say(f"starting the streaming replica on 127.0.0.1:{cfg.replica_port}")
    _pg_ctl(cfg, data, cfg.replica_port, "start")


def stop_postgres(cfg: Config, name: str) -> None:
    data = cfg.directory / name
    if (data / "postmaster.pid").exists() and pg_bindir():
        subprocess.run(
            as_pg_user([f"{pg_bindir()}/pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )


def restart_primary(cfg: Config) -> None:
    """`pg_ctl restart -m fast`: every connection to the primary (PgBouncer's, the workers') is closed."""
    _pg_ctl(cfg, cfg.directory / "primary", cfg.pg_port, "restart")


# --- configs -----------------------------------------------------------------------------------------------
def template_values(cfg: Config, down: set[int] = frozenset()) -> dict[str, str]:
    servers = []
    for port in cfg.app_ports:
        flag = " down" if port in down else ""
        servers.append(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s{flag};")
    user = "user www-data;" if os.geteuid() == 0 else ""
    return {
        "PT_NGINX_USER": user,
        "PT_NGINX_RESOLVER": "",
        "PT_NGINX_WORKERS": "1",
        "PT_RUN_DIR": str(cfg.run),
        "PT_ERROR_LOG": str(cfg.logs / "nginx-error.log"),
        "PT_ACCESS_LOG": str(cfg.logs / "nginx-access.log"),
        "PT_ACCESS_LOG_BUFFER": " buffer=64k flush=1s",
        "PT_HEALTH_INTERVAL": str(cfg.health_interval),
        "PT_UPSTREAM_SERVERS": "\n".join(servers),
        "PT_HTTP_LISTEN": f"127.0.0.1:{cfg.http_port}",
        "PT_MAX_BODY_BYTES": os.environ.get("MAX_REQUEST_BYTES", str(1024 * 1024)),
        "PT_DB_NAME": cfg.db_name,
        "PT_PRIMARY_HOST": "127.0.0.1",
        "PT_PRIMARY_PORT": str(cfg.pg_port),
        "PT_PGBOUNCER_LISTEN": "127.0.0.1",
        "PT_PGBOUNCER_PORT": str(cfg.pgbouncer_port),
        "PT_PGBOUNCER_AUTH_TYPE": "trust",
        "PT_PGBOUNCER_AUTH_FILE": str(cfg.directory / "pgbouncer-users.txt"),
        "PT_PGBOUNCER_POOL_SIZE": os.environ.get("CLUSTER_PGBOUNCER_POOL_SIZE", "20"),
        "PT_PG_LISTEN": "127.0.0.1",
    }


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    tmp.replace(path)


def write_configs(
    cfg: Config, down: set[int] = frozenset(), names=("nginx.conf", "pgbouncer.ini", "postgresql.conf")
) -> None:
    """Render deploy/ templates into CLUSTER_DIR (root's, readable by the postgres user; written atomically)."""
    values = template_values(cfg, down)
    for name in names:
        _write_atomic(cfg.directory / name, render((ROOT / "deploy" / name).read_text(), values))
    _write_atomic(cfg.directory / "pgbouncer-users.txt", '"postgres" ""\n')


def secrets_env(cfg: Config) -> dict[str, str]:
    """One SECRET_KEY / FIELD_ENCRYPTION_KEYS for every instance and worker, made once, kept in CLUSTER_DIR."""
    path = cfg.directory / "secrets.env"
    if not path.exists():
        from cryptography.fernet import Fernet

        lines = [
            f"SECRET_KEY={secrets.token_urlsafe(50)}",
            f"FIELD_ENCRYPTION_KEYS={Fernet.generate_key().decode()}",
        ]
        _write_atomic(path, "\n".join(lines) + "\n", mode=0o600)
    values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name: os.environ.get(name) or values[name] for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS")}


def app_env(cfg: Config, *, port: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DATABASE_URL", "DATABASE_REPLICA_URL"):  # the cluster's own, below
        env.pop(name, None)
    env.update(secrets_env(cfg))
    env.update(
        {
            "PATH": f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "REDIS_URL": f"redis://127.0.0.1:{cfg.redis_port}/0",
            "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", cfg.base_url()),
            "TRUSTED_PROXIES": "127.0.0.1/32",
            "OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE": env.get(
                "OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE", "true"
            ),
        }
    )
    if port is None:  # a job worker or a command: the primary directly
        env["DATABASE_URL"] = cfg.primary_url()
        env["DB_POOL_MAX"] = env.get("CLUSTER_WORKER_POOL_MAX", "4")
        return env
    env.update(
        {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WEB_CONCURRENCY": str(cfg.web_concurrency),
            "DATABASE_URL": cfg.pgbouncer_url(),
            "DB_PREPARED_STATEMENTS": "false",
            "DB_POOL_MAX": env.get("CLUSTER_APP_POOL_MAX", "8"),
            "PROMETHEUS_MULTIPROC_DIR": str(cfg.run / f"prometheus-{port}"),
        }
    )
    if cfg.replica:
        env["DATABASE_REPLICA_URL"] = cfg.replica_url()
    return env


# --- app instances and nginx -------------------------------------------------------------------------------
def start_app(cfg: Config, port: int) -> None:
    env = app_env(cfg, port=port)
    prom = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(prom, ignore_errors=True)
    prom.mkdir(parents=True)
    argv = [
        str(ROOT / ".venv/bin/python"),
        "-m",
        "gunicorn",
        "paytrust.wsgi:application",
        "-c",
        "python:paytrust.gunicorn_conf",
    ]
    spawn(cfg, f"app-{port}", argv, env)


def app_ready(port: int) -> bool:
    return http_ok(f"http://127.0.0.1:{port}/readyz")


def nginx_apply(cfg: Config) -> None:
    """Render nginx.conf with the instances that are down (drained by a restart, or failing /readyz while another
    passes) and reload nginx when that changed. Under the state file's lock, like every change of that file (the
    health loop and restarts both call this). The state records what nginx runs only after a reload succeeded."""
    with _state_lock(cfg):
        state = _read_state(cfg)
        unhealthy = set(state.get("unhealthy", []))
        healthy = set(cfg.app_ports) - unhealthy
        # Fail open: when no instance passes (a database outage fails every /readyz), keep them all, so clients
        # get the app's own 503 with Retry-After instead of nginx's 502.
        down = set(state.get("drained", [])) | (unhealthy if healthy else set())
        if set(cfg.app_ports) <= down:
            down = set(state.get("drained", []))
        running = read_pid(cfg, "nginx")
        if state.get("applied_down") == sorted(down) and running:
            return
        write_configs(cfg, down, names=("nginx.conf",))
        if running:
            subprocess.run(
                [_binary("nginx"), "-c", str(cfg.directory / "nginx.conf"), "-s", "reload"], check=True
            )
        state["applied_down"] = sorted(down)
        _write_state(cfg, state)


@contextlib.contextmanager
def _state_lock(cfg: Config):
    with open(cfg.run / "state.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _read_state(cfg: Config) -> dict:
    try:
        return json.loads((cfg.run / "upstream-state.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write_state(cfg: Config, state: dict) -> None:
    _write_atomic(cfg.run / "upstream-state.json", json.dumps(state))


def _update_state(cfg: Config, change) -> None:
    """Apply `change(state)` (it edits the dict in place) under the lock."""
    with _state_lock(cfg):
        state = _read_state(cfg)
        change(state)
        _write_state(cfg, state)


def set_drained(cfg: Config, ports, drained: bool = True) -> None:
    def change(state: dict) -> None:
        current = set(state.get("drained", []))
        state["drained"] = sorted(current | set(ports) if drained else current - set(ports))

    _update_state(cfg, change)


def start_nginx(cfg: Config) -> None:
    for sub in ("nginx-body", "nginx-proxy", "nginx-fastcgi", "nginx-uwsgi", "nginx-scgi"):
        (cfg.run / sub).mkdir(exist_ok=True)
        (cfg.run / sub).chmod(0o777)
    nginx_apply(cfg)
    conf = str(cfg.directory / "nginx.conf")
    subprocess.run([_binary("nginx"), "-t", "-q", "-c", conf], check=True)
    # nginx daemonises itself and writes run/nginx.pid (the pid read_pid expects).
    subprocess.run([_binary("nginx"), "-c", conf], check=True)
    wait_for(lambda: read_pid(cfg, "nginx") is not None, "nginx", 10)


def health_loop(cfg: Config) -> None:
    """Poll /readyz of every instance; two failures in a row mark it unhealthy, one success healthy again. An error
    in one round (a failed nginx reload, say) is logged and the next round tries again."""
    failures = {port: 0 for port in cfg.app_ports}
    while True:
        try:
            for port in cfg.app_ports:
                failures[port] = 0 if app_ready(port) else failures[port] + 1
            unhealthy = sorted(port for port, count in failures.items() if count >= 2)
            if _read_state(cfg).get("unhealthy") != unhealthy:
                _update_state(cfg, lambda state, unhealthy=unhealthy: state.update(unhealthy=unhealthy))
            nginx_apply(cfg)
        except Exception as exc:  # noqa: BLE001 - the loop must outlive one bad round
            say(f"health loop: {exc.__class__.__name__}: {exc}")
        time.sleep(cfg.health_interval)


def restart_app(cfg: Config, port: int) -> None:
    """Drain the instance in nginx, SIGTERM it (in-flight requests finish), start it again, wait for /readyz and
    put it back: no request is sent to an instance that is going away."""
    set_drained(cfg, [port])
    nginx_apply(cfg)
    time.sleep(1.0)  # nginx's old workers finish passing the requests they had already accepted
    stop_process(cfg, f"app-{port}")
    start_app(cfg, port)
    wait_for(lambda: app_ready(port), f"app instance on {port}", 60)
    set_drained(cfg, [port], drained=False)
    nginx_apply(cfg)
    say(f"instance {port} restarted")


# --- commands ----------------------------------------------------------------------------------------------
def up(cfg: Config) -> None:
    ensure_packages()
    for path in (cfg.directory, cfg.run, cfg.logs, cfg.pg_run, cfg.pg_logs):
        path.mkdir(parents=True, exist_ok=True)
    # CLUSTER_DIR, its configs, pid files and secrets stay root's (root runs nginx and reads them); the postgres
    # user (PostgreSQL, PgBouncer) owns only its data directories, its socket directory and its log directory.
    for path in (cfg.directory, cfg.run, cfg.logs):
        if os.geteuid() == 0:
            shutil.chown(path, "root", "root")
        path.chmod(0o755)
    _chown(cfg.pg_run, cfg.pg_logs)
    if not read_pid(cfg, "health"):
        _write_state(cfg, {})
    write_configs(cfg)
    start_primary(cfg)
    if cfg.replica:
        start_replica(cfg)
    if not read_pid(cfg, "redis"):
        require_free(cfg.redis_port, "Redis")
        redis = [
            _binary("redis-server"),
            "--port",
            str(cfg.redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        spawn(cfg, "redis", redis, dict(os.environ))
    if not read_pid(cfg, "pgbouncer"):
        require_free(cfg.pgbouncer_port, "PgBouncer")
        spawn(
            cfg,
            "pgbouncer",
            as_pg_user([_binary("pgbouncer"), str(cfg.directory / "pgbouncer.ini")]),
            dict(os.environ),
        )
    wait_for(lambda: can_connect(cfg.pgbouncer_url()), "PgBouncer", 20)
    manage = [str(ROOT / ".venv/bin/python"), "manage.py"]
    say("applying migrations (on the primary)")
    subprocess.run(
        [*manage, "migrate", "--noinput"], cwd=ROOT, env=app_env(cfg), check=True, stdout=subprocess.DEVNULL
    )
    if cfg.seed:
        subprocess.run([*manage, "seed_demo"], cwd=ROOT, env=app_env(cfg), check=True)
    for port in cfg.app_ports:
        if not read_pid(cfg, f"app-{port}"):
            require_free(port, "app instance")
            start_app(cfg, port)
    for n in range(1, cfg.workers + 1):
        if not read_pid(cfg, f"worker-{n}"):
            spawn(cfg, f"worker-{n}", [*manage, "procrastinate", "worker"], app_env(cfg))
    for port in cfg.app_ports:
        wait_for(lambda port=port: app_ready(port), f"app instance on {port}", 120)
    if not read_pid(cfg, "nginx"):
        require_free(cfg.http_port, "nginx")
        start_nginx(cfg)
    if not read_pid(cfg, "health"):
        spawn(cfg, "health", [sys.executable, str(Path(__file__).resolve()), "health-loop"], dict(os.environ))
    wait_for(lambda: http_ok(f"{cfg.base_url()}/healthz"), "nginx", 20)
    print(status_text(cfg))


def down(cfg: Config) -> None:
    stop_process(cfg, "health", timeout=5)
    if read_pid(cfg, "nginx"):
        subprocess.run([_binary("nginx"), "-c", str(cfg.directory / "nginx.conf"), "-s", "quit"], check=False)
        deadline = time.monotonic() + 10
        while read_pid(cfg, "nginx") and time.monotonic() < deadline:
            time.sleep(0.1)
    stop_process(cfg, "nginx", timeout=1)
    for pidfile in sorted(cfg.run.glob("app-*.pid")):
        stop_process(cfg, pidfile.stem)
    for pidfile in sorted(cfg.run.glob("worker-*.pid")):
        stop_process(cfg, pidfile.stem, sig=signal.SIGINT, timeout=60)
    stop_process(cfg, "pgbouncer", sig=signal.SIGINT, timeout=10)
    stop_process(cfg, "redis", timeout=10)
    stop_postgres(cfg, "replica")
    stop_postgres(cfg, "primary")
    say("stopped")


def status_text(cfg: Config) -> str:
    def state(name: str) -> str:
        pid = read_pid(cfg, name)
        return f"pid {pid}" if pid else "stopped"

    lines = [
        "",
        f"  PayTrust cluster ({cfg.directory}). Stop it with `make cluster-stop`.",
        "",
        f"    API (nginx)       {cfg.base_url()}/v1/   ({state('nginx')}; health loop {state('health')})",
    ]
    for port in cfg.app_ports:
        lines.append(f"    app instance      http://127.0.0.1:{port}   ({state(f'app-{port}')})")
    for n in range(1, cfg.workers + 1):
        lines.append(f"    job worker {n}      ({state(f'worker-{n}')})")
    lines += [
        f"    PgBouncer         {cfg.pgbouncer_url()}   ({state('pgbouncer')})",
        f"    primary           {cfg.primary_url()}",
        f"    replica           {cfg.replica_url() if cfg.replica else 'off'}",
        f"    Redis             redis://127.0.0.1:{cfg.redis_port}/0   ({state('redis')})",
        f"    Logs              {cfg.logs}",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "up"
    cfg = Config()
    if command == "up":
        up(cfg)
    elif command == "down":
        down(cfg)
    elif command == "status":
        print(status_text(cfg))
    elif command == "health-loop":
        health_loop(cfg)
    elif command == "restart-app":
        restart_app(cfg, int(sys.argv[2]))
    elif command == "rolling-restart":
        for port in cfg.app_ports:
            restart_app(cfg, port)
    elif command == "restart-primary":
        restart_primary(cfg)
    elif command == "run":  # a command in the workers' environment: `cluster.py run python manage.py shell`
        sys.exit(subprocess.run(sys.argv[2:], cwd=ROOT, env=app_env(cfg), check=False).returncode)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
