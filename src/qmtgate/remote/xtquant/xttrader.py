"""``xtquant.xttrader`` (250807) served by a remote qmtgate gateway: an xttrader service runs unchanged on
Mac/Linux after ``qmtgate.remote.install(url, api_key=...)`` (a key with the ``trade`` scope).

The calls keep the SDK's names, signatures and return values: ``connect`` / ``subscribe`` 0 or -1,
``order_stock`` the order id or -1, ``order_stock_async`` / ``cancel_order_stock_async`` a ``seq`` whose
answer comes as ``on_order_stock_async_response`` / ``on_cancel_order_stock_async_response``, queries
xttype objects (:mod:`qmtgate.xtapi.xttype`, the same classes as the simulator's) or ``None`` / ``[]``.
Underneath, orders and cancels go over the WebSocket that carries the pushes (the ``trading`` channel of
``/api/v1/ws``; its ``place`` / ``cancel`` messages run the same pre-trade risk, idempotency and audit as
the REST routes, which take over while that socket is down); queries are the REST routes
(``/api/v1/trading``).

How it differs from a local QMT (docs/trading.md, "The remote xttrader"):

* **Idempotent orders.** Every order carries a fresh ``client_order_id`` (sent to QMT as the order's
  remark; the drop-in gives your ``order_remark`` back on every object it hands you). A request cut by the
  network is resent with the same id, and the gateway never sends a second order for it.
* **Unknown outcomes.** When the gateway does not know whether QMT took an order (no SDK answer in
  time), ``order_stock`` returns -1 as the SDK does after its own timeout, but the order may be live: its
  pushes still arrive through ``on_stock_order`` with the order id, and it shows in ``query_stock_orders``.
* **Callbacks** run on one background thread ("qmtgate-xttrader-callback"), in the order the gateway
  published the events; ``on_order_stock_async_response`` goes through the same thread, so it keeps its
  place among the pushes of other orders but may come before or after its own order's first push.
* **Disconnects.** A dropped link to the gateway is resumed without losing an event (the channel replays
  from ``since``); ``on_disconnected`` is called when QMT itself disconnected from the gateway, or when the
  gateway cannot replay what was missed (it restarted): re-read orders and positions, as after the SDK's.
* Only the stock calls below are served; any other public name raises :class:`NotServed` naming it.
"""

from __future__ import annotations

import itertools as _itertools
import logging as _logging
import queue as _queue
import threading as _threading
import time as _time
import traceback as _traceback
from concurrent.futures import ThreadPoolExecutor as _Pool
from typing import Any as _Any

from qmtgate.client import _calls
from qmtgate.client import errors as _errors
from qmtgate.client.orders import OrderSocket as _OrderSocket
from qmtgate.client.trading import TradingEvents as _TradingEvents
from qmtgate.remote._state import current as _session
from qmtgate.xtapi import xtconstant as _c
from qmtgate.xtapi import xttype as _t
from qmtgate.xtapi.xtcallback import XtQuantTraderCallback

__all__ = ["XtQuantTrader", "XtQuantTraderCallback"]

_log = _logging.getLogger(__name__)

#: How long ``connect`` waits for the trading channel's first answer.
CONNECT_WAIT = 10.0
#: Attempts of one order request when the network fails (same client_order_id each time).
PLACE_ATTEMPTS = 3

#: xttrader's stock market price types -> the gateway's market_type (vocab.MARKET_ORDER_TYPES): the order
#: goes out with the type the caller chose (a passive own_best stays passive).
_MARKET_TYPE_BY_PRICE_TYPE = {
    _c.MARKET_SH_CONVERT_5_CANCEL: "best5_cancel",
    _c.MARKET_SZ_CONVERT_5_CANCEL: "best5_cancel",
    _c.MARKET_SH_CONVERT_5_LIMIT: "best5_limit",
    _c.MARKET_PEER_PRICE_FIRST: "peer_best",
    _c.MARKET_MINE_PRICE_FIRST: "own_best",
    _c.MARKET_SZ_INSTBUSI_RESTCANCEL: "ioc",
    _c.MARKET_SZ_FULL_OR_CANCEL: "fok",
}
_CANCELABLE = frozenset({_c.ORDER_UNREPORTED, _c.ORDER_WAIT_REPORTING, _c.ORDER_REPORTED, _c.ORDER_PART_SUCC})
_MARKET_BY_INT = {0: "SH", 1: "SZ", 2: "BJ"}

