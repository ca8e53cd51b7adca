"""One ``XtQuantTrader`` owned by one thread.

Why a thread of its own: the SDK's constructor sets an asyncio event loop on the constructing thread and
its sync calls block; it must not run on the gateway's event loop nor on the xtdata executor. Every call
into the trader goes through :meth:`TradingLane.call` (run on the lane thread). SDK callbacks arrive on
the SDK's push thread: they only convert the object to a dict and hand it on (``on_push``); they never
call a sync SDK function (the real SDK deadlocks when a callback does).

Orders use ``order_stock_async``: the lane returns the request's ``seq`` at once and a future the SDK's
``on_order_stock_async_response`` resolves; the service waits for it with a timeout and, when it does
not come, reports the outcome as ``unknown`` (the order may be live) instead of guessing.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import platform
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from queue import SimpleQueue
from typing import Any

from qmtgate.config import Settings, TradingSettings
from qmtgate.source.trading.errors import ConnectError

logger = logging.getLogger(__name__)

PushHandler = Callable[[str, dict[str, Any]], None]
_SESSION_COUNTER = itertools.count()


def sdk_object_to_dict(obj: Any) -> dict[str, Any]:
    """The public attributes of an xttype object (XtOrder, XtTrade, ...) as a plain dict."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return dict(obj)
    return {k: v for k, v in vars(obj).items() if not k.startswith("_") and not callable(v)}


class NotSent(Exception):
    """The order certainly did not reach the SDK."""


class _Callback:
    """The XtQuantTraderCallback the lane registers: converts and forwards, never calls the SDK."""

    def __init__(self, lane: TradingLane) -> None:
        self._lane = lane

    def on_disconnected(self) -> None:
        self._lane.connected = False
        self._lane.forward("disconnected", {})

    def on_account_status(self, status: Any) -> None:
        self._lane.forward("account_status", sdk_object_to_dict(status))

    def on_stock_asset(self, asset: Any) -> None:
        self._lane.forward("asset", sdk_object_to_dict(asset))

    def on_stock_order(self, order: Any) -> None:
        self._lane.forward("order", sdk_object_to_dict(order))

    def on_stock_trade(self, trade: Any) -> None:
        self._lane.forward("trade", sdk_object_to_dict(trade))

    def on_stock_position(self, position: Any) -> None:
        self._lane.forward("position", sdk_object_to_dict(position))

    def on_order_error(self, error: Any) -> None:
        self._lane.forward("order_error", sdk_object_to_dict(error))

    def on_cancel_error(self, error: Any) -> None:
        self._lane.forward("cancel_error", sdk_object_to_dict(error))

    def on_order_stock_async_response(self, response: Any) -> None:
        self._lane.resolve(response.seq, sdk_object_to_dict(response))

    def on_cancel_order_stock_async_response(self, response: Any) -> None:
        self._lane.resolve(response.seq, sdk_object_to_dict(response))

    def on_connected(self) -> None:  # never called by the 250807 SDK; kept for completeness
        self._lane.forward("connected", {})


def simulator_chosen(settings: Settings, system: str | None = None) -> bool:
    """The simulator is the gateway's source by choice: ``--source sim``, or a machine where the real
    xtquant cannot exist (it imports only on Windows), so ``auto`` can only mean the simulator."""
    return settings.source == "sim" or (system or platform.system()) != "Windows"


#: the folder a trader on the simulator is given when ``trading.userdata_path`` is unset (the simulated
#: SDK keeps no files there)
SIM_USERDATA_PATH = "userdata_mini"


