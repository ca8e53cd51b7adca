"""Pure-ASGI middleware (no BaseHTTPMiddleware: it buffers streaming bodies and costs a task per request)."""

from __future__ import annotations

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
