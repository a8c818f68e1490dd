"""docker-compose.yml cannot be run on the build machines (no container images), so it is checked here against what
`make cluster` runs (deploy/cluster.py and the deploy/ templates): the same topology, the same configs."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))
sys.path.insert(0, str(ROOT / "scripts"))

from cluster import Config, app_env, template_values  # noqa: E402
from render import placeholders, render  # noqa: E402

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
TEMPLATES = ("nginx.conf", "pgbouncer.ini", "postgresql.conf")


def _env(service: str) -> dict[str, str]:
    return {key: str(value) for key, value in SERVICES[service].get("environment", {}).items()}


def _is_app(service: dict) -> bool:
    return "command" not in service and service.get("image") == "paytrust:local" and "ports" not in service


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def _rendered(name: str) -> str:
    return render((ROOT / "deploy" / name).read_text(), _env("config"))


def test_the_topology_is_the_clusters():
    cfg = Config()
    apps = sorted(name for name, service in SERVICES.items() if _is_app(service) and name != "config")
    workers = sorted(
        name for name, s in SERVICES.items() if s.get("command", [])[-2:] == ["procrastinate", "worker"]
    )
    assert apps == [f"app{n}" for n in range(1, cfg.apps + 1)]  # 3 instances, as CLUSTER_APPS
    assert workers == [f"worker{n}" for n in range(1, cfg.workers + 1)]  # 2 job workers, as CLUSTER_WORKERS
    assert {"db", "db-replica", "pgbouncer", "redis", "nginx", "migrate", "config"} <= set(SERVICES)


def test_the_config_service_renders_every_deploy_template_with_all_its_values():
    command = " ".join(SERVICES["config"]["command"])
    for name in TEMPLATES:
        assert f"python deploy/render.py deploy/{name} /config/{name}" in command
        _rendered(name)  # every ${PT_...} has a value (render raises otherwise)
    # ... and the cluster script provides the same set of values: one template, two renderers.
    assert set(_env("config")) == set(template_values(Config()))
    assert set(template_values(Config())) == set().union(
        *(placeholders((ROOT / "deploy" / n).read_text()) for n in TEMPLATES)
    )


def test_nginx_balances_the_three_app_services_with_the_rendered_config():
    conf = _rendered("nginx.conf")
    upstream = re.search(r"upstream paytrust_app \{(.*?)\}", conf, re.S).group(1)
    servers = re.findall(r"server (\S+?):(\d+)", upstream)
    assert [host for host, _ in servers] == ["app1", "app2", "app3"]
    assert {int(port) for _, port in servers} == {int(_env("app1")["PORT"])}
    nginx = SERVICES["nginx"]
    assert nginx["command"][:3] == ["nginx", "-c", "/config/nginx.conf"]
    assert "config:/config:ro" in nginx["volumes"]
    assert nginx["ports"] == ["${HTTP_PORT:-3000}:3000"] and _env("config")["PT_HTTP_LISTEN"] == "3000"


def test_apps_write_through_pgbouncer_read_reports_from_the_replica_and_count_on_redis(tmp_path):
    cluster_env = app_env(Config(directory=tmp_path), port=3001)
    bouncer_port = int(_env("config")["PT_PGBOUNCER_PORT"])
    for name in ("app1", "app2", "app3"):
        env = _env(name)
        assert _host_port(env["DATABASE_URL"]) == ("pgbouncer", bouncer_port)
        assert _host_port(env["DATABASE_REPLICA_URL"])[0] == "db-replica"
        assert _host_port(env["REDIS_URL"])[0] == "redis"
        # The settings the cluster gives its instances, with the same values where they are not addresses.
        for key in (
            "DATABASE_URL",
            "DATABASE_REPLICA_URL",
            "DB_PREPARED_STATEMENTS",
            "REDIS_URL",
            "TRUSTED_PROXIES",
        ):
            assert key in env and key in cluster_env
        assert env["DB_PREPARED_STATEMENTS"] == cluster_env["DB_PREPARED_STATEMENTS"] == "false"
    pgbouncer = _rendered("pgbouncer.ini")
    assert re.search(r"^pool_mode = transaction$", pgbouncer, re.M)
    assert re.search(r"^paytrust = host=db port=5432 dbname=paytrust$", pgbouncer, re.M)
    assert SERVICES["pgbouncer"]["command"] == ["pgbouncer", "/config/pgbouncer.ini"]


@pytest.mark.parametrize("service", ["worker1", "worker2", "migrate"])
def test_workers_and_migrations_talk_to_the_primary_directly(service, tmp_path):
    assert _host_port(_env(service)["DATABASE_URL"]) == ("db", 5432)
    cfg = Config(directory=tmp_path)
    assert _host_port(app_env(cfg)["DATABASE_URL"])[1] == cfg.pg_port  # the cluster does the same


def test_the_replica_streams_from_the_primary_with_the_same_postgresql_conf():
    replica = SERVICES["db-replica"]
    entrypoint = (ROOT / "deploy" / "docker" / "replica-entrypoint.sh").read_text()
    assert "pg_basebackup" in entrypoint and " -R " in entrypoint and "-X stream" in entrypoint
    assert _env("db-replica")["PRIMARY_HOST"] == "db"
    assert "./deploy/docker/replica-entrypoint.sh:/replica-entrypoint.sh:ro" in replica["volumes"]
    init = (ROOT / "deploy" / "docker" / "primary-init.sh").read_text()
    assert "include '/config/postgresql.conf'" in init
    assert (
        "./deploy/docker/primary-init.sh:/docker-entrypoint-initdb.d/10-primary.sh:ro"
        in SERVICES["db"]["volumes"]
    )
    conf = _rendered("postgresql.conf")
    assert "wal_level = replica" in conf and "hot_standby = on" in conf
