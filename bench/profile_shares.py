"""Where the time goes, from py-spy's collapsed stacks (`bench/invoice_load.py --py-spy DIR` writes them): each
sample is put in ONE bucket, that of the frame nearest the leaf that belongs to a bucket (so psycopg under the
idempotency claim counts as SQL, the idempotency module's own Python as idempotency, the ORM's model code under
the invoice service as the service). Generic library code (json, re, decimal, the ORM's models, contextlib...)
has no bucket of its own: it counts for the first bucketed frame above it (json.dumps under the log formatter is
logging, under the renderer rendering). Prints these shares, and beside them the inclusive ones (samples with
the bucket's code anywhere in the stack: e.g. idempotency with its SQL); `--svg FILE` also writes a small flame graph (frames
under `--min-share` of the samples are dropped, which keeps the file small).

    .venv/bin/python bench/profile_shares.py /tmp/spy/prod-gthread-*.txt --svg bench/profiles/gthread.svg
"""

from __future__ import annotations

import argparse
import collections
import html
import re
import zlib
from pathlib import Path

# (bucket, path fragments), checked in this order for each frame; the first frame from the leaf that matches wins.
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("SQL (psycopg, Django's DB backend)", ("/psycopg/", "/psycopg_pool/", "/django/db/backends/", "/django/db/transaction.py", "/django/db/utils.py", "/django/utils/connection.py")),
    ("tracing (OpenTelemetry)", ("/opentelemetry/", "/wrapt/", "/paytrust/tracing.py")),
    ("JSON logging", ("/logging/__init__.py", "/paytrust/logs.py")),
    ("Prometheus multiprocess files", ("/prometheus_client/", "/paytrust/metrics.py")),
    ("rendering (response body)", ("/rest_framework/renderers.py", "/rest_framework/response.py", "/rest_framework/utils/encoders.py", "/invoices/render.py", "/invoices/selectors.py")),
    ("idempotency", ("/apikeys/idempotency.py",)),
    ("rate limiting", ("/apikeys/ratelimit.py", "/merchants/selectors.py", "/paytrust/redis_scripts.py")),
    ("auth (API key, permissions)", ("/apikeys/authentication.py", "/apikeys/selectors.py", "/apikeys/permissions.py", "/apikeys/cache.py", "/argon2/")),
    ("validation (parsing, serializers, money)", ("/rest_framework/parsers.py", "/paytrust/parsers.py", "/rest_framework/serializers.py", "/rest_framework/fields.py", "/paytrust/serializers.py", "/invoices/serializers.py", "/invoices/services/_inputs.py", "/invoices/calc.py", "/paytrust/money.py", "/rest_framework/relations.py")),
    ("invoice service (rows, ids, event; ORM model code)", ("/invoices/services/", "/paytrust/sql.py", "/paytrust/ids.py", "/webhooks/outbound/", "/gateways/selectors.py", "/payments/api.py")),
    ("middleware", ("/paytrust/middleware.py", "/django/middleware/", "/django/contrib/sessions/", "/django/contrib/auth/middleware.py", "/django/contrib/messages/", "/django/utils/deprecation.py")),
    ("Django/DRF request handling (handler, URL resolver, request, view dispatch)", ("/django/core/handlers/", "/django/urls/", "/django/http/", "/rest_framework/views.py", "/rest_framework/viewsets.py", "/rest_framework/request.py", "/rest_framework/negotiation.py", "/rest_framework/versioning.py", "/apikeys/viewsets.py", "/django/core/signals.py", "/django/dispatch/")),
    ("gunicorn (HTTP parsing, worker loop)", ("/gunicorn/",)),
]  # fmt: skip
OTHER = "other (interpreter start-up, threads, GC, unattributed)"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*):(?P<line>\d+)\)$")


def bucket_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        match = _FRAME.match(frame)
        path = match["file"] if match else frame
        for name, fragments in BUCKETS:
            if any(fragment in path for fragment in fragments):
                return name
    return OTHER


