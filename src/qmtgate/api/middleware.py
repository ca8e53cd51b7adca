"""Pure-ASGI middleware (no BaseHTTPMiddleware: it buffers streaming bodies and costs a task per request)."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qmtgate.api.encoding import SOURCE_HEADER


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
