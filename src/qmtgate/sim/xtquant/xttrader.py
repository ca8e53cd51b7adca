"""Simulated ``xtquant.xttrader``: the real 250807 API in front of qmtgate's paper broker.

Every public name of the real module exists with its exact signature (tests/contract checks them
against the wheel). Orders, cancels, queries, subscriptions and pushes are served by
:class:`qmtgate.sim.broker.PaperBroker` over the simulated market; calls the paper broker does not
model (credit/margin books, bank and fund transfers, smart algos, 约券) raise ``NotImplementedError``
naming the call.

The SDK's threading model is reproduced because code that works here must work on a real terminal:

- pushes run on one single-worker executor, in the terminal's order (order 49 -> 50, then per fill
  trade -> order 55/56 -> position -> asset); a callback's exception is swallowed as the real SDK
  does, but logged here (logger ``qmtgate.sim.xttrader``);
- a sync call registers a future that is answered *through that same worker* (query and subscribe
  answers through a second worker when relaxed mode is on; order and cancel answers never). A sync
  call made from inside a callback therefore deadlocks on a real terminal; here it raises
  ``RuntimeError`` at once instead of hanging the test;
- an order error that reaches the client before the answer to its own ``order_stock_async`` is held
  and delivered right after that answer (cancel errors likewise);
- ``on_disconnected`` fires once and the object stays dead: only a new ``XtQuantTrader`` connects.
"""

import asyncio
import contextlib
import itertools
import logging
import threading
import time as _time
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout  # not the builtin before Python 3.11
from typing import Any

from qmtgate.xtapi.xtcallback import XtQuantTraderCallback as XtQuantTraderCallback

from . import _env
from . import xtbson as bson  # noqa: F401  (the real module imports it under this name)
from . import xtconstant as _XTCONST_
from . import xttype as _XTTYPE_

_log = logging.getLogger("qmtgate.sim.xttrader")
_BROKER_LOCK = threading.Lock()
#: How long a sync call whose answer was dropped by fault injection waits when no set_timeout is set
#: (the real SDK would block forever; tests must not).
_DROPPED_WAIT = 3.0


def title(s=None):
    import inspect

    if not s:
        s = inspect.stack()[1].function
    print("-" * 33 + s + "-" * 33)


def cp(s=None):
    import inspect

    st = inspect.stack()
    pos = {"title": st[1].function, "line": st[1].lineno}
    print("-" * 33 + f"{pos}, {s}" + "-" * 33)


def _broker(env: Any) -> Any:
    """The environment's paper broker (created on first use from ``env.broker_config``)."""
    from ..broker import PaperBroker

    with _BROKER_LOCK:
        broker = getattr(env, "broker", None)
        if broker is None:
            broker = PaperBroker(env.market, getattr(env, "broker_config", None))
            env.broker = broker
        return broker


class _NewPurchaseLimit:
    """The native item of query_new_purchase_limit's answer."""

    def __init__(self, key: str, value: int) -> None:
        self.m_strNewPurchaseLimitKey = key
        self.m_nNewPurchaseLimitValue = value


class _SimClient:
    """The simulated native client (``XtQuantAsyncClient``): connection state, sequence numbers,
    and the bridge from the broker's changes to one trader's pushes."""

    def __init__(self, env: Any, path: Any, session: Any) -> None:
        self.env = env
        self.path = path
        self.session = session
        self.broker: Any = None
        self._seq = itertools.count(1)
        self.started = False
        self.connected = False
        self.dead = False  # after a disconnect: one-shot, never again
        self.subscribed: set[tuple[str, int]] = set()
        self.timeout_ms = 0
        self._tls = threading.local()

    def next_seq(self) -> int:
        return next(self._seq)

    @property
    def alive(self) -> bool:
        return self.started and self.connected and not self.dead


