"""The recorded gateway payloads in ../shared/gateway_samples (read, never copied into the repo)."""

from __future__ import annotations

import hashlib
import json
import os
from decimal import Decimal
from pathlib import Path

from tests.shared import SHARED_DIR

SAMPLES_DIR = Path(os.environ.get("PAYTRUST_GATEWAY_SAMPLES") or SHARED_DIR / "gateway_samples")


def sample_bytes(name: str) -> bytes:
    return (SAMPLES_DIR / name).read_bytes()


def sample(name: str) -> dict:
    return json.loads(sample_bytes(name), parse_float=Decimal)


def midtrans_signature(*, order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    """Computed here independently of the adapter: SHA512(order_id + status_code + gross_amount + server_key)."""
    return hashlib.sha512((order_id + status_code + gross_amount + server_key).encode()).hexdigest()


def midtrans_resign(payload: dict, *, server_key: str, **changes) -> dict:
    """A Midtrans notification with `changes` applied and signature_key recomputed with our test server key.

    The published samples were signed with Midtrans' unpublished keys, so they cannot be verified as is.
    """
    data = {**payload, **changes}
    data["signature_key"] = midtrans_signature(
        order_id=data["order_id"],
        status_code=data["status_code"],
        gross_amount=data["gross_amount"],
        server_key=server_key,
    )
    return data


def to_body(data: dict) -> bytes:
    return json.dumps(data, default=str).encode()
