"""Pure-ASGI middleware (no BaseHTTPMiddleware: it buffers streaming bodies and costs a task per request)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qmtgate.api.encoding import SOURCE_HEADER
from qmtgate.api.responses import OrjsonResponse
from qmtgate.errors import error_body
from qmtgate.ops.logs import ACCESS_LOGGER
from qmtgate.ops.metrics import GatewayMetrics
from qmtgate.security.budget import Budget, bind, unbind
from qmtgate.security.guard import STATE_KEY, SecurityGuard
from qmtgate.security.refusal_log import RefusalSampler


class SourceHeaderMiddleware:
    """Add ``X-QMTGate-Source`` to every HTTP answer, errors included, unless the route already set it."""

    def __init__(self, app: ASGIApp, source_name: Callable[[], str | None]) -> None:
        self.app = app
        self.source_name = source_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                name = self.source_name()
                if name:
                    headers = MutableHeaders(scope=message)
                    if SOURCE_HEADER not in headers:
                        headers.append(SOURCE_HEADER, name)
            await send(message)

        await self.app(scope, receive, send_with_header)


class ServerTimingMiddleware:
    """Add ``Server-Timing: app;dur=<ms>``: time from receiving the request to sending the response head.

    Routes render their whole body before the head goes out, so this covers the work and the encoding.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - started) * 1000
                MutableHeaders(scope=message).append("Server-Timing", f"app;dur={elapsed:.2f}")
            await send(message)

        await self.app(scope, receive, send_with_timing)


# -- security and observability --------------------------------------------------------------------------

_REQUEST_ID_OK = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
access_logger = logging.getLogger(ACCESS_LOGGER)


class SecurityMiddleware:
    """Run :meth:`SecurityGuard.admit` before routing; refusals become the error envelope.

    For a WebSocket handshake the refusal is sent as an HTTP response when the server supports the
    ``websocket.http.response`` extension (uvicorn does), else the handshake is closed (HTTP 403).
    """

    def __init__(self, app: ASGIApp, guard: SecurityGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self.guard.admit(scope)  # type: ignore[arg-type]
        if refusal is None:
            record = scope.get("state", {}).get(STATE_KEY)
            if record is None or scope["type"] != "http":  # WebSockets count codes per subscription
                await self.app(scope, receive, send)
                return
            # the caller's code quota and cost bucket, for the routes' charge() (security/budget.py)
            token = bind(Budget(record, self.guard.cost, self.guard.on_event))
            try:
                await self.app(scope, receive, send)
            finally:
                unbind(token)
            return
        response = OrjsonResponse(
            error_body(refusal.code, refusal.message, refusal.details),
            status_code=refusal.status,
            headers=refusal.headers or None,
        )
        if scope["type"] == "http" or "websocket.http.response" in scope.get("extensions", {}):
            await response(scope, receive, send)
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": refusal.code.value})


class AccessMiddleware:
    """Request ids, the HTTP metrics and one access-log record per request or WebSocket.

    The request id is the client's ``X-Request-ID`` when it is short and plain, else a new one; it is
    echoed in the response and logged, so a client report can be matched to the server's log line.
    Latency is measured to the response head (as ``Server-Timing``), by route template.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: GatewayMetrics | None,
        access_log: bool,
        refusals: RefusalSampler | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        #: refused requests without a valid key are logged through this per-address sampler, so that an
        #: outsider's flood of keyless requests cannot flush the log (None: log every one)
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 0
        metrics = self.metrics

        async def send_observed(message: Message) -> None:
            nonlocal status
            mtype = message["type"]
            if mtype == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
                if metrics is not None:
                    metrics.http_latency.labels(scope["method"], _route(scope)).observe(
                        time.perf_counter() - started
                    )
            elif mtype == "websocket.accept":
                status = 101
            elif mtype == "websocket.http.response.start":
                status = message["status"]
            elif mtype == "websocket.close":
                if status == 0:
                    status = 403
                elif status == 101 and message.get("code") in WS_REFUSAL_STATUS:
                    # accepted only to say why in a message, then refused (qmtgate.security.ws): log the
                    # refusal, not the 101 of the handshake
                    status = WS_REFUSAL_STATUS[message["code"]]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except BaseException:
            if status == 0:
                status = 500
            raise
        finally:
            if metrics is not None and kind == "http":
                metrics.http_requests.labels(scope["method"], _route(scope), str(status)).inc()
            if self.access_log and access_logger.isEnabledFor(logging.INFO):
                suppressed: int | None = 0
                if (
                    self.refusals is not None
                    and status in _SAMPLED_STATUSES
                    and scope.get("state", {}).get(STATE_KEY) is None
                ):
                    client = scope.get("client")
                    suppressed = self.refusals.admit(str(client[0]) if client else "unknown")
                if suppressed is not None:
                    _log_access(scope, request_id, status, time.perf_counter() - started, suppressed)


#: WebSocket close codes that refuse a client after the handshake (qmtgate.security.ws) -> the HTTP status
#: the access log shows for them.
WS_REFUSAL_STATUS = {4401: 401, 4403: 403, 4429: 429}


def _route(scope: Scope) -> str:
    """The matched route's full template (``/api/v1/instruments/{code}``), or ``unmatched``.

    Rebuilt from the path and its path parameters: routers included with a prefix keep their own
    relative ``path``, and label values must stay bounded (one series per route, not per code).
    """
    if scope.get("route") is None:
        return "unmatched"
    path: str = scope.get("path", "")
    params = scope.get("path_params")
    if not params:
        return path
    names = {str(value): name for name, value in params.items()}
    return "/".join(f"{{{names[seg]}}}" if seg in names else seg for seg in path.split("/"))


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            if 0 < len(value) <= 64 and all(c in _REQUEST_ID_OK for c in value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex[:16]


#: Refusals an outsider can cause without a key: sampled per address in the access log.
_SAMPLED_STATUSES = frozenset({400, 401, 403, 429})


def _log_access(scope: Scope, request_id: str, status: int, seconds: float, suppressed: int = 0) -> None:
    state = scope.get("state", {})
    key = state.get(STATE_KEY)
    client = scope.get("client")
    method = scope.get("method", "WS")
    route = _route(scope)
    access_logger.info(
        "%s %s %d %.1fms%s",
        method,
        scope.get("path", ""),
        status,
        seconds * 1000,
        f" ({suppressed} similar refusals from this address not logged)" if suppressed else "",
        extra={
            "suppressed": suppressed,
            "request_id": request_id,
            "key_id": key.id if key is not None else None,
            "client": client[0] if client else None,
            "method": method,
            "route": route,
            "path": scope.get("path", ""),
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
        },
    )
