"""A small threaded local HTTP server for faking payment gateways (bound to 127.0.0.1, port 0).

Subclasses implement `route(request) -> (status, body_bytes_or_json, headers)`. Every request is recorded.
`behaviour` makes the next requests misbehave the way real gateways do:
  "normal"   answer per protocol
  "timeout"  hold the request open until the test ends (the client's timeout fires first)
  "error500" HTTP 500 with a JSON error body
  "garbage"  HTTP 200 with a body that is not JSON
  "late"     the request takes effect (routed as normal) but its answer never comes (the client times out): a
             call whose outcome the caller cannot know
`late_requests` ({(method, path)}) does the same as "late" for those requests only.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any = None

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        value = self.header("Authorization") or ""
        scheme, _, encoded = value.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        return user, password


@dataclass
class Reply:
    status: int
    body: Any = None  # dict/list -> JSON; bytes -> as is
    headers: dict[str, str] = field(default_factory=dict)


class FakeGatewayServer:
    def __init__(self) -> None:
        self.behaviour = "normal"
        self.late_requests: set[tuple[str, str]] = set()
        self.requests: list[RecordedRequest] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # one write per response (headers + body): no Nagle/delayed-ACK stalls

            def log_message(self, *args):  # keep test output clean
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                parsed = None
                if body:
                    try:
                        parsed = json.loads(body, parse_float=Decimal)
                    except ValueError:
                        parsed = None
                request = RecordedRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers=dict(self.headers.items()),
                    body=body,
                    json=parsed,
                )
                with fake._lock:
                    fake.requests.append(request)
                reply = fake._dispatch(request)
                if reply is None:  # "timeout": no answer until the test ends; then drop the connection
                    self.close_connection = True
                    return
                payload = reply.body
                if isinstance(payload, dict | list):
                    payload = json.dumps(payload, default=str).encode()
                payload = payload or b""
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGatewayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _dispatch(self, request: RecordedRequest) -> Reply | None:
        behaviour = self.behaviour
        if behaviour == "timeout":
            self._release.wait(timeout=30)
            return None
        if behaviour == "error500":
            return Reply(500, {"error_code": "SERVER_ERROR", "message": "Internal server error"})
        if behaviour == "late" or (request.method, request.path) in self.late_requests:
            self.route(request)
            self._release.wait(timeout=30)
            return None
        if behaviour == "garbage":
            return Reply(200, b"<html>502 Bad Gateway from some proxy</html>", {"Content-Type": "text/html"})
        return self.route(request)

    def route(self, request: RecordedRequest) -> Reply:  # pragma: no cover - overridden
        return Reply(404, {"message": "not found"})
