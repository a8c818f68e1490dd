"""Where outbound webhooks may go (SSRF guard), checked at registration AND right before every attempt.

- live mode: `https://` only; every address the host resolves to must be a public unicast address
  (no private, loopback, link-local, multicast, reserved, shared/CGNAT or unspecified address).
- test mode: the same, except that `http://` and loopback addresses are allowed when the URL's host is literally
  `localhost`, `127.0.0.1` or `::1` (settings.OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE, off by default, on in
  `make run`/`make test`) so a developer can point an endpoint at a local receiver. Any other name or address
  that resolves to loopback (127.1.2.3, a DNS name pointing at 127.0.0.1) is refused in every mode.
At delivery time the request is sent to the resolved and checked IP (Host header and TLS SNI/certificate check
keep the URL's hostname), so a DNS answer that changes between the check and the connect cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from paytrust.errors import ValidationError

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_URL_LENGTH = 2048


class DestinationRefused(Exception):
    """The URL may not receive webhooks (bad scheme, or resolves to a refused address)."""

    def __init__(self, message: str, *, code: str = "url_invalid") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str  # as in the URL (used for the Host header, SNI and certificate check)
    port: int
    path: str  # path + query, what goes on the request line
    address: str  # the checked IP to connect to


def _loopback_allowed(mode: str) -> bool:
    return mode == "test" and settings.OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE


def address_allowed(address: str, *, mode: str, host: str | None = None) -> bool:
    """May a webhook be sent to `address`? Loopback only for the literal local host names in test mode."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour is not None:
        ip = ip.sixtofour  # 2002::/16 wraps an IPv4 address: judge the wrapped one
    if ip.is_loopback:
        return host in LOOPBACK_HOSTS and _loopback_allowed(mode)
    refused = ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    if isinstance(ip, ipaddress.IPv6Address):
        refused = refused or ip.is_site_local
    if refused:
        return False
    return ip.is_global


def _parse(url: str, *, mode: str) -> tuple[str, str, int, str]:
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise DestinationRefused(f"url must be an absolute URL of at most {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise DestinationRefused("url is not a valid URL.")
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not host or scheme not in ("http", "https"):
        raise DestinationRefused("url must be an absolute https:// URL.")
    if parts.username or parts.password:
        raise DestinationRefused("url must not contain credentials.")
    if parts.fragment:
        raise DestinationRefused("url must not contain a fragment.")
    if scheme == "http" and not (host in LOOPBACK_HOSTS and _loopback_allowed(mode)):
        raise DestinationRefused(
            "url must use https (http is allowed only for localhost in test mode).", code="url_insecure"
        )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port or (443 if scheme == "https" else 80), path


def _resolve(host: str, port: int) -> list[str]:
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise DestinationRefused(f"the host {host!r} of url does not resolve.", code="url_unresolvable")
    return list(dict.fromkeys(info[4][0] for info in infos))


def destination_resolve(url: str, *, mode: str) -> Destination:
    """Parse, resolve and check `url`; every resolved address must be allowed. Raises DestinationRefused."""
    scheme, host, port, path = _parse(url, mode=mode)
    addresses = _resolve(host, port)
    refused = [a for a in addresses if not address_allowed(a, mode=mode, host=host)]
    if refused or not addresses:
        raise DestinationRefused(
            "url resolves to an address that may not receive webhooks (private, loopback, link-local, "
            "multicast or reserved).",
            code="url_forbidden",
        )
    return Destination(scheme=scheme, host=host, port=port, path=path, address=addresses[0])


def endpoint_url_validate(url: str, *, mode: str) -> str:
    """Registration-time check for the API/admin: the URL, normalised, or a 400 with `param="url"`."""
    try:
        destination_resolve(url, mode=mode)
    except DestinationRefused as exc:
        raise ValidationError(str(exc), code=exc.code, param="url")
    return url