def settings_problem(
    settings: TradingSettings, simulated: bool, paper_default: bool = False
) -> ConnectError | None:
    """The configuration mistake that keeps the trader from connecting (None when there is none): the
    account id, and the userdata path (set, miniQMT's ``userdata_mini``, a folder that exists; any path
    on the simulator). The lane checks it at every connect; ``qmtgate doctor`` before a start.

    ``paper_default``: the simulator was chosen (``--source sim``, or a machine where xtquant cannot
    exist), so the account id may stay unset and the trader uses the paper broker's one account
    (``[sim] paper_accounts``): ``qmtgate serve --enable-trading`` paper-trades on a fresh machine. A
    Windows gateway that fell back to the simulator, and a real QMT, never get a default: the account to
    trade is always named there."""
    if not settings.account_id and not (simulated and paper_default):
        hint = " (the simulator's paper account is used only with --source sim)" if simulated else ""
        return ConnectError("account_id_missing", f"trading.account_id (MINIQMT_ACCOUNT_ID) is not set{hint}")
    if not settings.userdata_path:
        if simulated:
            return None
        return ConnectError(
            "userdata_path_missing", "trading.userdata_path (MINIQMT_USERDATA_PATH) is not set"
        )
    path = Path(settings.userdata_path)
    if path.name.lower() != "userdata_mini":
        return ConnectError(
            "userdata_path_not_userdata_mini",
            f"trading.userdata_path must be miniQMT's userdata_mini folder, not {str(path)!r}",
        )
    if not simulated and not path.is_dir():
        return ConnectError("userdata_path_not_found", f"no such folder: {str(path)!r}")
    return None


