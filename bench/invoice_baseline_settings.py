"""Settings for the bare baseline of the invoice-creation benchmark (never used in production).

The production settings with: the baseline URLconf (bench/invoice_baseline_urls.py) and no middleware - so no
request context/logging, sessions, CSRF, auth. Start gunicorn with
`DJANGO_SETTINGS_MODULE=invoice_baseline_settings PYTHONPATH=bench` (bench/invoice_load.py does).
"""

from paytrust.settings import *  # noqa: F403

ROOT_URLCONF = "invoice_baseline_urls"
MIDDLEWARE: list[str] = []
