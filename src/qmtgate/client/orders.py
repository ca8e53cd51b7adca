"""Orders and cancels over the trading WebSocket, with REST as the fallback (docs/trading.md).

:class:`OrderSocket` sends ``place`` / ``cancel`` on an open ``/api/v1/ws`` connection (subscribed to
the ``trading`` channel, so the account events arrive on the same socket) and waits for the gateway's
``reply``: the REST route's answer, or its error envelope raised as the same typed exception
(:mod:`qmtgate.client.errors`). The gateway runs the same checks, idempotency and audit as for REST;
the socket saves the HTTP request's parsing and middleware, which is most of the gateway's own share of
an order's round trip.

When the socket is down (not connected yet, reconnecting, refused) an order goes over REST instead. An
order whose socket closed after it was sent is sent again over REST with the same ``client_order_id``:
the gateway answers a repeated id with the first outcome and never sends a second order. A cancel is
not resent that way (the gateway may have taken it): :class:`~qmtgate.client.errors.ConnectionFailed`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qmtgate.client import _calls
from qmtgate.client.errors import ConnectionFailed, error_from_body
from qmtgate.client.trading import SocketDown, TradingEvents

if TYPE_CHECKING:
    from qmtgate.client.sync import Client

logger = logging.getLogger(__name__)

#: (method, path) of a trading Call -> the socket op that mirrors it
OPS = {("POST", f"{_calls.V1}/trading/orders"): "place", ("POST", f"{_calls.V1}/trading/cancel"): "cancel"}


class OrderSocket:
    """``place`` / ``cancel`` over the trading WebSocket of ``client`` (REST when the socket is down).

    ``on_event(msg)`` gets every account event of the socket (the ``trading`` channel's messages) on the
    client's loop thread; keep it short. Without ``on_event`` the socket does not subscribe to the
    channel: it carries orders only (nothing else to read between an order and its reply). ``events``: an already running :class:`TradingEvents` to send
    on (the remote xttrader shares its own); otherwise the socket is opened here and waited for up to
    ``connect_timeout`` seconds (orders go over REST until it is up). Counts: ``socket_orders``,
    ``rest_orders``. Use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        client: Client,
        on_event: Callable[[dict[str, Any]], Any] | None = None,
        *,
        events: TradingEvents | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self._client = client
        self._own = events is None
        if events is None:
            options = client.options
            events = TradingEvents(
                options.ws_url(),
                options.headers(),
                on_event or (lambda msg: None),
                ssl_context=options.ssl_context,
                subscribe=on_event is not None,
            )
        self.events = events
        self._task = client._loop.submit(events.run()) if self._own else None
        self.socket_orders = 0
        self.rest_orders = 0
        if self._own:
            try:
                client.run(events.wait_connected(connect_timeout), timeout=connect_timeout + 5)
            except Exception:  # not up in time: REST meanwhile, the socket keeps trying
                logger.warning("order socket: the trading WebSocket is not up; orders go over REST")

    @property
    def up(self) -> bool:
        """Whether an order would go over the socket now."""
        events = self.events
        return events._ws is not None and events.connected.is_set() and events.refused is None

    def place(
        self,
        code: str,
        side: str,
        volume: int,
        price: float = 0.0,
        *,
        price_type: str = "limit",
        market_type: str | None = None,
        client_order_id: str | None = None,
        strategy_name: str = "",
        remark: str = "",
    ) -> dict[str, Any]:
        """As :meth:`Client.trading_place` (same arguments, answer and exceptions)."""
        return self.send(
            _calls.trading_place(
                code,
                side,
                volume,
                price,
                price_type=price_type,
                market_type=market_type,
                client_order_id=client_order_id,
                strategy_name=strategy_name,
                remark=remark,
            )
        )

    def cancel(self, order_id: int | None = None, client_order_id: str | None = None) -> dict[str, Any]:
        """As :meth:`Client.trading_cancel`."""
        return self.send(_calls.trading_cancel(order_id, client_order_id))

    def send(self, call: _calls.Call) -> Any:
        """A trading place / cancel :class:`Call` over the socket; any other call (or a socket that is
        down) over REST."""
        op = OPS.get((call.method, call.path))
        if op is not None and self.up:
            try:
                reply = self.events.request_threadsafe(op, call.body, self._client.options.timeout)
            except SocketDown as e:
                if op == "cancel" and e.sent:
                    raise ConnectionFailed(f"cancel: {e} (it may have reached the gateway)") from e
                logger.info("order socket: %s; %s goes over REST", e, op)
            else:
                self.socket_orders += 1
                status = reply.get("status")
                if status == 200:
                    return reply.get("result")
                raise error_from_body(int(status or 500), {"error": reply.get("error")})
        if op is not None:
            self.rest_orders += 1
        return self._client.send(call)

    def close(self) -> None:
        if not self._own:
            return
        with contextlib.suppress(Exception):
            self._client.run(self.events.close(), timeout=10)
        if self._task is not None:
            self._task.cancel()

    def __enter__(self) -> OrderSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