class TradingLane:
    """The trader, its thread, and the bridge from its callbacks to ``on_push``."""

    def __init__(self, settings: TradingSettings, on_push: PushHandler, paper_default: bool = False) -> None:
        self.settings = settings
        self.paper_default = paper_default  # see settings_problem
        self._on_push = on_push
        # SimpleQueue: a C queue whose get() wakes on one lock, a few tens of microseconds sooner per call
        # than Queue (a Condition), and every order makes one trip
        self._queue: SimpleQueue[tuple[Callable[[], Any], Future] | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pending: dict[int, Future] = {}
        self._early: dict[int, dict[str, Any]] = {}
        self._lock = threading.RLock()  # re-entrant: a sync callback on this thread may resolve
        self.trader: Any = None
        self.account: Any = None
        self.session_id: int | None = None
        self.connected = False
        self.simulated = False
        self.xtconstant: Any = None
        self.xtdata: Any = None

    # ------------------------------------------------------------------ thread

    def start(self) -> None:
        """Start the thread and connect + subscribe on it; raises :class:`ConnectError` on failure."""
        self._thread = threading.Thread(target=self._run, name="qmtgate-trading", daemon=True)
        self._thread.start()
        self.call(self._connect).result(timeout=60)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the waiting caller
                future.set_exception(exc)

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run ``fn`` on the lane thread; the returned future has its result."""
        future: Future = Future()
        self._queue.put((fn, future))
        return future

    def stop(self) -> None:
        if self._thread is None:
            return

        def shutdown() -> None:
            if self.trader is not None:
                try:
                    self.trader.stop()
                except Exception:
                    logger.exception("XtQuantTrader.stop() failed")

        self.call(shutdown)
        self._queue.put(None)
        self._thread.join(timeout=30)
        self._thread = None

    # ------------------------------------------------------------------ connect (lane thread)

    def _new_session(self) -> int:
        if self.settings.session_policy == "fixed":
            return self.settings.session_id
        return (int(time.time()) + next(_SESSION_COUNTER)) % 2_000_000_000

    def _connect(self) -> None:
        xttrader = importlib.import_module("xtquant.xttrader")
        self.xtconstant = importlib.import_module("xtquant.xtconstant")
        self.xtdata = importlib.import_module("xtquant.xtdata")
        self.simulated = "qmtgate" in (getattr(xttrader, "__file__", "") or "")
        problem = settings_problem(self.settings, self.simulated, self.paper_default)
        if problem is not None:
            raise problem
        self._open()

    def _paper_account(self, trader: Any) -> str:
        """The simulated broker's account, when it has exactly one (the default ``[sim] paper_accounts``)."""
        ids = sorted({str(info.account_id) for info in trader.query_account_infos() or []})
        if len(ids) != 1:
            raise ConnectError(
                "account_id_missing",
                "trading.account_id (MINIQMT_ACCOUNT_ID) is not set and the simulator's paper broker has "
                f"{len(ids)} accounts ({', '.join(ids) or 'none'}): name one",
            )
        logger.warning(
            "trading: trading.account_id is not set; using the simulator's paper account %s", ids[0]
        )
        return ids[0]

    def reopen(self) -> None:
        """On the lane thread, after ``on_disconnected``: the old trader is dead for good (the SDK's
        rule), so stop it and connect a new one with a new session id."""
        old, self.trader = self.trader, None
        self.connected = False
        if old is not None:
            try:
                old.stop()
            except Exception:
                logger.exception("stopping the disconnected XtQuantTrader failed")
        self._open()

    def _open(self) -> None:
        xttrader = importlib.import_module("xtquant.xttrader")
        xttype = importlib.import_module("xtquant.xttype")
        s = self.settings
        path = Path(s.userdata_path or SIM_USERDATA_PATH)  # unset only on the simulator (settings_problem)
        self.session_id = self._new_session()
        trader = xttrader.XtQuantTrader(str(path), self.session_id)  # constructed on this thread
        trader.register_callback(_Callback(self))
        trader.start()
        self.trader = trader
        if trader.connect() != 0:
            raise ConnectError(
                "qmt_not_connected",
                "XtQuantTrader.connect() failed: QMT/miniQMT is not running or not logged in "
                f"(or session id {self.session_id} is already in use)",
            )
        if not s.account_id:  # only on the simulator (settings_problem): its paper account
            s = self.settings = s.model_copy(update={"account_id": self._paper_account(trader)})
        self.account = xttype.StockAccount(s.account_id, s.account_type)
        if trader.subscribe(self.account) != 0:
            infos = trader.query_account_infos() or []
            types = {getattr(i, "account_type", None) for i in infos if i.account_id == s.account_id}
            if types:
                raise ConnectError(
                    "account_type_mismatch",
                    f"account {s.account_id} exists but not as {s.account_type} (types {sorted(types)})",
                )
            raise ConnectError("account_not_found", f"account {s.account_id} is not logged in on this QMT")
        self.connected = True

    # ------------------------------------------------------------------ pushes and answers

    def forward(self, kind: str, data: dict[str, Any]) -> None:
        try:
            self._on_push(kind, data)
        except Exception:
            logger.exception("trading push handler failed for %s", kind)

    def resolve(self, seq: int, response: dict[str, Any]) -> None:
        with self._lock:
            future = self._pending.pop(seq, None)
            if future is None:
                self._early[seq] = response
        if future is not None:
            future.set_result(response)

    def forget(self, seq: int) -> None:
        with self._lock:
            self._pending.pop(seq, None)

    # ------------------------------------------------------------------ requests (lane thread)

    def order_async(
        self, code: str, side: int, volume: int, price_type: int, price: float, strategy: str, remark: str
    ) -> tuple[int, Future]:
        """Send an order (on the lane thread); returns (seq, future of the SDK's answer). Raises
        :class:`NotSent` when there is no connected trader (nothing reached the SDK)."""
        if self.trader is None or not self.connected:
            raise NotSent("the trader is not connected")
        with self._lock:  # so the answer cannot be resolved between the send and the registration
            seq = self.trader.order_stock_async(
                self.account, code, side, volume, price_type, price, strategy, remark
            )
            future: Future = Future()
            early = self._early.pop(seq, None)
            if early is None:
                self._pending[seq] = future
        if early is not None:
            future.set_result(early)
        return seq, future

    def cancel(self, order_id: int) -> int:
        return self.trader.cancel_order_stock(self.account, order_id)

    def now_ms(self) -> int:
        """The market's now: the simulator's clock on the simulator, else wall time."""
        if self.simulated:
            from qmtgate.sim.xtquant import _env

            return int(_env.current().market.clock.now_ms())
        return int(time.time() * 1000)
