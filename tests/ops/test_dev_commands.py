"""First run: development commands outside `make run` and the public base URL that follows HOST/PORT.

`manage.py` is run as a subprocess with a scrubbed environment (no SECRET_KEY, DEBUG or PAYTRUST_ALLOW_DEV_SECRET),
from a copy placed in a temporary directory beside its own `.data/dev-secrets.env` and `.env`, so the checkout's
real files are never touched. The project itself is imported from the checkout (PYTHONPATH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from paytrust.settings import public_base_url_default

ROOT = Path(__file__).resolve().parents[2]
DEV_SECRET = "dev-secret-from-the-file-" + "x" * 30
DEV_FERNET = "8SXOKs3lqwnK3PDWsmtOCqQJv29bInmxjDwvF_i8Wcg="
SCRUBBED = {
    "SECRET_KEY",
    "DEBUG",
    "PAYTRUST_ALLOW_DEV_SECRET",
    "FIELD_ENCRYPTION_KEYS",
    "PUBLIC_BASE_URL",
    "HOST",
    "PORT",
}
PRINT_SETTINGS = (
    "from django.conf import settings; "
    "print('SECRET_KEY=' + settings.SECRET_KEY); "
    "print('FIELD_ENCRYPTION_KEYS=' + ','.join(settings.FIELD_ENCRYPTION_KEYS)); "
    "print('PUBLIC_BASE_URL=' + settings.PUBLIC_BASE_URL)"
)


@pytest.fixture
def checkout(tmp_path):
    """A directory holding a copy of manage.py and the .data/dev-secrets.env that scripts/run.sh writes."""
    shutil.copy(ROOT / "manage.py", tmp_path / "manage.py")
    (tmp_path / ".data").mkdir()
    (tmp_path / ".data" / "dev-secrets.env").write_text(
        f"SECRET_KEY={DEV_SECRET}\nFIELD_ENCRYPTION_KEYS={DEV_FERNET}\n"
    )
    return tmp_path


def _manage(directory: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {name: value for name, value in os.environ.items() if name not in SCRUBBED}
    clean["PYTHONPATH"] = str(ROOT)
    clean.update(env)
    return subprocess.run(
        [sys.executable, str(directory / "manage.py"), *args],
        cwd=directory,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _settings(result: subprocess.CompletedProcess) -> dict[str, str]:
    assert result.returncode == 0, result.stderr[-2000:]
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_manage_check_works_with_the_dev_secrets_file_and_nothing_else(checkout):
    result = _manage(checkout, "check")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "System check identified no issues" in result.stdout


def test_commands_use_the_secrets_make_run_generated(checkout):
    values = _settings(_manage(checkout, "shell", "-c", PRINT_SETTINGS))
    assert values["SECRET_KEY"] == DEV_SECRET
    assert values["FIELD_ENCRYPTION_KEYS"] == DEV_FERNET


def test_without_the_file_the_missing_secret_is_still_refused(checkout):
    (checkout / ".data" / "dev-secrets.env").unlink()
    result = _manage(checkout, "check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_false_never_reads_the_development_secrets(checkout):
    result = _manage(checkout, "check", DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_false_in_dot_env_never_reads_them_either(checkout):
    (checkout / ".env").write_text("DEBUG=off\n")
    result = _manage(checkout, "check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_an_operators_secret_key_wins_and_nothing_is_taken_from_the_file(checkout):
    values = _settings(
        _manage(checkout, "shell", "-c", PRINT_SETTINGS, SECRET_KEY="operator-secret-" + "y" * 40)
    )
    assert values["SECRET_KEY"] == "operator-secret-" + "y" * 40
    assert values["FIELD_ENCRYPTION_KEYS"] == ""  # not papered over from the development file


def test_values_set_in_the_environment_win_over_the_file(checkout):
    other = "Xv1DxJ4Kp5Y8a7oOZyPc1c7I1f6Qy0sH6JvJm7cO0Yk="
    values = _settings(_manage(checkout, "shell", "-c", PRINT_SETTINGS, FIELD_ENCRYPTION_KEYS=other))
    assert values["SECRET_KEY"] == DEV_SECRET
    assert values["FIELD_ENCRYPTION_KEYS"] == other


# --- PUBLIC_BASE_URL follows HOST and PORT ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", "8100", "http://127.0.0.1:8100"),
        ("0.0.0.0", "8100", "http://localhost:8100"),
        ("::", "9000", "http://localhost:9000"),
        ("", "8000", "http://localhost:8000"),
        ("::1", "8100", "http://[::1]:8100"),
        ("pay.internal", "80", "http://pay.internal:80"),
    ],
)
def test_public_base_url_default_from_host_and_port(host, port, expected):
    assert public_base_url_default(host, port) == expected


def test_port_8100_hands_out_urls_on_8100(checkout):
    values = _settings(_manage(checkout, "shell", "-c", PRINT_SETTINGS, PORT="8100", HOST="0.0.0.0"))
    assert values["PUBLIC_BASE_URL"] == "http://localhost:8100"


def test_nothing_set_keeps_localhost_8000(checkout):
    values = _settings(_manage(checkout, "shell", "-c", PRINT_SETTINGS))
    assert values["PUBLIC_BASE_URL"] == "http://localhost:8000"


def test_an_explicit_public_base_url_wins(checkout):
    values = _settings(
        _manage(
            checkout, "shell", "-c", PRINT_SETTINGS, PORT="8100", PUBLIC_BASE_URL="https://pay.example.com/"
        )
    )
    assert values["PUBLIC_BASE_URL"] == "https://pay.example.com"
