"""Where tracing's CPU goes, in one process: N invoice creations through Django's test client, under cProfile, and
the share of the profiled time spent inside OpenTelemetry's own code (exclusive time of its functions). A ratio
within one run, so it holds up on a busy machine better than wall-clock or CPU totals do.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/paytrust_bench_tracing \\
        .venv/bin/python bench/tracing_profile.py on     # off | on (trace ids only) | rec (every span recorded)

The database is one bench/tracing_overhead.py prepared (its "Invoice bench" merchant and xendit account).
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEASURED = 300


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "on"
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paytrust.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if mode == "off":
        os.environ["OTEL_SDK_DISABLED"] = "true"
    from paytrust.tracing import configure

    if (
        mode == "rec"
    ):  # recorded, batched, kept in memory (no protobuf/HTTP: that runs in the exporter's thread)
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        configure(span_processor=BatchSpanProcessor(InMemorySpanExporter()))
    else:
        configure()
    import django

    django.setup()
    from django.test import Client

    from apikeys.services import Actor, api_key_create
    from merchants.models import Merchant

    merchant = Merchant.objects.get(name="Invoice bench")
    _, key = api_key_create(merchant=merchant, mode="test", actor=Actor.system(), name="profile", scopes=[])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = {
        "currency": "IDR",
        "gateway": "xendit",
        "customer": {"name": "Budi Santoso", "email": "budi@example.com", "phone": "+628111111111"},
        "line_items": [
            {"name": "Widget", "quantity": 2, "unit_price": "150000", "tax_rate": "0.11"},
            {"name": "Gadget", "quantity": 1, "unit_price": "99999", "tax_rate": "0"},
        ],
        "installments": {"count": 3},
    }

    def create(i: int) -> None:
        unique = f"prof-{mode}-{i}-{time.time_ns()}"
        response = client.post(
            "/v1/invoices",
            json.dumps({**body, "external_id": unique}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=unique,
        )
        assert response.status_code == 201, response.content

    for i in range(30):  # warm-up: key verification, prepared statements
        create(i)
    profile = cProfile.Profile()
    cpu = time.process_time()
    profile.enable()
    for i in range(MEASURED):
        create(i)
    profile.disable()
    cpu = time.process_time() - cpu
    stats = pstats.Stats(profile)
    otel = sum(
        own
        for (filename, _line, _name), (_cc, _nc, own, _cum, _callers) in stats.stats.items()
        if "opentelemetry" in filename or "/wrapt/" in filename or filename.endswith("paytrust/tracing.py")
    )
    print(
        f"{mode}: {cpu / MEASURED * 1000:.2f} ms CPU per request under the profiler; "
        f"OpenTelemetry's own code {otel / stats.total_tt * 100:.1f} % of the profiled time"
    )


if __name__ == "__main__":
    main()
