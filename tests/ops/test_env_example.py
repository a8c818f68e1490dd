"""`.env.example` documents every setting read from the environment."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _documented() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, re.M))


def test_every_setting_read_from_the_environment_is_in_env_example():
    settings_src = (ROOT / "paytrust" / "settings.py").read_text()
    names = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]*)"', settings_src))
    assert names, "no env() calls found in settings.py"
    missing = sorted(names - _documented())
    assert missing == [], f"add these to .env.example: {missing}"


def test_process_settings_are_documented_too():
    conf = (ROOT / "paytrust" / "gunicorn_conf.py").read_text()
    names = set(re.findall(r'os\.environ\.get\(\s*"([A-Z][A-Z0-9_]*)"', conf)) | set(
        re.findall(r"os\.environ\.get\(\s*'([A-Z][A-Z0-9_]*)'", conf)
    )
    assert {"WEB_CONCURRENCY", "PORT"} <= names
    assert sorted(names - _documented()) == []
