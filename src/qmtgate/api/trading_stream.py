"""The ``trading`` channel of ``/api/v1/ws``: account events (orders, trades, positions, asset, errors,
account status, disconnects) for clients whose key has the ``trade`` scope (docs/trading.md, docs/streaming.md).

client -> server
    {"op": "subscribe", "channel": "trading", "id": any}                 live events from now on
    {"op": "subscribe", "channel": "trading", "since": 41, "epoch": "..."}  resume: every event after 41
    {"op": "unsubscribe", "channel": "trading"}
server -> client
    {"type": "subscribed", "channel": "trading", "id", "epoch", "seq"}   seq: the last event published
    {"type": "trading", "epoch", "seq", "prev_seq", "event": "order" | "trade" | ..., "ts", "data": {...},
     "replay": bool, "catchup"?: true}
    {"type": "resync", "channel": "trading", "reason": "new_epoch" | "out_of_window", "epoch", "seq"}

Events are never conflated or dropped: they travel through the connection's outbox as messages, which
the outbox keeps whole and in order with everything else. A connection with more than
``trading.events_max_pending`` messages not yet written when an event arrives is closed (4001, "client
too slow") instead; it reconnects and resumes with ``since``. ``prev_seq`` is always ``seq - 1`` (every
subscriber gets every event of the account), so a client sees a gap as ``prev_seq`` above its last seq.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from qmtgate.api.routers.trading import CancelOrder, PlaceOrder
from qmtgate.errors import (
    BadRequest,
    Forbidden,
    QmtgateError,
    Unauthorized,
    error_body,
    validation_details,
    validation_error_body,
)
from qmtgate.hub.clients import ClientOutbox
from qmtgate.security.guard import has_scope
from qmtgate.source.trading.events import AccountEvents

SCOPE = "trade"


def trading_refusal(app_state: Any, key: Any) -> tuple[str, str, dict[str, Any]] | None:
    """Why this connection may not have the trading channel (code, message, details), or None."""
    service = getattr(app_state, "trading", None)
    settings = getattr(app_state, "settings", None)
    if service is None or settings is None or not settings.trading.enabled:
        return ("trading_disabled", "trading is off on this gateway (trading.enabled)", {})
    guard = getattr(app_state, "security", None)
    if guard is None or not guard.active:
        if not settings.trading.allow_loopback_without_auth:
            return (
                "forbidden",
                "the trading channel needs an API key with the 'trade' scope (auth is off); for loopback "
                "tests set trading.allow_loopback_without_auth",
                {"required": SCOPE},
            )
        return None
    if key is None or not has_scope(key, SCOPE):
        scopes = list(getattr(key, "scopes", ()) or ())
        return ("forbidden", "this API key lacks the 'trade' scope", {"required": SCOPE, "scopes": scopes})
    return None


class TradingChannel:
    """One connection's subscription to the account events."""

    def __init__(self, events: AccountEvents, outbox: ClientOutbox, max_pending: int) -> None:
        self.events = events
        self.outbox = outbox
        self.max_pending = max_pending
        self._limit = max_pending
        self._sink: int | None = None

    @property
    def active(self) -> bool:
        return self._sink is not None

    def subscribe(self, msg: dict[str, Any]) -> None:
        """Answer, replay what ``since`` missed (or say ``resync``), then go live: all on the event
        loop without an ``await``, so no event can fall between the replay and the live ones."""
        self.close()
        events, box = self.events, self.outbox
        box.put_message(
            {
                "type": "subscribed",
                "channel": "trading",
                "id": msg.get("id"),
                "epoch": events.epoch,
                "seq": events.seq,
            }
        )
        since = msg.get("since")
        replay: list[dict[str, Any]] = []
        if since is not None:
            found = (
                events.replay_since(since, msg.get("epoch"))
                if isinstance(since, int) and not isinstance(since, bool)
                else None
            )
            if found is None:
                reason = "new_epoch" if msg.get("epoch") != events.epoch else "out_of_window"
                box.put_message(
                    {
                        "type": "resync",
                        "channel": "trading",
                        "reason": reason,
                        "epoch": events.epoch,
                        "seq": events.seq,
                    }
                )
            else:
                replay = found
        for event in replay:
            box.put_message(self._message(event, replay=True))
        self._limit = self.max_pending + len(replay)  # the replay itself never trips the limit
        self._sink = events.subscribe(self._live)

    def _live(self, event: dict[str, Any]) -> None:
        box = self.outbox
        if box.closed_reason is not None:
            self.close()
            return
        if len(box) >= self._limit:  # never drop an account event: close, the client resumes
            box.close(
                f"client too slow: more than {self.max_pending} messages unread (resume trading with since)"
            )
            self.close()
            return
        box.put_message(self._message(event, replay=False))
        if len(box) <= self.max_pending // 2:
            self._limit = self.max_pending

    def _message(self, event: dict[str, Any], *, replay: bool) -> dict[str, Any]:
        return {"type": "trading", "epoch": self.events.epoch, **event, "replay": replay}

    def close(self) -> None:
        if self._sink is not None:
            self.events.unsubscribe(self._sink)
            self._sink = None


# ---------------------------------------------------------------------------------------------------------
# Orders and cancels over the socket: {"op": "place" | "cancel", "id": any, "body": {...}} (docs/trading.md)

#: The socket's order operations and the REST route each one mirrors (same body, outcome and errors).
ORDER_OPS = {"place": "POST /api/v1/trading/orders", "cancel": "POST /api/v1/trading/cancel"}


def _refusal_error(refusal: tuple[str, str, dict[str, Any]]) -> QmtgateError:
    code, message, details = refusal
    if code == "trading_disabled":  # REST answers 404 then: its trading routes are not mounted
        return _Coded(code, 404, message, details)
    return Forbidden(message, details)


class _Coded(QmtgateError):
    """An error whose wire code is not one of :class:`ErrorCode` (``trading_disabled``)."""

    def __init__(self, wire_code: str, status: int, message: str, details: Any) -> None:
        super().__init__(message, details)
        self.wire_code = wire_code
        self.status = status

    @property
    def status_code(self) -> int:
        return self.status

    def to_body(self) -> dict[str, Any]:
        return error_body(self.wire_code, self.message, self.details)


async def order_op(app_state: Any, key: Any, op: str, msg: dict[str, Any]) -> dict[str, Any]:
    """One ``place`` / ``cancel`` message: the reply, with the REST route's answer (``result``) or its
    error envelope (``error``) and HTTP status (``status``). The same scope check (``trade``), body
    validation, idempotency, risk checks and audit rows as REST: both call :class:`TradingService`. The
    key is looked up again per message, so a key revoked while the socket is open can no longer trade."""
    reply: dict[str, Any] = {"type": "reply", "op": op, "id": msg.get("id")}
    try:
        guard = getattr(app_state, "security", None)
        if key is not None and guard is not None and guard.active:
            key = guard.store.current(key.id)  # as REST, which authenticates every request
            if key is None:
                raise Unauthorized("invalid or revoked API key")
        refusal = trading_refusal(app_state, key)
        if refusal is not None:
            raise _refusal_error(refusal)
        service = app_state.trading
        body = msg.get("body")
        if not isinstance(body, dict):
            raise _Invalid([{"loc": ["body"], "msg": "an object is required", "type": "dict_type"}])
        ctx = {"request_id": "ws-" + uuid.uuid4().hex[:13], "key_id": getattr(key, "id", None)}
        if op == "place":
            order = _validated(PlaceOrder, body)
            result = await service.place(order.request(), ctx)
        else:
            cancel = _validated(CancelOrder, body)
            if (cancel.order_id is None) == (cancel.client_order_id is None):
                raise BadRequest("give exactly one of order_id and client_order_id")
            result = await service.cancel(ctx, order_id=cancel.order_id, coid=cancel.client_order_id)
    except _Invalid as exc:
        reply.update(status=422, **validation_error_body(exc.details))
        return reply
    except QmtgateError as exc:
        reply.update(status=exc.status_code, **exc.to_body())
        return reply
    reply.update(status=200, result=result)
    return reply


class _Invalid(Exception):
    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__("validation")
        self.details = details


def _validated(model: type[Any], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:  # the REST route's 422, with the same loc/msg/type
        raise _Invalid(validation_details(exc.errors(), ("body",))) from None
