"""`make run` (scripts/run.sh) as a new user meets it: the banner comes out in one piece while requests are
already being logged, the log keeps flowing after it, and Ctrl-C (SIGINT) stops everything.

The script runs against the test database (DATABASE_URL given: no search), on a free port, with one gunicorn
worker; a client hammers /healthz from the moment the port opens until after the banner, so access-log lines
race the banner the whole time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.apikeys.servers import database_url_for_tests, free_port

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
BANNER_LABELS = ("Home", "API", "API docs", "OpenAPI schema", "Admin", "Health", "Commands", "Logs")


def test_banner_is_never_interleaved_with_log_lines_and_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "1",
        "PUBLIC_BASE_URL": "",
        "PAYTRUST_RUN_LOG": str(tmp_path / "run.log"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "SECRET_KEY": "run-script-test-" + "s" * 40,  # with both set, no .data/dev-secrets.env is generated
        "FIELD_ENCRYPTION_KEYS": os.environ.get(
            "FIELD_ENCRYPTION_KEYS", "rLNTU-eyDlvYDc4o1gMLqW9B6Wv4ST1ZnWrcs5oudIY="
        ),
        "RUN_STOP_TIMEOUT": "20",
    }
    env.pop("PAYTRUST_RUN_SIGINT_RESET", None)
    proc = subprocess.Popen(
        ["bash", "scripts/run.sh"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    banner_done = threading.Event()
    stop_hammer = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.strip().startswith("Logs "):
                banner_done.set()

    def hammer() -> None:
        while not stop_hammer.is_set():
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            except requests.RequestException:
                time.sleep(0.05)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    client = threading.Thread(target=hammer, daemon=True)
    client.start()
    try:
        assert banner_done.wait(120), "no banner:\n" + "\n".join(lines[-50:])
        time.sleep(1.5)  # keep the requests coming after the banner
        stop_hammer.set()
        client.join(10)
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(90) == 130
    finally:
        stop_hammer.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(10)

    start = next(i for i, line in enumerate(lines) if "PayTrust is running" in line)
    end = next(i for i, line in enumerate(lines) if line.strip().startswith("Logs "))
    block = lines[start + 1 : end + 1]
    labels = [line.strip().split("  ")[0] for line in block if line.strip()]
    assert labels == list(BANNER_LABELS), "\n".join(lines[start - 3 : end + 3])  # nothing in between
    assert f"    Home             http://127.0.0.1:{port}/" in block
    assert f"    Logs             below, and in {tmp_path / 'run.log'}" in block

    after = lines[end + 1 :]
    followed = [json.loads(line) for line in after if line.startswith("{")]
    assert any(entry.get("path") == "/healthz" for entry in followed), "the log is followed after the banner"
    # The children never write the terminal themselves: every log line shown is one of the log file's, in order.
    logged = (tmp_path / "run.log").read_text().splitlines()
    shown = [line for line in lines if line.startswith("{")]
    assert shown and shown == [line for line in logged if line.startswith("{")][: len(shown)]
    assert after[-1] == "[run] stopped"
    with pytest.raises(requests.ConnectionError):  # gunicorn is gone
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