def read(paths: list[str]) -> list[tuple[list[str], int]]:
    samples = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if not line.strip():
                continue
            stack, count = line.rsplit(" ", 1)
            frames = [f for f in stack.split(";") if not f.startswith("process ")]
            samples.append((frames, int(count)))
    return samples


def shares(samples) -> list[tuple[str, int]]:
    totals: collections.Counter[str] = collections.Counter()
    for frames, count in samples:
        totals[bucket_of(frames)] += count
    return totals.most_common()


def inclusive(samples) -> list[tuple[str, int]]:
    """Samples with at least one frame of the bucket anywhere in the stack (a stage with what it calls, its SQL
    included; the buckets overlap, so these do not add up)."""
    totals: collections.Counter[str] = collections.Counter()
    for frames, count in samples:
        seen = set()
        for frame in frames:
            match = _FRAME.match(frame)
            path = match["file"] if match else frame
            for name, fragments in BUCKETS:
                if any(fragment in path for fragment in fragments):
                    seen.add(name)
        for name in seen:
            totals[name] += count
    return totals.most_common()


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("/site-packages/", "/lib/python3.11/", "/wt-perf/", "/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path}:{match['line']})"


def write_svg(samples, out: Path, min_share: float, title: str) -> None:
    """A plain flame graph: root at the bottom, each frame as wide as its samples, hover shows name and share."""
    tree: dict = {"n": 0, "kids": {}}
    for frames, count in samples:
        node = tree
        node["n"] += count
        for frame in frames:
            node = node["kids"].setdefault(_short(frame), {"n": 0, "kids": {}})
            node["n"] += count
    total = tree["n"] or 1
    width, row = 1200.0, 16
    rects: list[str] = []
    depth_max = [0]

    def walk(node: dict, x: float, depth: int) -> None:
        for name, kid in sorted(node["kids"].items()):
            share = kid["n"] / total
            w = share * width
            if share >= min_share:
                depth_max[0] = max(depth_max[0], depth)
                label = html.escape(name)
                hue = 20 + zlib.crc32(name.split(" (")[-1].split("/")[0].encode()) % 40
                text = html.escape(name[: int(w / 7)]) if w > 30 else ""
                rects.append(
                    f"<g><title>{label} {kid['n']} samples ({share * 100:.1f} %)</title>"
                    f'<rect x="{x:.1f}" y="{{y{depth}}}" width="{w:.1f}" height="{row - 1}" '
                    f'fill="hsl({hue},85%,60%)"/><text x="{x + 2:.1f}" y="{{t{depth}}}">{text}</text></g>'
                )
                walk(kid, x, depth + 1)
            x += w

    walk(tree, 0.0, 0)
    height = (depth_max[0] + 2) * row + 30
    body = "\n".join(rects)
    for depth in range(depth_max[0] + 1):
        y = height - (depth + 1) * row - 4
        body = body.replace(f"{{y{depth}}}", str(y)).replace(f"{{t{depth}}}", str(y + row - 4))
    out.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
        f'font-family="monospace" font-size="11">\n<text x="4" y="16" font-size="13">{html.escape(title)} '
        f"({total} samples; frames under {min_share * 100:g} % dropped)</text>\n{body}\n</svg>\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", help="py-spy --format raw outputs (collapsed stacks)")
    parser.add_argument("--svg", type=Path, help="write a flame graph here")
    parser.add_argument("--min-share", type=float, default=0.005)
    parser.add_argument("--title", default="invoice creation under load (py-spy --gil, Python frames)")
    args = parser.parse_args()
    samples = read(args.files)
    total = sum(count for _, count in samples)
    print(f"{total} samples")
    inclusive_shares = dict(inclusive(samples))
    print("exclusive  inclusive  bucket")
    for name, count in shares(samples):
        print(
            f"{count / total * 100:7.1f} %  {inclusive_shares.get(name, count) / total * 100:7.1f} %  {name}"
        )
    if args.svg:
        args.svg.parent.mkdir(parents=True, exist_ok=True)
        write_svg(samples, args.svg, args.min_share, args.title)
        print(f"flame graph: {args.svg} ({args.svg.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
