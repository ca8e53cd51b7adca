"""A pure-ASGI fast lane for ``POST /api/v1/trading/orders`` (the order round trip, issue 21).

Like :mod:`qmtgate.api.fastlane` (the drop-in's ``get_full_tick``), it sits *inside* the security,
access-log/metrics, timing and source-header middlewares, so authentication, rate limits, the access
log, metrics, request ids and headers are those of the route. It skips FastAPI's routing over every
route, dependency solving and response handling, which cost a few tenths of a millisecond of an
order's round trip on loopback.

It places an order only when it is sure the route would: a complete JSON body (``application/json``)
that :class:`~qmtgate.api.routers.trading.PlaceOrder` accepts, trading on, and the route's own access
rule (the ``trade`` scope; with auth off, ``trading.allow_loopback_without_auth``). Then it calls
:meth:`TradingService.place` with the route's arguments and answers its outcome, or its error envelope
(status, ``Retry-After``) as the app's error handler would. Anything else — a body the model refuses,
another content type, a key without the scope — goes to the FastAPI route unchanged, which gives the
usual answers and errors.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Scope, Send

from qmtgate.api.fastlane import PostFastLane, send_json
from qmtgate.api.responses import dumps
from qmtgate.api.routers.trading import PlaceOrder
from qmtgate.errors import RETRY_AFTER_SECONDS, ErrorCode, QmtgateError, error_body
from qmtgate.security.deps import request_key, scope_refusal

logger = logging.getLogger(__name__)

#: An order's body is a few hundred bytes; anything larger is left to the route.
MAX_BODY = 8 * 1024


class TradingOrderFastLane(PostFastLane):
    """Place ``POST {path}`` orders past FastAPI's routing when it is safe to; delegate everything else."""

    max_body = MAX_BODY

    def _take(self, scope: Scope, body: bytes) -> dict[str, Any] | None:
        return self._order(scope, body)

    async def _serve(self, scope: Scope, send: Send, order: dict[str, Any]) -> None:
        service = scope["app"].state.trading
        key = request_key(Request(scope))
        ctx = {"request_id": scope.get("state", {}).get("request_id"), "key_id": key.id if key else None}
        extra: list[tuple[bytes, bytes]] = []
        try:
            answer = dumps(await service.place(order, ctx))
            status = 200
        except QmtgateError as exc:  # as errors._handle_qmtgate_error
            status, answer = exc.status_code, dumps(exc.to_body())
            retry_after = getattr(exc, "retry_after", None) or RETRY_AFTER_SECONDS.get(exc.code)
            if retry_after is not None:
                extra.append((b"retry-after", str(retry_after).encode("ascii")))
        except Exception:  # as errors._handle_unexpected
            logger.exception("unhandled error on POST %s", self.path)
            status, answer = 500, dumps(error_body(ErrorCode.INTERNAL_ERROR, "internal server error"))
        await send_json(send, status, answer, *extra)

    def _order(self, scope: Scope, body: bytes) -> dict[str, Any] | None:
        """The order the route would place (its ``body.request()``), or None to leave it to the route."""
        state = scope["app"].state
        if getattr(state, "trading", None) is None:
            return None
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        if content_type.split(b";")[0].strip().lower() != b"application/json":
            return None
        guard = getattr(state, "security", None)
        if guard is None or not guard.active:
            if not state.settings.trading.allow_loopback_without_auth:
                return None
        elif scope_refusal(Request(scope), "trade") is not None:
            return None
        try:
            return PlaceOrder.model_validate(orjson.loads(body)).request()
        except (orjson.JSONDecodeError, ValidationError, TypeError, ValueError):
            return None