class XtQuantTrader:
    def __init__(self, path, session, callback=None):
        """
        :param path: mini版迅投极速交易客户端安装路径下，userdata文件夹具体路径
        :param session: 当前任务执行所属的会话id
        :param callback: 回调方法
        """
        self.async_client = _SimClient(_env.current(), path.encode("gb18030"), session)
        self.callback = callback
        self.connected = False
        self.loop = asyncio.new_event_loop()
        if threading.current_thread().name == "MainThread":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                try:
                    self.oldloop = asyncio.get_event_loop()
                except RuntimeError:
                    self.oldloop = None
        asyncio.set_event_loop(self.loop)
        self.cbs: dict[int, Callable[[Any], Any]] = {}
        self.executor: ThreadPoolExecutor | None = None
        self.resp_executor: ThreadPoolExecutor | None = None
        self.relaxed_resp_order_enabled = False
        self.relaxed_resp_executor: ThreadPoolExecutor | None = None
        self.queuing_order_seq: set[int] = set()
        self.handled_async_order_stock_order_id: set[int] = set()
        self.queuing_order_errors_byseq: dict[int, Any] = {}
        self.queuing_order_errors_byid: dict[int, Any] = {}
        self.handled_async_cancel_order_stock_order_id: set[int] = set()
        self.handled_async_cancel_order_stock_order_sys_id: set[str] = set()
        self.queuing_cancel_errors_by_order_id: dict[int, Any] = {}
        self.queuing_cancel_errors_by_order_sys_id: dict[str, Any] = {}
        self._push_thread: int | None = None
        self._resp_thread: int | None = None
        self._dropped: set[int] = set()

    # ------------------------------------------------------------------ executors (private)

    def _run_task(self, fn: Callable[..., Any], args: tuple, relaxed: bool) -> None:
        if relaxed:
            self._resp_thread = threading.get_ident()
        else:
            self._push_thread = threading.get_ident()
        try:
            fn(*args)
        except Exception:  # the real SDK loses it in the executor's future; we log it
            _log.exception(
                "xttrader callback %s raised (swallowed, as the real SDK does)", getattr(fn, "__name__", fn)
            )

    def _submit(self, executor: ThreadPoolExecutor | None, fn: Callable[..., Any], *args: Any) -> None:
        if executor is None:
            return
        relaxed = executor is not self.executor
        with contextlib.suppress(RuntimeError):  # shut down: nothing is delivered any more
            executor.submit(self._run_task, fn, args, relaxed)

    def _push(self, fn: Callable[..., Any], *args: Any) -> None:
        buffer = getattr(self.async_client._tls, "buffer", None)
        if buffer is not None:  # answering a request on this thread: its answer goes first
            buffer.append((fn, args))
        else:
            self._submit(self.executor, fn, *args)

    def _guard_sync(self, name: str, via_push: bool) -> None:
        if self.executor is None:
            raise RuntimeError(f"xttrader.{name}(): call XtQuantTrader.start() first")
        me = threading.get_ident()
        answered_by = (
            self._resp_thread if (self.relaxed_resp_order_enabled and not via_push) else self._push_thread
        )
        if me == answered_by:
            raise RuntimeError(
                f"xttrader.{name}() called from inside a trader callback: its answer is delivered by the "
                "callback thread itself, so the real SDK deadlocks here. Use the _async variant"
                + ("" if via_push else " or set_relaxed_response_order_enabled(True)")
                + " (order and cancel answers always travel through the push thread)."
            )

    def _answer(
        self, seq: int, compute: Callable[[], Any], failure: Any, via_push: bool, order_op: bool = False
    ) -> None:
        """Compute a request's answer (the terminal's work, on the caller's thread) and deliver it
        through the push worker (or the relaxed one), before the pushes the request caused."""
        client = self.async_client
        if not client.alive:
            resp = failure
            pushes: list = []
        else:
            client._tls.buffer = []
            try:
                resp = compute()
            finally:
                pushes, client._tls.buffer = client._tls.buffer, None
        executor = self.executor if via_push else self.resp_executor
        faults = client.broker.faults if client.broker is not None else None
        if order_op and faults is not None and client.alive:
            if faults.take_drop():
                self._dropped.add(seq)
                _log.warning(
                    "xttrader (simulated): the answer to request %s was dropped by fault injection", seq
                )
                for fn, args in pushes:
                    self._submit(self.executor, fn, *args)
                return
            delay = faults.response_delay
            if delay > 0:
                for fn, args in pushes:
                    self._submit(self.executor, fn, *args)
                timer = threading.Timer(delay, self._submit, (executor, self._deliver, seq, resp))
                timer.daemon = True
                timer.start()
                return
        self._submit(executor, self._deliver, seq, resp)
        for fn, args in pushes:
            self._submit(self.executor, fn, *args)

    def _deliver(self, seq: int, resp: Any) -> None:
        callback = self.cbs.pop(seq, None)
        if callback is not None:
            callback(resp)

    def _sync(self, name: str, compute: Callable[[int], Any], failure: Any) -> Any:
        self._guard_sync(name, False)
        seq = self.async_client.next_seq()
        future: Future = Future()
        self.cbs[seq] = future.set_result
        self._answer(seq, lambda: compute(seq), failure, via_push=False)
        return future.result()

    def _async(
        self,
        compute: Callable[[int], Any],
        failure: Any,
        callback: Callable[[Any], Any],
        via_push: bool = False,
        order_op: bool = False,
    ) -> int:
        seq = self.async_client.next_seq()
        self.cbs[seq] = callback
        if order_op:
            self.queuing_order_seq.add(seq)
        self._answer(seq, lambda: compute(seq), failure, via_push, order_op)
        return seq

    # ------------------------------------------------------------------ broker -> pushes (private)

    def _on_broker_event(self, account_id: str, kind: str, payload: Any) -> None:
        client = self.async_client
        if not client.alive or (account_id, payload.account_type) not in client.subscribed:
            return
        handler = {
            "order": self._push_order,
            "trade": self._push_trade,
            "position": self._push_position,
            "asset": self._push_asset,
            "order_error": self._push_order_error,
            "cancel_error": self._push_cancel_error,
        }[kind]
        self._push(handler, payload)

    def _push_order(self, data: Any) -> None:
        self.callback.on_stock_order(data)

    def _push_trade(self, data: Any) -> None:
        self.callback.on_stock_trade(data)

    def _push_position(self, data: Any) -> None:
        self.callback.on_stock_position(data)

    def _push_asset(self, data: Any) -> None:
        self.callback.on_stock_asset(data)

    def _push_order_error(self, data: Any) -> None:
        if data.seq not in self.queuing_order_seq or data.order_id in self.handled_async_order_stock_order_id:
            self.handled_async_order_stock_order_id.discard(data.order_id)
            self.callback.on_order_error(data)
        else:  # its order's answer has not arrived yet: hold it until then
            self.queuing_order_errors_byseq[data.seq] = data
            self.queuing_order_errors_byid[data.order_id] = data

    def _push_cancel_error(self, data: Any) -> None:
        if data.order_id in self.handled_async_cancel_order_stock_order_id:
            self.handled_async_cancel_order_stock_order_id.discard(data.order_id)
            self.callback.on_cancel_error(data)
        elif data.order_sysid in self.handled_async_cancel_order_stock_order_sys_id:
            self.handled_async_cancel_order_stock_order_sys_id.discard(data.order_sysid)
            self.callback.on_cancel_error(data)
        else:
            self.queuing_cancel_errors_by_order_id[data.order_id] = data
            self.queuing_cancel_errors_by_order_sys_id[data.order_sysid] = data

    def _on_order_response(
        self, seq: int, order_id: int, strategy_name: str, order_remark: str, error_msg: str, account_id: str
    ) -> None:
        callback = self.cbs.pop(seq, None)
        if callback is None:
            return
        resp = _XTTYPE_.XtOrderResponse(account_id, order_id, strategy_name, order_remark, error_msg, seq)
        callback(resp)
        self.queuing_order_seq.discard(seq)
        e = self.queuing_order_errors_byseq.pop(seq, None)
        if not e:
            e = self.queuing_order_errors_byid.pop(order_id, None)
        if e is not None:
            self.callback.on_order_error(e)
        else:
            self.handled_async_order_stock_order_id.add(order_id)

    def _on_cancel_response(self, seq: int, account_id: str, result: tuple) -> None:
        callback = self.cbs.pop(seq, None)
        if callback is None:
            return
        cancel_result, order_id, order_sysid, error_msg = result
        resp = _XTTYPE_.XtCancelOrderResponse(
            account_id, cancel_result, order_id, order_sysid, seq, error_msg
        )
        callback(resp)
        if not resp.order_sysid:
            e = self.queuing_cancel_errors_by_order_id.pop(resp.order_id, None)
            if e is not None:
                self.handled_async_cancel_order_stock_order_id.discard(resp.order_id)
                self.callback.on_cancel_error(e)
            else:
                self.handled_async_cancel_order_stock_order_id.add(resp.order_id)
        else:
            e = self.queuing_cancel_errors_by_order_sys_id.pop(resp.order_sysid, None)
            if e is not None:
                self.handled_async_cancel_order_stock_order_sys_id.discard(resp.order_sysid)
                self.callback.on_cancel_error(e)
            else:
                self.handled_async_cancel_order_stock_order_sys_id.add(resp.order_sysid)

    def _on_disconnected(self, status: str) -> None:
        client = self.async_client
        if status != "disconnected" or client.dead or not client.connected:
            return
        client.dead = True
        client.connected = False
        client.broker.sessions.discard(client.session)
        self.connected = False
        self._submit(self.executor, self._push_disconnected)

    def _push_disconnected(self) -> None:
        if self.callback:
            self.callback.on_disconnected()

    # ------------------------------------------------------------------ generic ops (real names)

    def common_op_async_with_seq(self, seq, callable, callback):
        self.cbs[seq] = callback
        callable[0](*callable[1:])
        return seq

    def set_timeout(self, timeout=0):
        self.async_client.timeout_ms = int(timeout)

    def common_op_sync_with_seq(self, seq, callable):
        future: Future = Future()
        self.cbs[seq] = lambda resp: future.set_result(resp)
        callable[0](*callable[1:])
        return future.result()

    # ------------------------------------------------------------------ lifecycle

    def __del__(self):
        if threading.current_thread().name == "MainThread" and hasattr(self, "oldloop"):
            with contextlib.suppress(Exception):
                asyncio.set_event_loop(self.oldloop)

    def register_callback(self, callback):
        self.callback = callback

    def start(self):
        self.async_client.started = True
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xttrader-push")
        self.relaxed_resp_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xttrader-resp")
        self.resp_executor = self.relaxed_resp_executor if self.relaxed_resp_order_enabled else self.executor

    def stop(self):
        client = self.async_client
        client.started = False
        if client.broker is not None:
            if client.connected:
                client.broker.sessions.discard(client.session)
            client.broker.remove_listener(self._on_broker_event)
            client.broker.faults.remove_listener(self._on_disconnected)
        if not self.loop.is_closed():  # (left open, as the real SDK: it stays the thread's event loop)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.executor.shutdown(wait=True)
        self.relaxed_resp_executor.shutdown(wait=True)

    def connect(self):
        client = self.async_client
        if client.dead or not client.started:
            return -1  # one-shot: a disconnected trader never connects again
        if client.connected:
            return 0
        broker = _broker(client.env)
        if broker.faults.take_refuse():
            return -1
        with _BROKER_LOCK:  # a session id is one client's: a second connect with it fails
            if client.session in broker.sessions:
                return -1
            broker.sessions.add(client.session)
        client.broker = broker
        client.connected = True
        broker.add_listener(self._on_broker_event)
        broker.faults.add_listener(self._on_disconnected)
        if getattr(client.env.market.clock, "mode", "manual") != "manual":
            broker.start_pump()
        self.connected = True
        return 0

    def sleep(self, time):
        _time.sleep(time)

    def run_forever(self):
        while True:
            _time.sleep(2)

    def set_relaxed_response_order_enabled(self, enabled):
        self.relaxed_resp_order_enabled = enabled
        self.resp_executor = self.relaxed_resp_executor if self.relaxed_resp_order_enabled else self.executor

    def subscribe(self, account):
        key = (account.account_id, account.account_type)

        def do(seq: int) -> int:
            if self.async_client.broker.account(*key) is None:
                return -1
            self.async_client.subscribed.add(key)
            return 0

        return self._sync("subscribe", do, -1)

    def unsubscribe(self, account):
        key = (account.account_id, account.account_type)

        def do(seq: int) -> int:
            if key not in self.async_client.subscribed:
                return -1
            self.async_client.subscribed.discard(key)
            return 0

        return self._sync("unsubscribe", do, -1)

    # ------------------------------------------------------------------ orders

    def _order_request(
        self,
        account: Any,
        stock_code: Any,
        order_type: Any,
        order_volume: Any,
        price_type: Any,
        price: Any,
        strategy_name: Any,
        order_remark: Any,
    ) -> Callable[[int], Any]:
        account_id, account_type = account.account_id, account.account_type
        if (
            not isinstance(stock_code, str)
            or not isinstance(strategy_name, str)
            or not isinstance(order_remark, str)
        ):
            raise TypeError("order_stock: stock_code, strategy_name and order_remark must be str")
        volume = int(order_volume)
        price = float(price)

        def do(seq: int) -> tuple:
            order_id, msg = self.async_client.broker.place_order(
                account_id, account_type, stock_code, int(order_type), volume, int(price_type), price,
                strategy_name, order_remark, seq,
            )  # fmt: skip
            return order_id, msg

        return do

    def _order_answer(
        self, seq: int, resp: Any, account_id: str, strategy_name: str, order_remark: str
    ) -> None:
        order_id, msg = resp if isinstance(resp, tuple) else (-1, "not connected")
        self._on_order_response(seq, order_id, strategy_name, order_remark, msg, account_id)

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
        """
        :return: 下单请求序号 seq (>0); the answer arrives as on_order_stock_async_response(XtOrderResponse)
        """
        do = self._order_request(
            account, stock_code, order_type, order_volume, price_type, price, strategy_name, order_remark
        )
        callback = self.callback.on_order_stock_async_response
        seq = self.async_client.next_seq()
        self.queuing_order_seq.add(seq)
        self.cbs[seq] = callback
        self._answer_order(seq, do, account.account_id, strategy_name, order_remark)
        return seq

    def _answer_order(
        self, seq: int, do: Callable[[int], Any], account_id: str, strategy_name: str, order_remark: str
    ) -> None:
        # the answer is built on the push worker (as the SDK's on_push_OrderStockAsyncResponse)
        real_cb = self.cbs.pop(seq)
        self.cbs[seq] = lambda resp: self._finish_order(
            seq, real_cb, resp, account_id, strategy_name, order_remark
        )
        self._answer(seq, lambda: do(seq), (-1, "not connected"), via_push=True, order_op=True)

    def _finish_order(
        self,
        seq: int,
        real_cb: Callable[[Any], Any],
        resp: Any,
        account_id: str,
        strategy_name: str,
        order_remark: str,
    ) -> None:
        self.cbs[seq] = real_cb
        self._order_answer(seq, resp, account_id, strategy_name, order_remark)

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
        """
        :return: 订单编号 order_id (>0), or -1 when the order failed (on_order_error also fires)
        """
        self._guard_sync("order_stock", True)
        do = self._order_request(
            account, stock_code, order_type, order_volume, price_type, price, strategy_name, order_remark
        )
        seq = self.async_client.next_seq()
        self.queuing_order_seq.add(seq)
        future: Future = Future()
        self.cbs[seq] = future.set_result
        self._answer_order(seq, do, account.account_id, strategy_name, order_remark)
        resp = self._wait_order_answer(seq, future)
        return -1 if resp is None else resp.order_id

    def _wait_order_answer(self, seq: int, future: Future) -> Any:
        """Block as the real SDK does; an answer dropped by fault injection gives -1 after the
        set_timeout time (default 3 s) instead of blocking forever (the order may be live)."""
        while True:
            try:
                return future.result(timeout=0.05)
            except FutureTimeout:
                if seq in self._dropped:
                    break
        wait = self.async_client.timeout_ms / 1000 if self.async_client.timeout_ms > 0 else _DROPPED_WAIT
        try:
            return future.result(timeout=wait)
        except FutureTimeout:
            self.cbs.pop(seq, None)
            self._dropped.discard(seq)
            _log.warning("xttrader (simulated): no answer to order request %s; the order may be live", seq)
            return None

    def _cancel_request(
        self, account: Any, order_id: Any = None, market: Any = None, sysid: Any = None
    ) -> Callable[[int], Any]:
        account_id, account_type = account.account_id, account.account_type
        if market is not None and isinstance(market, str):
            market = _XTCONST_.MARKET_STR_TO_ENUM_MAPPING.get(market, -1)

        def do(seq: int) -> tuple:
            return self.async_client.broker.cancel_order(account_id, account_type, order_id, market, sysid)

        return do

    def _cancel_sync(self, name: str, account: Any, do: Callable[[int], Any]) -> int:
        self._guard_sync(name, True)
        seq = self.async_client.next_seq()
        future: Future = Future()
        self._answer_cancel(seq, future.set_result, account.account_id, do)
        resp = self._wait_order_answer(seq, future)
        return -1 if resp is None else resp.cancel_result

    def _answer_cancel(
        self, seq: int, callback: Callable[[Any], Any], account_id: str, do: Callable[[int], Any]
    ) -> None:
        def deliver(resp: Any) -> None:
            self.cbs[seq] = callback
            result = resp if isinstance(resp, tuple) else (-1, -1, "", "not connected")
            self._on_cancel_response(seq, account_id, result)

        self.cbs[seq] = deliver
        self._answer(seq, lambda: do(seq), (-1, -1, "", "not connected"), via_push=True, order_op=True)

    def cancel_order_stock(self, account, order_id):
        """:return: 0 the cancel request was sent, -1 it failed"""
        return self._cancel_sync(
            "cancel_order_stock", account, self._cancel_request(account, order_id=order_id)
        )

    def cancel_order_stock_async(self, account, order_id):
        """:return: seq; the answer arrives as on_cancel_order_stock_async_response"""
        do = self._cancel_request(account, order_id=order_id)
        seq = self.async_client.next_seq()
        self._answer_cancel(seq, self.callback.on_cancel_order_stock_async_response, account.account_id, do)
        return seq

    def cancel_order_stock_sysid(self, account, market, sysid):
        """:return: 0 the cancel request was sent, -1 it failed"""
        return self._cancel_sync(
            "cancel_order_stock_sysid", account, self._cancel_request(account, market=market, sysid=sysid)
        )

    def cancel_order_stock_sysid_async(self, account, market, sysid):
        """:return: seq; the answer arrives as on_cancel_order_stock_async_response"""
        do = self._cancel_request(account, market=market, sysid=sysid)
        seq = self.async_client.next_seq()
        self._answer_cancel(seq, self.callback.on_cancel_order_stock_async_response, account.account_id, do)
        return seq

    # ------------------------------------------------------------------ queries

    def _broker_call(self, fn: Callable[[Any], Any]) -> Callable[[int], Any]:
        return lambda seq: fn(self.async_client.broker)

    def query_account_infos(self):
        """:return: list of XtAccountInfo"""
        return self._sync("query_account_infos", self._broker_call(_account_infos), [])

    query_account_info = query_account_infos

    def query_account_infos_async(self, callback):
        return self._async(self._broker_call(_account_infos), [], callback)

    def query_account_status(self):
        """:return: list of XtAccountStatus"""
        return self._sync("query_account_status", self._broker_call(_account_status), [])

    def query_account_status_async(self, callback):
        return self._async(self._broker_call(_account_status), [], callback)

    def query_stock_asset(self, account):
        """:return: XtAsset or None"""
        key = (account.account_id, account.account_type)
        resp = self._sync("query_stock_asset", self._broker_call(lambda b: b.query_asset(*key)), None)
        if resp and len(resp):
            return resp[0]
        return None

    def query_stock_asset_async(self, account, callback):
        key = (account.account_id, account.account_type)

        def _cb(resp):
            callback(resp[0] if resp else None)

        self._async(self._broker_call(lambda b: b.query_asset(*key)), None, _cb)

    def query_stock_order(self, account, order_id):
        """:return: XtOrder or None"""
        key = (account.account_id, account.account_type)
        resp = self._sync(
            "query_stock_order", self._broker_call(lambda b: b.query_orders(*key, order_id=order_id)), None
        )
        if resp and len(resp):
            return resp[0]
        return None

    def query_stock_orders(self, account, cancelable_only=False):
        """:return: today's XtOrder list"""
        key = (account.account_id, account.account_type)
        return self._sync(
            "query_stock_orders",
            self._broker_call(lambda b: b.query_orders(*key, bool(cancelable_only))),
            None,
        )

    def query_stock_orders_async(self, account, callback, cancelable_only=False):
        key = (account.account_id, account.account_type)
        return self._async(
            self._broker_call(lambda b: b.query_orders(*key, bool(cancelable_only))), None, callback
        )

    def query_stock_trades(self, account):
        """:return: today's XtTrade list"""
        key = (account.account_id, account.account_type)
        return self._sync("query_stock_trades", self._broker_call(lambda b: b.query_trades(*key)), None)

    def query_stock_trades_async(self, account, callback):
        key = (account.account_id, account.account_type)
        return self._async(self._broker_call(lambda b: b.query_trades(*key)), None, callback)

    def query_stock_position(self, account, stock_code):
        """:return: XtPosition or None"""
        key = (account.account_id, account.account_type)
        resp = self._sync(
            "query_stock_position", self._broker_call(lambda b: b.query_positions(*key, stock_code)), None
        )
        if resp and len(resp):
            return resp[0]
        return None

    def query_stock_positions(self, account):
        """:return: XtPosition list"""
        key = (account.account_id, account.account_type)
        return self._sync("query_stock_positions", self._broker_call(lambda b: b.query_positions(*key)), None)

    def query_stock_positions_async(self, account, callback):
        key = (account.account_id, account.account_type)
        return self._async(self._broker_call(lambda b: b.query_positions(*key)), None, callback)

    def query_new_purchase_limit(self, account):
        """:return: {'KCB': n, 'SH': n, 'SZ': n} shares"""
        key = (account.account_id, account.account_type)
        items = self._sync(
            "query_new_purchase_limit", self._broker_call(lambda b: _purchase_limits(b, *key)), []
        )
        return {item.m_strNewPurchaseLimitKey: item.m_nNewPurchaseLimitValue for item in items or []}

    def query_new_purchase_limit_async(self, account, callback):
        key = (account.account_id, account.account_type)
        return self._async(self._broker_call(lambda b: _purchase_limits(b, *key)), [], callback)

    def query_ipo_data(self):
        """:return: {code: {...}}; the simulated market has no IPO calendar, so always {}"""
        items = self._sync("query_ipo_data", lambda seq: [], [])
        return {item.m_strIPOCode: {} for item in items or []}

    def query_ipo_data_async(self, callback):
        return self._async(lambda seq: [], [], callback)

    # ------------------------------------------------------------------ not simulated

    def _not_simulated(self, name: str) -> Any:
        raise NotImplementedError(
            f"xttrader.{name} is not simulated by qmtgate's paper broker (stock orders, cancels and "
            "queries are; margin books, transfers, smart algos and 约券 are not)"
        )

    def query_credit_detail(self, account):
        return self._not_simulated("query_credit_detail")

    def query_credit_detail_async(self, account, callback):
        return self._not_simulated("query_credit_detail_async")

    def query_stk_compacts(self, account):
        return self._not_simulated("query_stk_compacts")

    def query_stk_compacts_async(self, account, callback):
        return self._not_simulated("query_stk_compacts_async")

    def query_credit_subjects(self, account):
        return self._not_simulated("query_credit_subjects")

    def query_credit_subjects_async(self, account, callback):
        return self._not_simulated("query_credit_subjects_async")

    def query_credit_slo_code(self, account):
        return self._not_simulated("query_credit_slo_code")

    def query_credit_slo_code_async(self, account, callback):
        return self._not_simulated("query_credit_slo_code_async")

    def query_credit_assure(self, account):
        return self._not_simulated("query_credit_assure")

    def query_credit_assure_async(self, account, callback):
        return self._not_simulated("query_credit_assure_async")

    def fund_transfer(self, account, transfer_direction, price):
        return self._not_simulated("fund_transfer")

    def secu_transfer(self, account, transfer_direction, stock_code, volume, transfer_type):
        return self._not_simulated("secu_transfer")

    def query_com_fund(self, account):
        return self._not_simulated("query_com_fund")

    def query_com_position(self, account):
        return self._not_simulated("query_com_position")

    def smt_query_quoter(self, account):
        return self._not_simulated("smt_query_quoter")

    def smt_negotiate_order_async(
        self, account, src_group_id, order_code, date, amount, apply_rate, dict_param={}
    ):
        return self._not_simulated("smt_negotiate_order_async")

    def smt_appointment_order_async(self, account, order_code, date, amount, apply_rate):
        return self._not_simulated("smt_appointment_order_async")

    def smt_appointment_cancel_async(self, account, apply_id):
        return self._not_simulated("smt_appointment_cancel_async")

    def smt_query_order(self, account):
        return self._not_simulated("smt_query_order")

    def smt_query_compact(self, account):
        return self._not_simulated("smt_query_compact")

    def smt_compact_renewal_async(
        self, account, cash_compact_id, order_code, defer_days, defer_num, apply_rate
    ):
        return self._not_simulated("smt_compact_renewal_async")

    def smt_compact_return_async(self, account, src_group_id, cash_compact_id, order_code, occur_amount):
        return self._not_simulated("smt_compact_return_async")

    def query_position_statistics(self, account):
        return self._not_simulated("query_position_statistics")

    def export_data(self, account, result_path, data_type, start_time=None, end_time=None, user_param={}):
        return self._not_simulated("export_data")

    def query_data(self, account, result_path, data_type, start_time=None, end_time=None, user_param={}):
        return self._not_simulated("query_data")

    def sync_transaction_from_external(self, operation, data_type, account, deal_list):
        return self._not_simulated("sync_transaction_from_external")

    def bank_transfer_in(self, account, bank_no, bank_account, balance, bank_pwd="", fund_pwd=""):
        return self._not_simulated("bank_transfer_in")

    def bank_transfer_in_async(self, account, bank_no, bank_account, balance, bank_pwd="", fund_pwd=""):
        return self._not_simulated("bank_transfer_in_async")

    def bank_transfer_out(self, account, bank_no, bank_account, balance, bank_pwd="", fund_pwd=""):
        return self._not_simulated("bank_transfer_out")

    def bank_transfer_out_async(self, account, bank_no, bank_account, balance, bank_pwd="", fund_pwd=""):
        return self._not_simulated("bank_transfer_out_async")

    def query_bank_info(self, account):
        return self._not_simulated("query_bank_info")

    def query_bank_amount(self, account, bank_no, bank_account, bank_pwd):
        return self._not_simulated("query_bank_amount")

    def query_bank_transfer_stream(self, account, start_date, end_date, bank_no="", bank_account=""):
        return self._not_simulated("query_bank_transfer_stream")

    def query_secu_account(self, account):
        return self._not_simulated("query_secu_account")

    def ctp_transfer_option_to_future(self, opt_account_id, ft_account_id, balance):
        return self._not_simulated("ctp_transfer_option_to_future")

    def ctp_transfer_option_to_future_async(self, opt_account_id, ft_account_id, balance):
        return self._not_simulated("ctp_transfer_option_to_future_async")

    def ctp_transfer_future_to_option(self, opt_account_id, ft_account_id, balance):
        return self._not_simulated("ctp_transfer_future_to_option")

    def ctp_transfer_future_to_option_async(self, opt_account_id, ft_account_id, balance):
        return self._not_simulated("ctp_transfer_future_to_option_async")

    def get_smart_algo_param(self, algo_name_list):
        return self._not_simulated("get_smart_algo_param")

    def smart_algo_order_async(
        self,
        account,
        stock_code,
        order_type,
        order_volume,
        price_type,
        price,
        strategy_name,
        order_remark,
        algo_name,
        start_time,
        end_time,
        algo_param,
    ):
        return self._not_simulated("smart_algo_order_async")

    def query_smart_algo_task(self, account):
        return self._not_simulated("query_smart_algo_task")

    def cancel_smart_algo_task_async(self, account, task_id):
        return self._not_simulated("cancel_smart_algo_task_async")


