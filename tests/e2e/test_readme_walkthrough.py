"""The README's walkthrough ("Payments & inbound webhooks") is itself the test: its `sh` block is run as written,
by bash with curl, against a live gunicorn and a procrastinate worker subprocess on the test database, with `KEY`
the key `manage.py seed_demo` prints (as `make run` does), and every `#>` line is checked.

The README is the single source: this file holds no copy of the steps. It changes only what must differ here:
the base URL (`http://127.0.0.1:8000` -> the test server's; PUBLIC_BASE_URL is left unset, so the payment URLs
follow HOST/PORT as under `PORT=8100 make run`) and `.venv/bin/python` (-> this interpreter).

`#>` lines: the lines the commands since the previous `#>` block print, in order (other lines may come between),
each matched whole; `…` stands for any text and `$NAME` for the value the shell variable NAME has then.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.apikeys.servers import database_url_for_tests, gunicorn

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- walkthrough:"
README_BASE = "http://127.0.0.1:8000"
STEP = "@@walkthrough-step {n}@@"
VARIABLE = re.compile(r"\$([A-Z][A-Z0-9_]*)")


def walkthrough_block() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```sh\n", readme.index(MARKER)) + len("```sh\n")
    return readme[start : readme.index("\n```\n", start) + 1]


def parse(block: str) -> tuple[str, list[list[str]]]:
    """The script to run (each `#>` block replaced by a step marker that also prints the variables the block
    names) and the expected lines of each step."""
    script: list[str] = []
    steps: list[list[str]] = []
    expected: list[str] = []

    def close() -> None:
        if expected:
            steps.append(list(expected))
            script.append(f"echo '{STEP.format(n=len(steps))}'")
            for name in _names(expected):
                script.append(f"printf '%s=%s\\n' {name} \"${name}\"")
            expected.clear()

    for line in block.splitlines():
        if line.startswith("#> "):
            expected.append(line[3:])
        else:
            close()
            script.append(line)
    close()
    return "\n".join(script) + "\n", steps


def _pattern(expected: str, values: dict[str, str]) -> re.Pattern:
    parts = re.split(r"(…|\$[A-Z][A-Z0-9_]*)", expected)
    regex = ""
    for part in parts:
        if part == "…":
            regex += ".+?"
        elif VARIABLE.fullmatch(part):
            regex += re.escape(values[part[1:]])
        else:
            regex += re.escape(part)
    return re.compile(regex)


def _names(expected: list[str]) -> list[str]:
    return sorted({name for line in expected for name in VARIABLE.findall(line)})


def check(output: str, steps: list[list[str]]) -> None:
    """Each step's expected lines, in order, among the lines its commands printed (before its marker). The lines
    right after a marker are the values of the variables its step names (see `parse`)."""
    pieces = re.split(r"^@@walkthrough-step \d+@@\n", output, flags=re.M)
    assert len(pieces) == len(steps) + 1, f"the walkthrough stopped early:\n{output[-3000:]}"
    printed = pieces[0].splitlines()
    for n, expected in enumerate(steps):
        names = _names(expected)
        following = pieces[n + 1].splitlines()
        values = dict(line.split("=", 1) for line in following[: len(names)])
        assert sorted(values) == names, following[: len(names)]
        position = 0
        for want in expected:
            pattern = _pattern(want, values)
            for index in range(position, len(printed)):
                if pattern.fullmatch(printed[index].rstrip("\r")):
                    position = index + 1
                    break
            else:
                raise AssertionError(
                    f"walkthrough step {n + 1}: expected the line\n  {want}\nin what its commands printed:\n  "
                    + "\n  ".join(printed)
                )
        printed = following[len(names) :]


def test_parse_keeps_commands_and_expectations_apart():
    script, steps = parse('A=1\necho "x $A"\n#> x $A\necho yes\n#> y…\n')
    assert steps == [["x $A"], ["y…"]]
    assert "#>" not in script and STEP.format(n=1) in script and "printf '%s=%s\\n' A \"$A\"" in script
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    check(out, steps)
    with pytest.raises(AssertionError, match="expected the line"):
        check(out.replace("x 1", "x 2"), steps)


def _start_worker(log) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "TEST_DATABASE_NAME": "",
        "PAYTRUST_ALLOW_DEV_SECRET": "true",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "procrastinate", "worker"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_readme_walkthrough_does_what_it_says(tmp_path):
    out = StringIO()
    call_command("seed_demo", stdout=out)  # what `make run` prints the key with
    (key,) = re.findall(r"^API_KEY=(\S+)$", out.getvalue(), re.M)
    script, steps = parse(walkthrough_block())
    assert len(steps) >= 10 and README_BASE in script

    worker_log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    worker = _start_worker(worker_log)
    try:
        with gunicorn(workers=2, env={"PUBLIC_BASE_URL": "", "LOG_LEVEL": "WARNING"}) as base:
            script = script.replace(README_BASE, base).replace(".venv/bin/python", sys.executable)
            env = {
                **os.environ,
                "KEY": key,
                "DATABASE_URL": database_url_for_tests(),  # for the walkthrough's manage.py command
                "TEST_DATABASE_NAME": "",
            }
            result = subprocess.run(
                ["bash", "-c", "set -eo pipefail\n" + script],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
    finally:
        _stop(worker)
        worker_log.close()
    assert result.returncode == 0, (
        f"the walkthrough failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}\n"
        f"worker:\n{(tmp_path / 'worker.log').read_text()[-2000:]}"
    )
    check(result.stdout, steps)
