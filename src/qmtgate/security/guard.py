"""The gate every request passes before routing: key in the URL, lockout, authentication, rate limits.

One :class:`SecurityGuard` per app (``app.state.security``), used by the pure-ASGI
:class:`~qmtgate.api.middleware.SecurityMiddleware` for HTTP requests and WebSocket handshakes, and by the
streaming route for keys sent in a WebSocket's first message. Scopes are checked later, per route, by the
dependencies in :mod:`qmtgate.security.deps`; the guard only establishes *who* is calling.

Order of checks (each refusal is the error envelope):

0. a ``Host`` name the gateway does not serve -> 400 ``host_not_allowed``; a browser page of another origin
   -> 403 ``origin_not_allowed`` (always, even with auth off; :mod:`qmtgate.security.origin`);
1. a key-like parameter in the query string (``api_key``, ``key``, ``token``, ...) -> 400 ``key_in_url``
   (always, even with auth off: the key has already leaked into logs and proxies; the client must stop);
2. auth off, or an exempt path (liveness; docs and metrics when configured public) -> pass;
3. the address is locked out -> 429 ``locked_out`` with Retry-After;
4. no key -> 401 ``unauthorized`` (WebSockets may instead authenticate in their first message);
   a wrong or revoked key -> 401, and counts towards a lockout (a good key in between does not reset the
   count: bad keys are counted within ``auth.lockout_window``); requests without a valid key take from
   their address's ``unauthenticated`` bucket first, so a keyless flood gets 429 ``rate_limited``;
5. the key's bucket, then the address's bucket, is empty -> 429 ``rate_limited`` with Retry-After;
6. the API docs (``/docs``, ``/redoc``, ``/openapi.json``) with a key lacking ``read`` -> 403 ``forbidden``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from qmtgate.config import ApiKeySettings, Settings
from qmtgate.errors import ErrorCode
from qmtgate.security.keys import KeyStore
from qmtgate.security.lockout import Lockout
from qmtgate.security.origin import HostOriginPolicy, request_headers
from qmtgate.security.ratelimit import RateLimiter, retry_after_header

logger = logging.getLogger(__name__)

LIVENESS_PATH = "/api/v1/health/live"
DOCS_PATHS = frozenset(
    {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/"}
    # the offline Swagger UI / ReDoc assets (api/docs_ui.py)
    | {
        f"/docs/assets/{name}"
        for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
    }
)
METRICS_PATH = "/metrics"
#: Query parameters that look like credentials; a request carrying one is refused.
URL_KEY_PARAMS = frozenset(
    {"api_key", "apikey", "api-key", "x-api-key", "x_api_key", "key", "token", "access_token", "auth"}
)
_URL_KEY_HINTS = (b"key", b"token", b"auth")
#: Where the key record is kept in the ASGI scope (``request.state.api_key``).
STATE_KEY = "api_key"
#: Set in the ASGI scope state for a WebSocket that must authenticate in its first message.
STATE_WS_PENDING = "auth_pending"
#: Which scopes a scope implies; admin is everything but trading.
IMPLIED: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "stream": frozenset({"stream"}),
    "admin": frozenset({"admin", "read", "stream"}),
    "trade": frozenset({"trade"}),
}


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused, ready to become the error envelope."""

    status: int
    code: ErrorCode
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] | None = None


def has_scope(record: ApiKeySettings, scope: str) -> bool:
    return any(scope in IMPLIED.get(s, frozenset()) for s in record.scopes)