def _account_infos(broker: Any) -> list:
    from ..broker.objects import XtAccountInfo

    return [XtAccountInfo(a.account_id, a.account_type) for a in broker.account_list()]


def _account_status(broker: Any) -> list:
    return [
        _XTTYPE_.XtAccountStatus(a.account_id, a.account_type, _XTCONST_.ACCOUNT_STATUS_OK)
        for a in broker.account_list()
    ]


def _purchase_limits(broker: Any, account_id: str, account_type: int) -> list:
    """IPO subscription quotas from the account's holdings (SH: 1,000 shares per 10,000 元 of SH
    market value; STAR: 500 per 5,000 元 of SH value; SZ: 500 per 5,000 元 of SZ value); the real
    rule averages the last 20 sessions, the simulator uses today's value."""
    acct = broker.account(account_id, account_type)
    if acct is None:
        return []
    value = {"SH": 0, "SZ": 0}
    for p in acct.positions.values():
        ins = broker.instrument(p.stock_code)
        if ins is not None and ins.market in value and not ins.is_fund:
            value[ins.market] += p.volume * broker.last_price_li(ins)
    sh, sz = value["SH"] // 1000, value["SZ"] // 1000  # 元
    return [
        _NewPurchaseLimit("KCB", sh // 5000 * 500),
        _NewPurchaseLimit("SH", sh // 10000 * 1000),
        _NewPurchaseLimit("SZ", sz // 5000 * 500),
    ]
