#!/usr/bin/env python
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEV_SECRETS_FILE = ROOT / ".data" / "dev-secrets.env"


def load_dev_secrets() -> None:
    """Give development commands the secrets `make run` uses, so the README's `manage.py create_api_key`,
    `changepassword`, `replay_webhooks`, … work in a checkout where `make run` ran, outside it too.

    scripts/run.sh generates .data/dev-secrets.env once (SECRET_KEY, FIELD_ENCRYPTION_KEYS) and exports its lines
    into gunicorn and the worker. Here the same lines are put into the environment when ALL of these hold:
    - the file exists (only `make run` writes it; .data/ is neither committed nor copied into the image);
    - SECRET_KEY is empty or unset in the environment and in .env (an operator's SECRET_KEY means a configured
      installation: nothing is loaded, and a missing FIELD_ENCRYPTION_KEYS is not papered over either);
    - DEBUG is not set to false (environment or .env): an installation that says it is not in development never
      reads a development secret.
    Like run.sh, a value already set (non-empty) in the environment or .env wins over the file's.
    """
    if not DEV_SECRETS_FILE.is_file():
        return
    import environ

    environ.Env.read_env(ROOT / ".env", overwrite=False)  # what settings.py reads too; real variables win
    if os.environ.get("SECRET_KEY"):
        return
    debug = os.environ.get("DEBUG", "").strip()
    if debug and debug.lower() not in environ.Env.BOOLEAN_TRUE_STRINGS:  # settings.py reads it as false
        return
    for line in DEV_SECRETS_FILE.read_text().splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name and not name.startswith("#") and not os.environ.get(name):
            os.environ[name] = value


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")
    load_dev_secrets()
    from django.core.management import execute_from_command_line

    from paytrust.tracing import configure as configure_tracing

    configure_tracing()  # spans of `procrastinate worker`'s jobs (and runserver's requests); paytrust/tracing.py

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
