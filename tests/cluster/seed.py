"""Run inside the cluster's environment (deploy/cluster.py's app_env, DATABASE_URL = the primary): creates the
merchants, API keys and the Xendit account the cluster tests use, through the real services; prints them as JSON."""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")

import django  # noqa: E402

django.setup()

from apikeys.services import Actor, api_key_create  # noqa: E402
from gateways.services import gateway_account_create, merchant_onboard  # noqa: E402

XENDIT_SECRET = sys.argv[1]
XENDIT_CALLBACK_TOKEN = sys.argv[2]


def key(merchant) -> str:
    return api_key_create(
        merchant=merchant, mode="test", actor=Actor.system(), name="cluster test", scopes=[]
    )[1]


limited = merchant_onboard(name="Rate limited (1,000/min)", rate_limit_per_minute=1000)
busy = merchant_onboard(name="Load (no practical limit)", rate_limit_per_minute=10_000_000)
gateway_account_create(
    merchant=busy,
    mode="test",
    gateway="xendit",
    credentials={"secret_key": XENDIT_SECRET, "callback_token": XENDIT_CALLBACK_TOKEN},
    currencies=["IDR"],
    fees=[{"currency": "IDR", "percent": "0.029", "fixed": "2000"}],
)
print(json.dumps({"limited_key": key(limited), "load_key": key(busy)}))
