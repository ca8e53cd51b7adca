"""A pure-ASGI fast lane for the xtquant drop-in's hottest call: ``get_full_tick`` from the live cache.

Why: strategies written for xtquant call ``xtdata.get_full_tick([code])`` in loops, so its round trip is
what the drop-in feels like. On loopback the answer itself (a dict lookup in the quote cache) costs
microseconds, while FastAPI's per-request machinery (routing over every route, dependency solving, body
validation, the exception middleware) cost ~0.4 ms of a ~1.1 ms round trip (bench/client_bench.py).

The lane sits *inside* the security, access-log/metrics, timing and source-header middlewares, so
authentication, rate limits, scopes, the access log, metrics and headers are exactly those of the route.
It answers only ``POST /api/v1/xt/full_tick`` with a small JSON body of the route's own shape
(``{"codes": [str, ...]}``) while the quote cache is live, through the route's own logic
(:func:`~qmtgate.api.routers.xtcompat.full_tick_from_cache`). Anything else, including every request it
is unsure of (a cold cache, another body shape, a key without the ``read`` scope), goes to the FastAPI
route unchanged, which gives the usual answers and errors.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qmtgate.api.responses import dumps
from qmtgate.api.routers.xtcompat import MARKET_TOKENS, check_full_tick, full_tick_from_cache
from qmtgate.errors import QmtgateError
from qmtgate.security.deps import scope_refusal

#: Bodies larger than this are left to the route (a whole-market code list is not a hot-path call).
MAX_BODY = 64 * 1024
#: More codes than this (or a market token) is a large answer, left to the route (encoded off the loop).
FAST_CODES = 500


class PostFastLane:
    """One ``POST {path}`` served past FastAPI's routing when the subclass is sure the route would answer
    the same; every other request, and every one it is unsure of, goes to the app unchanged.

    Subclasses read the complete body in :meth:`_take` (None: leave it to the route) and answer what it
    returned in :meth:`_serve`. ``max_body``: larger bodies are left to the route unread past it."""

    max_body = MAX_BODY

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path
        self._route: Any = None  # the FastAPI route, for the metrics' route label
        self.served = 0  # requests answered here (tests, and a sign the lane is in use)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive)
        taken = self._take(scope, body) if complete and len(body) <= self.max_body else None
        if taken is None:
            await self.app(scope, _replay(body, complete, receive), send)
            return
        scope["route"] = self._route_of(scope)
        self.served += 1
        await self._serve(scope, send, taken)

    def _take(self, scope: Scope, body: bytes) -> Any:
        raise NotImplementedError

    async def _serve(self, scope: Scope, send: Send, taken: Any) -> None:
        raise NotImplementedError

    def _route_of(self, scope: Scope) -> Any:
        if self._route is None:
            for route in scope["app"].routes:
                if getattr(route, "path", None) == self.path:
                    self._route = route
                    break
        return self._route


async def send_json(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    """One complete JSON response on a raw ASGI ``send``."""
    headers = [
        (b"content-type", b"application/json"),
        *extra,
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FullTickFastLane(PostFastLane):
    """Serve ``POST {path}`` from the quote cache when it is safe to; delegate everything else."""

    def _take(self, scope: Scope, body: bytes) -> bytes | None:
        return self._answer(scope, body)

    async def _serve(self, scope: Scope, send: Send, taken: bytes) -> None:
        await send_json(send, 200, taken)

    def _answer(self, scope: Scope, body: bytes) -> bytes | None:
        services = getattr(scope["app"].state, "services", None)
        if services is None:
            return None
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(parsed, dict) or parsed.keys() != {"codes"}:
            return None
        codes = parsed["codes"]
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            return None
        if len(codes) > FAST_CODES or any(c in MARKET_TOKENS for c in codes):
            return None  # a large answer: the route encodes it off the event loop
        if scope_refusal(Request(scope), "read") is not None or not services.cache_live():
            return None
        try:
            check_full_tick(services, codes)
        except QmtgateError:
            return None  # the route answers it, with the same check, as the error envelope
        data = full_tick_from_cache(services, codes)
        if data is None:
            return None
        return dumps({"source": services.source.name, "data": data})


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body (reading stops once past :data:`MAX_BODY`); ``complete``: the stream ended."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # a disconnect: let the route see it
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
        if size > MAX_BODY:
            return b"".join(chunks), not more  # complete or not, the route reads it
        if not more:
            return b"".join(chunks), True


def _replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    """A ``receive`` that first hands back what the lane already read, then the rest of the stream."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": not complete}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay
