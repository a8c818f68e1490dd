"""A load generator for the cluster tests: N threads, each on its own keep-alive HTTP connection (http.client), as
fast as the server answers. Every request's outcome is kept: its start and end (monotonic), its status or the
connection-level error, and the headers the tests look at."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Outcome:
    started: float
    ended: float
    status: int | None  # None: the connection failed (the error says how)
    error: str | None
    request_id: str
    retry_after: str | None


class Load:
    def __init__(self, base_url: str, *, connections: int, request, keepalive: bool = True) -> None:
        """`request(n) -> (method, path, headers, body_dict_or_None)` makes the n-th request of a thread.

        keepalive=False: a new connection per request (`Connection: close`). The restart tests use it: an nginx
        reload closes the idle keep-alive connections of its old workers, and a request a client writes into
        one at that moment is lost before nginx reads it (a client-side keep-alive race any HTTP client has to
        retry, whatever the server does), which says nothing about the instances behind nginx."""
        self.keepalive = keepalive
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.connections = connections
        self.request = request
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self.connections)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self) -> None:
        conn = None
        n = 0
        while not self._stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            method, path, headers, body = self.request(n)
            n += 1
            request_id = f"load-{uuid.uuid4().hex}"
            headers = {"X-Request-Id": request_id, **headers}
            if not self.keepalive:
                headers["Connection"] = "close"
            payload = json.dumps(body).encode() if body is not None else None
            if payload is not None:
                headers.setdefault("Content-Type", "application/json")
            started = time.monotonic()
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                response.read()
                outcome = Outcome(
                    started,
                    time.monotonic(),
                    response.status,
                    None,
                    request_id,
                    response.getheader("Retry-After"),
                )
                if not self.keepalive or response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                outcome = Outcome(started, time.monotonic(), None, type(exc).__name__, request_id, None)
                conn.close()
                conn = None
            with self._lock:
                self.outcomes.append(outcome)

    def statuses(self, since: float = float("-inf"), until: float = float("inf")) -> Counter:
        return Counter(o.status or o.error for o in self.outcomes if since <= o.started <= until)
