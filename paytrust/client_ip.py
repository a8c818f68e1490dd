"""The client's address for rate limits and the audit log: REMOTE_ADDR, or, when the request came through one of
our own proxies (settings.TRUSTED_PROXIES, CIDRs), the address the proxies recorded in X-Forwarded-For.

X-Forwarded-For is read from the right: each trusted proxy appends the address it received the request from, so
the right-most entry that is not one of our proxies is the client. Entries left of it were written by the client
itself and are never trusted. Without TRUSTED_PROXIES the header is ignored (a client could otherwise pick the
address its failed logins are counted against).
"""

from __future__ import annotations

import ipaddress
from functools import cache

from django.conf import settings


@cache
def _trusted(networks: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(
        ipaddress.ip_network(network.strip(), strict=False) for network in networks if network.strip()
    )


def _is_trusted(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR") or None
    networks = _trusted(tuple(settings.TRUSTED_PROXIES))
    if remote is None or not networks or not _is_trusted(remote, networks):
        return remote
    forwarded = [
        part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()
    ]
    for address in reversed(forwarded):
        if not _is_trusted(address, networks):
            try:
                return str(ipaddress.ip_address(address))
            except ValueError:
                return remote  # garbage where the client's address should be: count it against the proxy
    return remote
