"""Host and Origin checks: what a web browser on the trader's PC may reach (docs/security.md).

With auth off (the default) the gateway trusts whoever reaches its loopback port. A web page cannot connect
there by itself, but two browser tricks can:

- **DNS rebinding**: a page from ``http://rebind.evil.example:8000`` has its name re-resolved to
  127.0.0.1; the browser then treats the gateway as same-origin with the page and lets it read answers.
  The request still says ``Host: rebind.evil.example:8000``, so refusing names the gateway does not serve
  stops it. Bound to loopback, only ``localhost`` (and ``*.localhost``), loopback addresses and the names in
  ``web.allowed_hosts`` are served. Bound to another address, a LAN client may use any name or address
  unless ``web.allowed_hosts`` is set (then those, loopback names and IP literals: an IP literal cannot be
  rebound).
- **Cross-origin WebSockets**: browsers apply no same-origin policy to WebSockets; any page can open
  ``ws://127.0.0.1:8000/api/v1/ws`` and read the stream. Browsers always send ``Origin``; a request whose
  ``Origin`` is neither the gateway itself (same host and port as ``Host``) nor in ``web.allowed_origins`` is
  refused, WebSocket handshakes and HTTP requests alike. Clients that are not browsers send no ``Origin``
  and are not affected.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from qmtgate.config import Settings
from qmtgate.security.policy import is_loopback


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def host_name(value: str) -> str:
    """The name or address of a ``Host`` header value (``[::1]:8000`` -> ``::1``), lower case, no port."""
    value = value.strip().lower()
    if value.startswith("["):  # [v6]:port
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def _normalize_origin(origin: str) -> str:
    return origin.strip().lower().rstrip("/")


class HostOriginPolicy:
    """Decides whether a request's ``Host`` and ``Origin`` headers may be served (module docstring)."""

    def __init__(self, bind_host: str, allowed_hosts: Iterable[str], allowed_origins: Iterable[str]) -> None:
        hosts = {host_name(h) for h in allowed_hosts if h.strip()}
        self.any_host = "*" in hosts or (not is_loopback(bind_host) and not hosts)
        self.loopback_bind = is_loopback(bind_host)
        self.hosts = frozenset(hosts - {"*"})
        origins = {_normalize_origin(o) for o in allowed_origins if o.strip()}
        self.any_origin = "*" in origins
        self.origins = frozenset(origins - {"*"})

    @classmethod
    def from_settings(cls, settings: Settings) -> HostOriginPolicy:
        return cls(settings.host, settings.web.allowed_hosts, settings.web.allowed_origins)

    def host_allowed(self, host: str | None) -> bool:
        """True for a ``Host`` this gateway serves; a request without one (HTTP/1.0, not a browser) passes."""
        if host is None or self.any_host:
            return True
        name = host_name(host)
        if name == "localhost" or name.endswith(".localhost") or name in self.hosts:
            return True
        address = _ip(name)
        if address is None:
            return False
        return address.is_loopback or not self.loopback_bind

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """True without ``Origin`` (not a browser), for the gateway's own pages and for allowed origins."""
        if origin is None or self.any_origin:
            return True
        normalized = _normalize_origin(origin)
        if normalized in self.origins:
            return True
        scheme, sep, netloc = normalized.partition("://")
        if not sep or scheme not in ("http", "https") or host is None:
            return False  # "null" (sandboxed frames, files) or something odd
        return netloc == host.strip().lower()


def request_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """``(Host, Origin)`` of an ASGI header list (None when absent)."""
    host = origin = None
    for name, value in headers:
        if name == b"host":
            host = value.decode("latin-1")
        elif name == b"origin":
            origin = value.decode("latin-1")
    return host, origin
