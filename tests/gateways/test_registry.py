import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_adapter_is_known_even_when_one_adapter_module_was_imported_first():
    # A fresh interpreter: importing the Midtrans adapter first must not leave the registry knowing only it.
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'paytrust.settings'); django.setup();"
        "import gateways.midtrans.gateway; from gateways.registry import gateway_names; print(gateway_names())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PAYTRUST_ALLOW_DEV_SECRET": "true"},
    ).stdout
    names = ast.literal_eval(out.strip().splitlines()[-1])
    assert {"midtrans", "paypal", "sandbox", "stripe", "xendit"} <= set(names) and names == sorted(names)