def header_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key from ``X-API-Key`` or ``Authorization: Bearer``; None when neither is sent."""
    for name, value in headers:
        if name == b"x-api-key":
            return value.decode("latin-1").strip() or None
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def url_key_params(query_string: bytes) -> list[str]:
    """Names of credential-like parameters in a raw query string (cheap when there are none)."""
    if not query_string:
        return []
    lowered = query_string.lower()
    if not any(hint in lowered for hint in _URL_KEY_HINTS):
        return []
    names = {name.lower() for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)}
    return sorted(names & URL_KEY_PARAMS)


class SecurityGuard:
    """Authentication, lockout and rate limits for one app (see the module docstring)."""

    def __init__(self, settings: Settings, *, on_event: Callable[[str, str], None] | None = None) -> None:
        auth = settings.auth
        self.active = auth.active
        self.store = KeyStore(auth.keys, auth.keys_file) if self.active else KeyStore()
        self.lockout = Lockout(auth.lockout_failures, auth.lockout_window, auth.lockout_seconds)
        limits = settings.rate_limit
        self.per_key = RateLimiter(limits.per_key_rate, limits.per_key_burst)
        self.per_address = RateLimiter(limits.per_address_rate, limits.per_address_burst)
        self.unauthenticated = RateLimiter(limits.unauthenticated_rate, limits.unauthenticated_burst)
        #: cost units (rows or codes an answer covers) per key: qmtgate.security.budget
        self.cost = RateLimiter(limits.cost_rate, limits.cost_burst)
        exempt = {LIVENESS_PATH}
        if auth.public_docs:
            exempt |= DOCS_PATHS
        if settings.metrics.public:
            exempt.add(METRICS_PATH)
        self.exempt = frozenset(exempt)
        self.browsers = HostOriginPolicy.from_settings(settings)
        #: ``on_event(kind, reason)`` for metrics: ("auth_failure", reason) / ("rate_limited", which)
        self.on_event = on_event or (lambda kind, reason: None)

    # -- HTTP requests and WebSocket handshakes --------------------------------------------------------

    def admit(self, scope: dict[str, Any]) -> Refusal | None:
        """Check one request; on success the key record (or None with auth off) is in the scope state."""
        refusal = self._browser_refusal(scope)
        if refusal is not None:
            return refusal
        names = url_key_params(scope.get("query_string", b""))
        if names:
            self.on_event("auth_failure", "key_in_url")
            return Refusal(
                400,
                ErrorCode.KEY_IN_URL,
                "API keys are accepted only in the X-API-Key or Authorization: Bearer header, never in the "
                "URL; this key may have leaked into logs: revoke it and create a new one",
                details={"params": names},
            )
        if not self.active or scope.get("path") in self.exempt:
            return None
        address = scope_address(scope)
        token = header_key(scope.get("headers", []))
        if token is None and scope["type"] == "websocket":
            # allowed to authenticate with its first message ({"op": "auth", "key": ...})
            locked = self.lockout.locked_for(address)
            if locked:
                return self._locked(locked)
            limited = self._unauthenticated(address)
            if limited is not None:
                return limited
            scope.setdefault("state", {})[STATE_WS_PENDING] = True
            return None
        result = self.authenticate(token, address)
        if isinstance(result, Refusal):
            return result
        scope.setdefault("state", {})[STATE_KEY] = result
        limited = self.limit(result, address)
        if limited is None and scope.get("path") in DOCS_PATHS and not has_scope(result, "read"):
            self.on_event("auth_failure", "forbidden")
            return Refusal(
                403,
                ErrorCode.FORBIDDEN,
                "this API key lacks the 'read' scope the API docs need",
                details={"required": "read", "scopes": list(result.scopes), "key_id": result.id},
            )
        return limited

    def _browser_refusal(self, scope: dict[str, Any]) -> Refusal | None:
        host, origin = request_headers(scope.get("headers", ()))
        if not self.browsers.host_allowed(host):
            self.on_event("auth_failure", "host_not_allowed")
            return Refusal(
                400,
                ErrorCode.HOST_NOT_ALLOWED,
                "this gateway does not serve that host name; use localhost or 127.0.0.1, or add the name to "
                "web.allowed_hosts",
                details={"host": host},
            )
        if not self.browsers.origin_allowed(origin, host):
            self.on_event("auth_failure", "origin_not_allowed")
            return Refusal(
                403,
                ErrorCode.ORIGIN_NOT_ALLOWED,
                "requests from this web page's origin are refused; add it to web.allowed_origins to allow it",
                details={"origin": origin},
            )
        return None

    def authenticate(self, token: str | None, address: str) -> ApiKeySettings | Refusal:
        """The key record for ``token`` from ``address``, or why not (lockout bookkeeping included)."""
        locked = self.lockout.locked_for(address)
        if locked:
            return self._locked(locked)
        if token is None:
            limited = self._unauthenticated(address)
            if limited is not None:
                return limited
            self.on_event("auth_failure", "missing")
            return Refusal(
                401,
                ErrorCode.UNAUTHORIZED,
                "an API key is required: send it in the X-API-Key header or as Authorization: Bearer <key>",
                {"WWW-Authenticate": 'Bearer realm="qmtgate"'},
            )
        record = self.store.authenticate(token)
        if record is None:
            limited = self._unauthenticated(address)
            if limited is not None:
                return limited
            self.on_event("auth_failure", "invalid")
            if self.lockout.failure(address):
                logger.warning(
                    "locking out %s for %g s after repeated bad API keys", address, self.lockout.duration
                )
            return Refusal(
                401,
                ErrorCode.UNAUTHORIZED,
                "invalid or revoked API key",
                {"WWW-Authenticate": 'Bearer realm="qmtgate", error="invalid_token"'},
            )
        # no lockout.success(address): a good key must not wipe the count of bad ones (9 bad + 1 good,
        # repeated, would never lock); bad keys expire from the count after lockout_window instead
        return record

    def limit(self, record: ApiKeySettings, address: str) -> Refusal | None:
        """Take a token from the key's bucket and the address's bucket."""
        wait = self.per_key.take(record.id, record.rate, record.burst)
        which = "key"
        if not wait:
            wait = self.per_address.take(address)
            which = "address"
        if not wait:
            return None
        self.on_event("rate_limited", which)
        return Refusal(
            429,
            ErrorCode.RATE_LIMITED,
            f"rate limit of this {which} exceeded; retry after the Retry-After delay",
            {"Retry-After": retry_after_header(wait)},
            {"limit": which, "retry_after_seconds": round(wait, 3)},
        )

    def _unauthenticated(self, address: str) -> Refusal | None:
        """429 when ``address`` sends requests without a valid key faster than ``unauthenticated_rate``."""
        wait = self.unauthenticated.take(address)
        if not wait:
            return None
        self.on_event("rate_limited", "unauthenticated")
        return Refusal(
            429,
            ErrorCode.RATE_LIMITED,
            "too many requests without a valid API key from this address; retry after the Retry-After delay",
            {"Retry-After": retry_after_header(wait)},
            {"limit": "unauthenticated", "retry_after_seconds": round(wait, 3)},
        )

    def _locked(self, seconds: float) -> Refusal:
        self.on_event("auth_failure", "locked_out")
        return Refusal(
            429,
            ErrorCode.LOCKED_OUT,
            "too many invalid API keys from this address; temporarily locked out",
            {"Retry-After": retry_after_header(seconds)},
            {"retry_after_seconds": round(seconds, 1)},
        )


def scope_address(scope: dict[str, Any]) -> str:
    """The client address the guard uses (the TCP peer; proxies' forwarding headers are not trusted)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
