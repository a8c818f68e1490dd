"""Structured JSON logs carrying the request context (request id, merchant, route) and the trace (`trace_id`,
`span_id`: the OpenTelemetry trace of the request or job the line was written in, paytrust/tracing.py).

Secrets never reach the log: extra fields whose name looks sensitive are replaced by "[redacted]", and anything
shaped like a PayTrust API key has its secret part masked, in the message and in string fields alike.
"""

import contextvars
import functools
import json
import logging
import re
from datetime import UTC, datetime

from paytrust import jsonenc
from paytrust.tracing import current_trace_ids

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
merchant_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("merchant_id", default=None)

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_SENSITIVE_NAME = re.compile(
    r"(authorization|password|passwd|secret|api_?key|token|credential|card_?number|cvv|cvc|(?:^|_)pan)$", re.I
)
_API_KEY = re.compile(r"\b(pt_(?:test|live)_[A-Za-z0-9]{12})_[A-Za-z0-9]{32}\b")


def scrub(text: str) -> str:
    """Mask the secret part of API keys in free text."""
    return _API_KEY.sub(r"\1_[redacted]", text) if "pt_" in text else text


@functools.lru_cache(maxsize=1024)
def _sensitive_name(key: str) -> bool:
    return _SENSITIVE_NAME.search(key) is not None


def _scrub_value(key: str, value):
    if _sensitive_name(key):
        return "[redacted]"
    if isinstance(value, str):
        return scrub(value)
    return value


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        if not getattr(record, "merchant_id", None):
            record.merchant_id = merchant_var.get()
        if not getattr(record, "trace_id", None):  # the OpenTelemetry trace of the request or job, if any
            record.trace_id, record.span_id = current_trace_ids()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and key not in payload and not key.startswith("_"):
                payload[key] = _scrub_value(key, value)
        if record.exc_info:
            payload["exc"] = scrub(self.formatException(record.exc_info))
        return jsonenc.dumps(payload, default=str, fallback=_stdlib, ascii_only=True).decode()


def _stdlib(payload) -> bytes:
    return json.dumps(payload, default=str).encode()