#: channel event -> (callback name, xttype class or None for no argument)
_PUSHES: dict[str, tuple[str, type | None]] = {
    "order": ("on_stock_order", _t.XtOrder),
    "trade": ("on_stock_trade", _t.XtTrade),
    "position": ("on_stock_position", _t.XtPosition),
    "asset": ("on_stock_asset", _t.XtAsset),
    "order_error": ("on_order_error", _t.XtOrderError),
    "cancel_error": ("on_cancel_error", _t.XtCancelError),
    "account_status": ("on_account_status", _t.XtAccountStatus),
    "disconnected": ("on_disconnected", None),
}


class NotServed(AttributeError):
    """An xttrader call the gateway does not serve."""


class _Refused(Exception):
    """The gateway refused an order or cancel (risk, kill switch, not connected...): no order exists."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def _obj(cls: type, data: dict[str, _Any]) -> _Any:
    """An xttype object with exactly the attributes the gateway sent (the SDK object's own)."""
    obj = cls.__new__(cls)
    obj.__dict__.update(data)
    return obj


class XtQuantTrader:
    """``XtQuantTrader(path, session)`` against the gateway (``path`` and ``session`` are kept for the
    SDK's sake: the gateway's own trader owns the QMT session)."""

    def __init__(self, path, session, callback=None):
        self.path = path
        self.session = session
        self.callback = callback
        self._remote = _session()
        self._client = self._remote.client
        self._seq = _itertools.count(1)
        self._calls: _queue.Queue = _queue.Queue()
        self._dispatcher: _threading.Thread | None = None
        self._requests = _Pool(max_workers=1, thread_name_prefix="qmtgate-xttrader-request")  # SDK order
        self._running = _threading.Lock()  # held by the one request running (pool task or inline call)
        self._queued = 0  # requests handed to the pool and not finished
        self._queued_lock = _threading.Lock()
        self._events: _TradingEvents | None = None
        self._events_task: _Any = None
        self._orders: _OrderSocket | None = None  # orders / cancels over the events' socket (REST fallback)
        self._account_id: str | None = None
        self._subscribed: set[str] = set()
        self._remarks: dict[str, str] = {}  # client_order_id -> the caller's order_remark
        self._remarks_lock = _threading.Lock()
        self._stopped = _threading.Event()
        self.connected = False
        self.callback_errors = 0

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotServed(
            f"XtQuantTrader.{name} is not served by qmtgate.remote (the gateway serves stock orders, "
            f"cancels and queries: {', '.join(sorted(_SERVED))})"
        )

    # ------------------------------------------------------------------ lifecycle

    def register_callback(self, callback):
        self.callback = callback

    def start(self):
        if self._dispatcher is None:
            self._dispatcher = _threading.Thread(
                target=self._dispatch_loop, name="qmtgate-xttrader-callback", daemon=True
            )
            self._dispatcher.start()

    def connect(self):
        """0 when the gateway's trader is connected to QMT and the account events flow, else -1."""
        try:
            status = self._client.send(_calls.trading_status())
        except _errors.QmtgateClientError as e:
            _log.error("xttrader.connect: the gateway refused or is unreachable: %s", e)
            return -1
        if not status.get("connected"):
            _log.error(
                "xttrader.connect: the gateway's trader is not connected: %s", status.get("connect_error")
            )
            return -1
        self._account_id = status.get("account_id")
        if self._events is None:
            options = self._client.options
            self._events = _TradingEvents(
                options.ws_url(),
                options.headers(),
                self._on_event,
                self._on_feed,
                ssl_context=options.ssl_context,
            )
            self._events_task = self._client._loop.submit(self._events.run())
            self._orders = _OrderSocket(self._client, events=self._events)
        try:
            self._client.run(self._events.wait_connected(CONNECT_WAIT), timeout=CONNECT_WAIT + 5)
        except Exception:
            _log.error("xttrader.connect: the trading channel did not answer within %s s", CONNECT_WAIT)
            return -1
        if self._events.refused is not None:
            _log.error("xttrader.connect: the trading channel was refused: %s", self._events.refused)
            return -1
        self.connected = True
        return 0

    def subscribe(self, account):
        if not self.connected or getattr(account, "account_id", None) != self._account_id:
            return -1
        self._subscribed.add(account.account_id)
        return 0

    def unsubscribe(self, account):
        if getattr(account, "account_id", None) not in self._subscribed:
            return -1
        self._subscribed.discard(account.account_id)
        return 0

    def run_forever(self):
        """Block, as the SDK does, until :meth:`stop` (from a callback or another thread)."""
        while not self._stopped.wait(0.5):
            pass

    def sleep(self, time):
        _time.sleep(time)

    def set_timeout(self, timeout=0):
        """Accepted for the SDK's sake: the gateway applies its own ``trading.response_timeout``."""

    def set_relaxed_response_order_enabled(self, enabled):
        """Accepted for the SDK's sake: answers always keep the gateway's event order."""

    def stop(self):
        self._stopped.set()
        self.connected = False
        events, self._events = self._events, None
        self._orders = None
        if events is not None:
            try:
                self._client.run(events.close(), timeout=10)
            except Exception:
                _log.debug("closing the trading channel failed", exc_info=True)
            if self._events_task is not None:
                self._events_task.cancel()
        self._requests.shutdown(wait=True)
        if self._dispatcher is not None:
            self._calls.put(None)
            if self._dispatcher is not _threading.current_thread():
                self._dispatcher.join(timeout=10)
            self._dispatcher = None

    # ------------------------------------------------------------------ callbacks (one thread, in order)

    def _dispatch_loop(self):
        while True:
            item = self._calls.get()
            if item is None:
                return
            name, args = item
            handler = getattr(self.callback, name, None) if self.callback is not None else None
            if handler is None:
                continue
            try:
                handler(*args)
            except Exception:  # as the SDK: print it and keep the trader running
                self.callback_errors += 1
                print(f"xttrader callback {name} error:")
                _traceback.print_exc()

    def _queue_call(self, name: str, *args: _Any) -> None:
        self._calls.put((name, args))

    def _on_event(self, msg: dict[str, _Any]) -> None:
        """On the client's loop thread: turn a channel event into its callback, queued in order."""
        kind = msg.get("event")
        push = _PUSHES.get(kind or "")
        if push is None:
            return
        name, cls = push
        if cls is None:
            self._queue_call(name)
            return
        data = self._user_view(msg.get("data") or {})
        if data.get("account_id") not in self._subscribed:
            return  # as the SDK: pushes only for subscribed accounts
        self._queue_call(name, _obj(cls, data))

    def _on_feed(self, kind: str, data: dict[str, _Any]) -> None:
        if kind in ("resync", "gap") and self.connected:
            _log.warning("xttrader: account events were lost (%s %s): on_disconnected", kind, data)
            self._queue_call("on_disconnected")
        elif kind == "refused":
            _log.error("xttrader: the trading channel was refused: %s", data)

    def _user_view(self, data: dict[str, _Any]) -> dict[str, _Any]:
        """The caller's own ``order_remark`` in place of the client_order_id the gateway sent QMT."""
        remark = data.get("order_remark")
        if remark:
            with self._remarks_lock:
                mine = self._remarks.get(remark)
            if mine is not None:
                return {**data, "order_remark": mine}
        return data

    # ------------------------------------------------------------------ requests: one at a time, in call order

    def _submit(self, fn, *args):
        """Queue a request (the ``*_async`` calls): it runs after every request called before it."""
        with self._queued_lock:
            self._queued += 1

        def run():
            try:
                with self._running:
                    return fn(*args)
            finally:
                with self._queued_lock:
                    self._queued -= 1

        return self._requests.submit(run)

    def _call(self, fn, *args):
        """Run a request and wait for it (the sync calls): in the calling thread when nothing is queued
        before it (two thread hops fewer per order), else after the queued ones, in the pool."""
        self._queued_lock.acquire()
        if self._queued == 0:
            self._running.acquire()  # only another thread's inline call can hold it; wait for it
            self._queued_lock.release()
            try:
                return fn(*args)
            finally:
                self._running.release()
        self._queued_lock.release()
        return self._submit(fn, *args).result()

    # ------------------------------------------------------------------ orders

    def _send(self, call: _Any) -> _Any:
        """An order or cancel over the trading WebSocket once connected (REST when it is down)."""
        orders = self._orders
        return orders.send(call) if orders is not None else self._client.send(call)

    def _account_ok(self, account: _Any) -> bool:
        return self._account_id is not None and getattr(account, "account_id", None) == self._account_id

    def _place(
        self, account, stock_code, order_type, order_volume, price_type, price, strategy_name, order_remark
    ):
        """One order over REST; returns (order_id or -1, error_msg). Raises :class:`_Refused` when the
        gateway refused it before QMT saw it."""
        if not self._account_ok(account):
            raise _Refused(
                f"account {getattr(account, 'account_id', account)!r} is not the gateway's", "account"
            )
        if order_type not in (_c.STOCK_BUY, _c.STOCK_SELL):
            raise _Refused(f"order_type {order_type!r} is not served (STOCK_BUY / STOCK_SELL)", "unsupported")
        market_type = _MARKET_TYPE_BY_PRICE_TYPE.get(price_type)
        if price_type == _c.FIX_PRICE:
            kind = "limit"
        elif price_type == _c.LATEST_PRICE:
            kind = "latest"
        elif market_type is not None:
            kind = "market"
        else:
            raise _Refused(
                f"price_type {price_type!r} is not served (FIX_PRICE, LATEST_PRICE or a stock MARKET_* type)",
                "unsupported",
            )
        coid = _calls.new_client_order_id()
        with self._remarks_lock:
            self._remarks[coid] = order_remark
        call = _calls.trading_place(
            stock_code,
            "buy" if order_type == _c.STOCK_BUY else "sell",
            int(order_volume),
            float(price),
            price_type=kind,
            market_type=market_type,
            client_order_id=coid,
            strategy_name=strategy_name,
            remark=order_remark,
        )
        for attempt in range(PLACE_ATTEMPTS):
            try:
                answer = self._send(call)  # the same client_order_id on every attempt
                break
            except _errors.ConnectionFailed:
                if attempt == PLACE_ATTEMPTS - 1:
                    _log.error("xttrader: order %s: the gateway is unreachable; outcome unknown", coid)
                    return -1, f"gateway unreachable (client_order_id {coid}): the outcome is unknown"
                _time.sleep(0.2 * (attempt + 1))
            except _errors.GatewayError as e:
                if e.status >= 500:
                    return -1, f"{e.message} (client_order_id {coid})"
                raise _Refused(e.message, e.code) from None
        status = answer.get("status")
        if status == "accepted" and answer.get("order_id"):
            return int(answer["order_id"]), ""
        if status == "unknown":
            _log.warning(
                "xttrader: order %s: outcome unknown, the order may be live (watch on_stock_order)", coid
            )
            return -1, f"outcome unknown (client_order_id {coid}); the order may be live"
        return -1, answer.get("error_msg") or str(status)

    def _order_error(self, account, error_msg, strategy_name, order_remark):
        self._queue_call(
            "on_order_error",
            _t.XtOrderError(
                getattr(account, "account_id", ""), -1, -1, error_msg, strategy_name, order_remark
            ),
        )

    def order_stock(
        self,
        account,
        stock_code,
        order_type,
        order_volume,
        price_type,
        price,
        strategy_name="",
        order_remark="",
    ):
        """:return: 订单编号 order_id (>0), or -1 when the order failed (``on_order_error`` also fires)."""
        try:
            order_id, _ = self._call(
                self._place,
                account,
                stock_code,
                order_type,
                order_volume,
                price_type,
                price,
                strategy_name,
                order_remark,
            )
        except _Refused as e:
            self._order_error(account, str(e), strategy_name, order_remark)
            return -1
        return order_id

    def order_stock_async(
        self,
        account,
        stock_code,
        order_type,
        order_volume,
        price_type,
        price,
        strategy_name="",
        order_remark="",
    ):
        """:return: 下单请求序号 seq (>0); the answer arrives as ``on_order_stock_async_response``."""
        seq = next(self._seq)

        def run() -> None:
            try:
                order_id, error_msg = self._place(
                    account,
                    stock_code,
                    order_type,
                    order_volume,
                    price_type,
                    price,
                    strategy_name,
                    order_remark,
                )
            except _Refused as e:
                order_id, error_msg = -1, str(e)
                self._queue_call(
                    "on_order_stock_async_response",
                    _t.XtOrderResponse(account.account_id, -1, strategy_name, order_remark, error_msg, seq),
                )
                self._order_error(account, error_msg, strategy_name, order_remark)
                return
            except Exception as e:  # never lose the answer of a seq the caller waits for
                order_id, error_msg = -1, repr(e)
            self._queue_call(
                "on_order_stock_async_response",
                _t.XtOrderResponse(account.account_id, order_id, strategy_name, order_remark, error_msg, seq),
            )

        self._submit(run)
        return seq

    # ------------------------------------------------------------------ cancels

    def _cancel(self, account, order_id) -> tuple[int, str]:
        if not self._account_ok(account):
            return -1, "not the gateway's account"
        try:
            self._send(_calls.trading_cancel(order_id=int(order_id)))
        except _errors.QmtgateClientError as e:
            return -1, str(e)
        return 0, ""

    def _order_by_sysid(self, account, market, sysid) -> _Any:
        suffix = _MARKET_BY_INT.get(market) if isinstance(market, int) else str(market or "").upper()
        for order in self.query_stock_orders(account):
            if str(order.order_sysid) == str(sysid) and (
                not suffix or order.stock_code.endswith("." + suffix)
            ):
                return order
        return None

    def cancel_order_stock(self, account, order_id):
        """:return: 0 the cancel request was sent, -1 it failed."""
        return self._call(self._cancel, account, order_id)[0]

    def cancel_order_stock_async(self, account, order_id):
        """:return: seq; the answer arrives as ``on_cancel_order_stock_async_response``."""
        seq = next(self._seq)

        def run() -> None:
            result, error_msg = self._cancel(account, order_id)
            self._queue_call(
                "on_cancel_order_stock_async_response",
                _t.XtCancelOrderResponse(account.account_id, result, order_id, "", seq, error_msg),
            )

        self._submit(run)
        return seq

    def cancel_order_stock_sysid(self, account, market, sysid):
        """:return: 0 the cancel request was sent, -1 it failed (or no order has that sysid)."""
        order = self._order_by_sysid(account, market, sysid)
        return -1 if order is None else self.cancel_order_stock(account, order.order_id)

    def cancel_order_stock_sysid_async(self, account, market, sysid):
        """:return: seq; the answer arrives as ``on_cancel_order_stock_async_response``."""
        seq = next(self._seq)

        def run() -> None:
            order = self._order_by_sysid(account, market, sysid)
            if order is None:
                result, order_id, error_msg = -1, -1, f"no order with sysid {sysid!r}"
            else:
                order_id = order.order_id
                result, error_msg = self._cancel(account, order_id)
            self._queue_call(
                "on_cancel_order_stock_async_response",
                _t.XtCancelOrderResponse(account.account_id, result, order_id, str(sysid), seq, error_msg),
            )

        self._submit(run)
        return seq

    # ------------------------------------------------------------------ queries

    def _rows(self, account, what: str) -> list[dict[str, _Any]] | None:
        if not self._account_ok(account):
            return None
        try:
            return [self._user_view(row) for row in self._client.send(_calls.trading_rows(what)) or []]
        except _errors.QmtgateClientError as e:
            _log.error("xttrader.query_stock_%s failed: %s", what, e)
            return None

    def query_stock_asset(self, account):
        """:return: XtAsset, or None."""
        if not self._account_ok(account):
            return None
        try:
            data = self._client.send(_calls.trading_asset())
        except _errors.QmtgateClientError as e:
            _log.error("xttrader.query_stock_asset failed: %s", e)
            return None
        return _obj(_t.XtAsset, data) if data else None

    def query_stock_orders(self, account, cancelable_only=False):
        """:return: list of XtOrder (today's; ``cancelable_only``: those that can still be cancelled)."""
        rows = self._rows(account, "orders") or []
        if cancelable_only:
            rows = [r for r in rows if r.get("order_status") in _CANCELABLE]
        return [_obj(_t.XtOrder, r) for r in rows]

    def query_stock_order(self, account, order_id):
        """:return: XtOrder, or None."""
        for row in self._rows(account, "orders") or []:
            if row.get("order_id") == order_id:
                return _obj(_t.XtOrder, row)
        return None

    def query_stock_trades(self, account):
        """:return: list of XtTrade."""
        return [_obj(_t.XtTrade, r) for r in self._rows(account, "trades") or []]

    def query_stock_positions(self, account):
        """:return: list of XtPosition."""
        return [_obj(_t.XtPosition, r) for r in self._rows(account, "positions") or []]

    def query_stock_position(self, account, stock_code):
        """:return: XtPosition, or None."""
        for row in self._rows(account, "positions") or []:
            if row.get("stock_code") == stock_code:
                return _obj(_t.XtPosition, row)
        return None


_SERVED = frozenset(
    name for name, value in vars(XtQuantTrader).items() if callable(value) and not name.startswith("_")
)
