"""Tracing overhead on invoice creation: the same gunicorn + load as bench/invoice_load.py, with tracing off, on
without an exporter, and on with OTLP export, in alternating rounds of one run (paytrust/tracing.py, ADR 0055).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/paytrust_bench \\
        .venv/bin/python bench/tracing_overhead.py --seconds 15 --rounds 3 --connections 50

Modes (the environment of gunicorn):
- off:  OTEL_SDK_DISABLED=true (nothing instrumented; the `_trace` job middleware still runs).
- on:   the default: instrumented, every request and job has its trace id (in the logs, carried into jobs), but
        spans are not recorded (no exporter: sampler ALWAYS_OFF) and nothing is exported.
- otlp: tracing fully on: OTEL_EXPORTER_OTLP_ENDPOINT pointing at a local OTLP/HTTP sink started by this script
        (it answers 200 to every export and counts them), so every span is recorded and the batch span processor
        and the protobuf exporter run for real.
Every mode runs once per round, the order rotating between rounds (the machine's load drifts); the table gives
each mode's median over the rounds and its ratio to `off`, for throughput and for the CPU time gunicorn's
processes spent per request (from /proc: on a busy shared machine the steadier of the two). One fresh database for the whole run
(bench/invoice_load.py's fresh_database). Load generator: wrk if installed, else the Python client.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import invoice_load  # noqa: E402 - the sibling script, importable once bench/ is on the path

MODES = ("off", "on", "otlp")


class OtlpSink:
    """A local OTLP/HTTP endpoint: POST /v1/traces -> 200 (an empty ExportTraceServiceResponse)."""

    def __init__(self) -> None:
        self.exports = 0
        self.bytes = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.exports += 1
                sink.bytes += len(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def set_mode(mode: str, sink: OtlpSink) -> None:
    for name in ("OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        os.environ.pop(name, None)
    if mode == "off":
        os.environ["OTEL_SDK_DISABLED"] = "true"
    elif mode == "otlp":
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.url


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes of a process group (gunicorn's master and workers), from
    /proc: the work the server did, whatever else the machine was doing meanwhile."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if (
            int(fields[2]) == pgid
        ):  # after the command: state, ppid, pgrp, ...; utime and stime are 12th, 13th
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def run_once(mode: str, data: dict, args, log_dir: Path, sink: OtlpSink) -> dict:
    set_mode(mode, sink)
    server = invoice_load.Server(f"prod-{mode}", data, args.workers, args.threads, "gthread", log_dir)
    try:
        server.wait_ready()
        run = invoice_load.run_wrk if shutil.which("wrk") and not args.python else invoice_load.run_python
        run(server.url, data["key"], invoice_load.WARMUP_SECONDS, min(args.connections, 20))  # warm-up
        exports_before = sink.exports
        cpu_before = group_cpu_seconds(server.proc.pid)
        result = run(server.url, data["key"], args.seconds, args.connections)
        cpu = group_cpu_seconds(server.proc.pid) - cpu_before
        result["otlp_exports"] = sink.exports - exports_before
        result["cpu_ms_per_request"] = cpu * 1000 / max(1, result["requests"])
    finally:
        server.stop()
    result.update({"mode": mode, "load_average": os.getloadavg()[0]})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=int, default=15, help="measured seconds per run (after a 5 s warm-up)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("GUNICORN_THREADS", "4")))
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of off,on,otlp")
    parser.add_argument(
        "--python", action="store_true", help="use the Python load generator even if wrk exists"
    )
    parser.add_argument("--json", help="write every run to this file")
    args = parser.parse_args()
    modes = [mode for mode in args.modes.split(",") if mode]
    if not set(modes) <= set(MODES) or "off" not in modes:
        parser.error("--modes: a subset of off,on,otlp including off")

    os.environ["DATABASE_URL"], data = invoice_load.fresh_database("tracing")
    log_dir = Path(tempfile.mkdtemp(prefix="tracing-bench-"))
    sink = OtlpSink()
    runs = []
    try:
        for round_number in range(args.rounds):
            order = modes[round_number % len(modes) :] + modes[: round_number % len(modes)]
            for mode in order:
                result = run_once(mode, data, args, log_dir, sink)
                runs.append(result)
                print(
                    f"round {round_number + 1} {mode:<5} {result['rps']:8.1f} req/s  p50 {result['p50_ms']:7.1f}"
                    f"  p99 {result['p99_ms']:7.1f} ms  cpu {result['cpu_ms_per_request']:5.2f} ms/req"
                    f"  errors {result['errors']}  exports {result['otlp_exports']}"
                    f"  load {result['load_average']:.1f}",
                    flush=True,
                )
    finally:
        sink.close()

    print(
        f"\ninvoice creation, {args.connections} connections, {args.seconds} s per run, {args.rounds} rounds, "
        f"gunicorn gthread {args.workers}x{args.threads}, {os.cpu_count()} CPUs; generator: {runs[0]['generator']}; "
        f"logs in {log_dir}"
    )
    print(
        f"{'mode':<6} {'req/s':>8} {'vs off':>7} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11} {'vs off':>7}"
        f" {'errors':>7} {'OTLP exports':>13}"
    )
    off = [r for r in runs if r["mode"] == "off"]
    base_rps = statistics.median(r["rps"] for r in off)
    base_cpu = statistics.median(r["cpu_ms_per_request"] for r in off)
    for mode in modes:
        mine = [r for r in runs if r["mode"] == mode]
        rps = statistics.median(r["rps"] for r in mine)
        cpu = statistics.median(r["cpu_ms_per_request"] for r in mine)
        print(
            f"{mode:<6} {rps:>8.1f} {rps / base_rps:>7.2f} {statistics.median(r['p50_ms'] for r in mine):>8.1f} "
            f"{statistics.median(r['p99_ms'] for r in mine):>8.1f} {cpu:>11.2f} {cpu / base_cpu:>7.2f} "
            f"{sum(r['errors'] for r in mine):>7} {sum(r['otlp_exports'] for r in mine):>13}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
