"""One registered Redis Lua script per (settings.REDIS_URL, script), bound to a client configured once for the whole
project: 1 s connect and read timeouts, so a Redis that hangs fails fast and the caller falls back (the API rate
limiter to its PostgreSQL store, the risk check to "flagged, score 50"). Used by apikeys/ratelimit.py and
risk/velocity.py."""

from __future__ import annotations

import threading

from django.conf import settings

_lock = threading.Lock()
_scripts: dict[tuple[str, str], object] = {}


def redis_script(source: str):
    """The redis-py Script for `source` on a client for the current settings.REDIS_URL (made once per process)."""
    key = (settings.REDIS_URL, source)
    script = _scripts.get(key)
    if script is None:
        with _lock:
            script = _scripts.get(key)
            if script is None:
                import redis

                client = redis.Redis.from_url(key[0], socket_timeout=1.0, socket_connect_timeout=1.0)
                script = _scripts[key] = client.register_script(source)
    return script
