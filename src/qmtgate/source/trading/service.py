"""The order service the REST routes call: idempotency, pre-trade risk, the kill switch, dry-run,
``unknown`` outcomes and their reconciliation, all recorded in the audit trail before answering.

Idempotency: the ``client_order_id`` is claimed in the audit database (status ``sending``) *before* the
order goes to the SDK, and it is also sent as the order's ``order_remark``; a retry with the same id
returns the recorded outcome and never sends again. An order whose SDK answer does not come within
``trading.response_timeout`` is ``unknown``: it is never retried; the SDK's order pushes and queries are
matched on ``order_remark`` to learn its order id later (reconciled).

An answered order's outcome is written by the thread that delivers the SDK's answer (its callback
thread), while the event loop is still waking up from the send: the loop then only reads it and answers.
A :class:`_Settlement` makes sure exactly one outcome is written per order, the answer's or, when none
came in time, the loop's ``unknown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, InvalidStateError
from typing import Any

from qmtgate.config import TradingSettings
from qmtgate.source.calendar import CalendarService
from qmtgate.source.convert import date_of_ms, local_iso_one
from qmtgate.source.trading.audit import AuditTrail
from qmtgate.source.trading.errors import (
    CancelRefused,
    ConnectError,
    IdempotencyConflict,
    OrderNotFound,
    RiskRefused,
    TradingHalted,
    TradingUnavailable,
)
from qmtgate.source.trading.events import KINDS, AccountEvents
from qmtgate.source.trading.lane import NotSent, TradingLane, sdk_object_to_dict
from qmtgate.source.trading.risk import AccountInfo, MarketInfo, Order, RiskChecker
from qmtgate.vocab import CST_OFFSET_MS, MS_PER_DAY, ORDER_STATUS_NAMES

logger = logging.getLogger(__name__)

#: Seconds before the first reconnect attempt after on_disconnected, doubled per failure up to the max.
RECONNECT_BACKOFF = 0.5
RECONNECT_BACKOFF_MAX = 30.0
#: Connect failures that can clear by themselves (QMT started or logged in later): retried in the background.
RETRYABLE = frozenset({"qmt_not_connected", "account_not_found", "account_type_mismatch"})
#: The audit database's ``state`` key of the kill switch ({"halted", "since_ms", "key_id"}).
KILL_SWITCH = "kill_switch"
#: Outcomes whose order id the gateway does not know yet.
OPEN_OUTCOMES = ("sending", "unknown")
#: What a client_order_id looks like (the REST model's pattern); other order remarks are not ours.
CLIENT_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,24}")
#: The order fields a recovered claim (rebuilt from the SDK's order) can be compared on.
RECOVERED_FIELDS = ("code", "side", "volume")

#: ``fn(kind, data)``: an account event (SDK push or gateway event such as a protective trigger).
EventListener = Callable[[str, dict[str, Any]], None]
#: ``fn(name, label, value)``: ``("order", status, seconds)``, ``("refused", code_or_rule, 0)``,
#: ``("protect", "kind:outcome", 0)`` (ops.metrics turns them into Prometheus series).
MetricHook = Callable[[str, str, float], None]


_RUNNING: set[asyncio.Task] = set()  # tasks of _run_to_end, referenced until done


async def _run_to_end(coro: Coroutine[Any, Any, Any], waiter: asyncio.Future[Any] | None = None) -> Any:
    """Await ``coro`` run in a task that a cancelled caller does not cancel, as ``asyncio.shield`` does.
    The task hands its result to the caller's future (``waiter``, or a new one) itself: one pass of the
    event loop less than shield's chain of done-callbacks (inner task -> outer future -> caller), on
    every order's answer. Whoever else holds ``waiter`` may resolve it first (an order's answer, from the
    thread that wrote it); the task's own result then only ends the task."""
    loop = asyncio.get_running_loop()
    if waiter is None:
        waiter = loop.create_future()

    async def run() -> None:
        try:
            result = await coro
        except asyncio.CancelledError:
            if not waiter.done():
                waiter.cancel()
            raise
        except BaseException as exc:
            if not waiter.done():
                waiter.set_exception(exc)
            elif isinstance(exc, Exception):  # its caller was cancelled meanwhile: nobody else sees it
                logger.info("trading: %r after its caller went away", exc)
            if not isinstance(exc, Exception):
                raise
        else:
            if not waiter.done():
                waiter.set_result(result)

    task = loop.create_task(run())
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return await waiter


def _reply_from_thread(reply: asyncio.Future[Any]) -> Callable[[Any], None]:
    """A thread-safe ``fn(result)`` that resolves ``reply`` (on its loop) unless it is done already."""
    loop = reply.get_loop()

    def resolve(result: Any) -> None:
        if not reply.done():
            reply.set_result(result)

    return lambda result: loop.call_soon_threadsafe(resolve, result)


class _Settlement:
    """The one outcome of a sent order: its SDK answer's, written on the thread that delivers it, or the
    loop's ``unknown`` when no answer came in time, whichever is first (the other is dropped: a late
    answer is the reconciler's, through the order's pushes). ``written``: the outcome once it is
    committed to the audit trail (or the exception that kept it from being written)."""

    def __init__(self, write: Callable[[dict[str, Any]], None]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self.outcome: dict[str, Any] | None = None
        self.written: Future = Future()

    def settle(
        self, outcome: dict[str, Any], then: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """Write ``outcome`` unless one was written already; returns the one that stands. ``then``:
        called with ``outcome`` once it is written and stands (not when another stood already)."""
        with self._lock:
            if self.outcome is not None:
                return self.outcome
            try:
                self._write(outcome)
            except BaseException as exc:
                with contextlib.suppress(InvalidStateError):  # the loop gave up waiting meanwhile
                    self.written.set_exception(exc)
                raise
            self.outcome = outcome
        if then is not None:
            try:
                then(outcome)
            except Exception:  # the caller still has it through written, a loop pass later
                logger.exception("trading: handing an outcome to its caller failed")
        with contextlib.suppress(InvalidStateError):
            self.written.set_result(outcome)
        return outcome


class TradingService:
    def __init__(
        self, settings: TradingSettings, audit: AuditTrail | None = None, *, paper_default: bool = False
    ) -> None:
        """``paper_default``: the simulator was chosen, so an unset account id means its paper account
        (:func:`qmtgate.source.trading.lane.settings_problem`)."""
        self.settings = settings
        self.audit = (
            audit
            if audit is not None
            else AuditTrail(settings.audit_path, settings.audit_sync, settings.audit_flush_ms / 1000)
        )
        self.risk = RiskChecker(settings.risk)
        self.lane = TradingLane(settings, self._push_from_sdk, paper_default)
        #: account events for the WebSocket trading channel (numbered, replayable, never conflated)
        self.events = AccountEvents(settings.events_ring)
        #: the kill switch, as the audit database keeps it: a restart (a crash, a service restart, a
        #: reboot) never lifts a halt; only ``resume`` does
        self.kill_switch: dict[str, Any] = self._kill_switch_at_start()
        self.connect_error: ConnectError | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._place_lock = asyncio.Lock()
        self._seen: dict[str, int] = {}  # client_order_id -> order id, from the SDK's pushes
        # The client_order_id being placed right now: its outcome is written by _place itself, so a push
        # that arrives before the SDK's answer only notes the order id (in _seen) instead of writing a
        # "reconciled" outcome on the loop while the answer waits behind it.
        self._placing: str | None = None
        # While the order being placed has its answer in and its caller has not written the reply yet,
        # the account events that arrive are held here and published right after (see _on_push).
        self._answered: Future | None = None
        self._held: list[tuple[str, dict[str, Any], bool]] = []  # (kind, data, to the trading channel)
        self._order_status: dict[int, int] = {}  # order id -> last status the gateway saw
        #: code -> (China-time day number, instrument detail): the day's limits and tick, once per day
        self._details: dict[str, tuple[int, dict[str, Any]]] = {}
        self._reconnect_task: asyncio.Task | None = None
        #: account events, on the event loop: every SDK push, then gateway events (``emit_event``)
        self.listeners: list[EventListener] = []
        self.metric_hooks: list[MetricHook] = []
        #: client_order_ids whose outcome became ``unknown``, oldest first (alerts read it)
        self.unknown_coids: list[str] = []
        self.disconnects = 0  # on_disconnected pushes seen (alerts compare it between checks)
        #: the market calendar (set by the app when market data runs beside trading): with
        #: ``risk.check_trading_hours`` an order on an exchange holiday is refused before it is sent
        self.calendar: CalendarService | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect; a failure is kept (status and every trading route report it), not raised."""
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self.lane.start)
        except ConnectError as exc:
            self.connect_error = exc
            self.audit.append("connect_error", {"reason": exc.reason, "message": exc.message})
            logger.error("trading: %s (%s)", exc.message, exc.reason)
            if exc.reason in RETRYABLE and self.lane.xtconstant is not None:  # QMT may come up later
                self._reconnect_task = self._loop.create_task(
                    self._reconnect(), name="qmtgate-trading-reconnect"
                )
            return
        self.audit.append(
            "connected", {"session_id": self.lane.session_id, "account": self.lane.settings.account_id}
        )
        for coid, outcome in self.audit.outcomes().items():  # a crash while sending: outcome unknown
            if outcome.get("status") == "sending":
                self.audit.set_outcome(coid, {**outcome, "status": "unknown"})
                self.unknown_coids.append(coid)
        await self.reconcile()
        self._recover_claims(await self.orders())

    def _recover_claims(self, orders: list[dict[str, Any]]) -> None:
        """Claims the ledger lost but QMT kept: with ``audit_sync = normal`` a power cut can take the
        last flush window of the audit file, claims included, while the orders sent in it reached QMT.
        Every order of the day whose remark looks like a client_order_id the ledger does not know is
        claimed again from the SDK's copy (audit row ``recovered``), so a retry of it is answered with
        that order and never sent a second time. ``orders``: the account's orders of the day (after every
        connect, the first one included, since a gateway may start before QMT is logged in)."""
        known = self.audit.outcomes()
        # the day's orders sent through a gateway (their remark is a client_order_id) count against the
        # daily limit: a restart in the session must not refill it
        sent_today = sum(1 for o in orders if CLIENT_ORDER_ID.fullmatch(o.get("order_remark") or ""))
        self.risk.counter.seed(self.lane.now_ms(), sent_today)
        for order in orders:
            coid = order.get("order_remark") or ""
            order_id = order.get("order_id")
            if coid in known or not CLIENT_ORDER_ID.fullmatch(coid) or not isinstance(order_id, int):
                continue
            request = {
                "code": order.get("stock_code"),
                "side": "buy" if order.get("order_type") == self.lane.xtconstant.STOCK_BUY else "sell",
                "volume": order.get("order_volume"),
                "recovered_from_sdk": True,
            }
            outcome = {"client_order_id": coid, "status": "accepted", "order_id": order_id,
                       "reconciled_from": "recovered"}  # fmt: skip
            with self.audit.transaction():
                if self.audit.claim(coid, request, outcome, self._market_day()) is None:
                    self.audit.append("recovered", {**outcome, "order": order}, client_order_id=coid)
                    logger.warning("trading: claim %s recovered from QMT's order %s", coid, order_id)

    async def stop(self) -> None:
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        await asyncio.to_thread(self.lane.stop)
        self.audit.close()

    # ------------------------------------------------------------------ pushes

    def _push_from_sdk(self, kind: str, data: dict[str, Any]) -> None:
        """On the SDK's push thread: record, then hand to the event loop (never call the SDK here)."""
        self.audit.append(f"push.{kind}", data, client_order_id=data.get("order_remark") or None)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_push, kind, data)

    def _holding(self) -> bool:
        """Whether account events wait now: the order being placed is answered and its reply is about to
        be written (the SDK answered before the events it brought, and its clients see the reply first:
        the drop-in returns from order_stock before its callbacks, as the SDK does), or events wait
        already (they keep their order)."""
        answered = self._answered
        return bool(self._held) or (answered is not None and answered.done())

    def _on_push(self, kind: str, data: dict[str, Any]) -> None:
        self._track_push(kind, data)  # at once, held or not: the outcome logic reads what it learns
        self._account_event(kind, data, kind in KINDS)

    def _account_event(self, kind: str, data: dict[str, Any], to_channel: bool) -> None:
        """Hand an event to the trading channel (``to_channel``) and the listeners, or hold it behind
        the events that wait for an answered order's reply (:meth:`_holding`), in arrival order."""
        if self._holding():
            self._held.append((kind, data, to_channel))
        else:
            self._deliver(kind, data, to_channel)

    def _deliver(self, kind: str, data: dict[str, Any], to_channel: bool) -> None:
        if to_channel:
            self.events.publish(kind, data)
        self._notify(kind, data)

    def _placed(self) -> None:
        """The current placement is over (answered, refused or failed): stop holding its events and
        publish the held ones once the caller, woken in the next pass of the loop, has written its reply
        (without an ``await`` in between, as the REST route and the socket do)."""
        self._placing = None
        self._answered = None
        if self._held:
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._release_held)

    def _release_held(self) -> None:
        answered = self._answered
        if answered is not None and answered.done():  # the next placement is answered: its _placed releases
            return
        held, self._held = self._held, []
        for kind, data, to_channel in held:
            self._deliver(kind, data, to_channel)

    def _notify(self, kind: str, data: dict[str, Any]) -> None:
        for fn in list(self.listeners):
            try:
                fn(kind, data)
            except Exception:
                logger.exception("trading event listener failed on %s", kind)

    def emit_event(self, kind: str, data: dict[str, Any], client_order_id: str | None = None) -> None:
        """A gateway-made account event (e.g. ``protect.triggered``): an audit row (durable on return),
        then every listener, as for the SDK's pushes. On the event loop."""
        self.audit.append(f"event.{kind}", data, client_order_id=client_order_id)
        self._account_event(kind, data, True)

    def _metric(self, name: str, label: str, value: float = 0.0) -> None:
        for fn in list(self.metric_hooks):
            try:
                fn(name, label, value)
            except Exception:
                logger.exception("trading metric hook failed")

    def _track_push(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "disconnected":
            self.disconnects += 1
        if kind == "order" and isinstance(data.get("order_id"), int):
            self._order_status[data["order_id"]] = data.get("order_status")
        if kind == "disconnected" and (self._reconnect_task is None or self._reconnect_task.done()):
            self._reconnect_task = asyncio.get_running_loop().create_task(
                self._reconnect(), name="qmtgate-trading-reconnect"
            )
        if kind in ("order", "trade", "order_error"):
            coid, order_id = data.get("order_remark"), data.get("order_id")
            if coid and isinstance(order_id, int) and order_id > 0:
                self._seen[coid] = order_id
                self._learn(coid, order_id, "push")

    def _learn(self, coid: str, order_id: int, via: str) -> None:
        if coid == self._placing:  # _place writes its outcome (with this order id, from _seen if need be)
            return
        outcome = self.audit.outcome(coid)
        if outcome is not None and outcome.get("status") in OPEN_OUTCOMES:
            new = {**outcome, "status": "accepted", "order_id": order_id, "reconciled_from": via}
            self.audit.set_outcome(coid, new)
            self.audit.append("reconciled", new, client_order_id=coid)

    async def _reconnect(self) -> None:
        """A new trader, a new session, subscribe again, then reconcile: unknown outcomes, and every
        order whose status changed while the gateway was away (audit rows ``catchup.order``)."""
        for attempt in range(1_000_000):
            await asyncio.sleep(min(RECONNECT_BACKOFF * 2**attempt, RECONNECT_BACKOFF_MAX))
            try:
                await self._on_lane(self.lane.reopen)
            except ConnectError as exc:
                self.connect_error = exc
                self.audit.append("reconnect_failed", {"reason": exc.reason, "message": exc.message})
                logger.warning("trading: reconnect failed: %s", exc.message)
                continue
            except Exception:
                logger.exception("trading: reconnect raised")
                continue
            self.connect_error = None
            self.audit.append("reconnected", {"session_id": self.lane.session_id})
            self.events.publish("reconnected", {"session_id": self.lane.session_id})
            logger.warning("trading: reconnected with session %s", self.lane.session_id)
            await self.reconcile()
            orders = await self.orders()
            self._recover_claims(orders)
            for order in orders:
                oid, status = order.get("order_id"), order.get("order_status")
                if self._order_status.get(oid) != status:
                    self._order_status[oid] = status
                    self.audit.append(
                        "catchup.order", order, client_order_id=order.get("order_remark") or None
                    )
                    self.events.publish("order", order, catchup=True)
            return

    async def reconcile(self) -> None:
        """Match every unknown outcome against the SDK's orders (by order_remark)."""
        open_ids = [c for c, o in self.audit.outcomes().items() if o.get("status") in OPEN_OUTCOMES]
        if not open_ids or not self.lane.connected:
            return
        for order in await self.orders():
            if order.get("order_remark") in open_ids:
                self._learn(order["order_remark"], order["order_id"], "query")

    # ------------------------------------------------------------------ helpers

    def _require_connected(self) -> None:
        if self.connect_error is not None:
            raise TradingUnavailable(self.connect_error.message, {"reason": self.connect_error.reason})
        if not self.lane.connected:
            raise TradingUnavailable("the trader is not connected to QMT", {"reason": "disconnected"})

    async def _on_lane(self, fn: Any) -> Any:
        return await asyncio.wrap_future(self.lane.call(fn))

    def _refuse(
        self,
        exc: Exception,
        ctx: dict[str, Any],
        coid: str | None,
        request_row: tuple[str, Any] | None = None,
    ) -> Exception:
        body = exc.to_body() if hasattr(exc, "to_body") else {"error": repr(exc)}
        rule = getattr(exc, "rule", None)
        code = getattr(getattr(exc, "code", None), "value", None)
        self._metric("refused", str(rule or code or type(exc).__name__))
        with self.audit.transaction():
            if request_row is not None:
                self.audit.append(*request_row, client_order_id=coid, **ctx)
            self.audit.append("refused", body, client_order_id=coid, **ctx)
        return exc

    # ------------------------------------------------------------------ orders

    async def place(
        self, req: dict[str, Any], ctx: dict[str, Any], *, protective: bool = False
    ) -> dict[str, Any]:
        """Place one order (``req``: code, side, volume, price_type, price, strategy_name, remark,
        client_order_id); ``ctx``: request_id, key_id for the audit trail. Shielded: a client that
        hangs up mid-request does not cancel it, so its outcome is still recorded for the retry.
        ``protective``: a protective order's sell, which the kill switch lets through when
        ``trading.protect.act_when_halted`` (docs/trading.md)."""
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        return await _run_to_end(self._place(req, ctx, protective, reply), reply)

    async def _place(
        self,
        req: dict[str, Any],
        ctx: dict[str, Any],
        protective: bool = False,
        reply: asyncio.Future[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """``reply``: the caller's future. An SDK answer resolves it from the thread that wrote the
        outcome (one loop pass to the caller, who writes the reply at once), while this coroutine's own
        wake-up (the wait for the written outcome, then the end of the placement) follows behind it."""
        coid = req["client_order_id"]
        # The request row is committed together with the first decision about it: nothing is answered
        # or sent before both are written.
        request_row = ("request.place", req)
        async with self._place_lock:
            try:
                previous = self.audit.outcome(coid)
                if previous is not None:
                    return await self._replay(coid, req, ctx, request_row)
                now = self.lane.now_ms()
                await self._check_session_day(now)  # may wait for the calendar: before the halt check
                self._check_halted(protective)
                self._require_connected()
                order = Order.of(req)
                self.risk.check_static(order, now)
                # One trip to the lane thread: the risk inputs, the market checks, the claim and the send
                # run back to back there (a loop round trip between them would only add latency).
                started = time.perf_counter()
                self._placing = coid
                settlement = _Settlement(lambda outcome: self._write_outcome(coid, outcome, ctx, started))
                self._answered = settlement.written
                early = None if reply is None else _reply_from_thread(reply)
                sent = await self._on_lane(
                    lambda: self._check_claim_send(
                        order, req, coid, ctx, request_row, now, settlement, protective, early
                    )
                )
            except (RiskRefused, TradingHalted, TradingUnavailable, IdempotencyConflict) as exc:
                self._placed()
                raise self._refuse(exc, ctx, coid, request_row) from None
            except Exception as exc:
                self._placed()
                self._refuse(exc, ctx, coid, request_row)
                raise
            try:
                return await self._outcome(sent, coid, ctx, request_row, settlement)
            finally:
                self._placed()

    async def check(self, req: dict[str, Any]) -> dict[str, Any]:
        """Every pre-trade check :meth:`place` would run on ``req`` (code, side, volume, price_type,
        price), against the same market and account data, with nothing claimed, counted or sent. Answer:
        ``{"passed": True, "value"}`` (the order's value as the checks count it), or ``{"passed": False,
        "error": {"code", "message", "details"}}`` with the refusal :meth:`place` would answer now."""
        try:
            self._check_halted()
            self._require_connected()
            order = Order.of(req)
            now = self.lane.now_ms()
            await self._check_session_day(now)
            self.risk.check_static(order, now)

            def on_lane() -> float:
                market, account = self._market_and_account(order, now)
                return self.risk.check_market(order, market, account)

            value = await self._on_lane(on_lane)
        except (RiskRefused, TradingHalted, TradingUnavailable) as exc:
            return {"passed": False, "value": None, **exc.to_body()}
        return {"passed": True, "value": round(value, 2), "error": None}

    async def _outcome(
        self,
        sent: dict[str, Any] | None,
        coid: str,
        ctx: dict[str, Any],
        request_row: tuple[str, Any],
        settlement: _Settlement,
    ) -> dict[str, Any]:
        """The outcome of a checked order, written before it is returned: its SDK answer's (written on
        the answering thread, see :class:`_Settlement`), or what stands for a missing answer."""
        if sent is None:  # dry run: every check passed, nothing sent
            answer = {"client_order_id": coid, "status": "dry_run", "order_id": None}
            with self.audit.transaction():
                self.audit.append(*request_row, client_order_id=coid, **ctx)
                self.audit.append("response.place", answer, client_order_id=coid, **ctx)
            return answer
        outcome = await self._await_answer(sent, coid, settlement)
        if outcome["status"] == "unknown":
            self.unknown_coids.append(coid)
        return outcome

    def _write_outcome(self, coid: str, outcome: dict[str, Any], ctx: dict[str, Any], started: float) -> None:
        """Commit an order's outcome (the ledger's and its ``response.place`` row). On the answering
        thread for an SDK answer, on the loop otherwise."""
        self._metric("order", outcome["status"], time.perf_counter() - started)
        with self.audit.transaction():
            self.audit.set_outcome(coid, outcome)
            self.audit.append("response.place", outcome, client_order_id=coid, **ctx)

    @staticmethod
    def _answer_outcome(seq: int, coid: str, resp: dict[str, Any]) -> dict[str, Any]:
        """The outcome an SDK answer (``XtOrderResponse`` as a dict) stands for."""
        base = {"client_order_id": coid, "seq": seq}
        order_id = resp.get("order_id", -1)
        if isinstance(order_id, int) and order_id > 0:
            return {**base, "status": "accepted", "order_id": order_id}
        return {**base, "status": "rejected", "order_id": None, "error_msg": resp.get("error_msg", "")}

    def _check_claim_send(
        self,
        order: Order,
        req: dict[str, Any],
        coid: str,
        ctx: dict[str, Any],
        request_row: tuple[str, Any],
        now: int,
        settlement: _Settlement,
        protective: bool = False,
        early: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any] | None:
        """On the lane thread: the market and account checks, then (unless dry-run) the claim and the
        request row committed together, then ``order_stock_async``, whose answer settles ``settlement``
        on the thread that delivers it (and, once written, goes to ``early``: the caller's reply).
        Returns what :meth:`_await_answer` needs, or None for a dry run. A refusal raises before
        anything is claimed or sent."""
        market, account = self._market_and_account(order, now)
        self.risk.check_market(order, market, account, protective=protective)
        # Again here, right before the claim and the send: a halt turned on since the loop's check (its
        # sweep of open orders runs on this thread after this trip, or this trip sees the switch).
        self._check_halted(protective)
        if self.settings.risk.dry_run:
            return None
        with self.audit.transaction():
            self.audit.append(*request_row, client_order_id=coid, **ctx)
            self.audit.claim(
                coid, req, {"status": "sending", "client_order_id": coid}, date_of_ms(now).isoformat()
            )
        self.risk.counter.count(now)
        c = self.lane.xtconstant
        side = c.STOCK_BUY if order.side == "buy" else c.STOCK_SELL
        price_type = {"limit": c.FIX_PRICE, "latest": c.LATEST_PRICE}.get(
            order.price_type
        ) or order.xt_market_type
        strategy = req.get("strategy_name") or ""
        try:
            seq, answer = self.lane.order_async(
                order.code, side, order.volume, price_type, order.price, strategy, coid
            )
        except NotSent as exc:
            return {"coid": coid, "not_sent": str(exc)}
        except Exception as exc:  # the SDK raised while sending: it may or may not have sent it
            logger.exception("trading: order_stock_async raised for %s", coid)
            self.audit.append("sdk.error", {"error": repr(exc)}, client_order_id=coid)
            return {"coid": coid, "raised": repr(exc)}

        def answered(future: Future) -> None:
            try:
                settlement.settle(self._answer_outcome(seq, coid, future.result()), early)
            except Exception:  # handed to the loop through settlement.written
                logger.exception("trading: writing the outcome of %s failed", coid)

        answer.add_done_callback(answered)  # now, on this thread, if it is answered already
        return {"coid": coid, "seq": seq}

    async def _replay(
        self, coid: str, req: dict[str, Any], ctx: dict[str, Any], request_row: tuple[str, Any]
    ) -> dict[str, Any]:
        entry = self.audit.entry(coid) or {"request": req, "outcome": {}}
        first = entry["request"]
        if first.get("recovered_from_sdk"):  # rebuilt from QMT's order: only what the SDK keeps compares
            same = all(first.get(k) == req.get(k) for k in RECOVERED_FIELDS)
        else:
            same = first == req
        if not same:
            raise IdempotencyConflict(
                f"client_order_id {coid!r} was already used for a different order",
                {"reason": "different_order", "first_request": entry["request"]},
            )
        first_day, today = entry.get("market_day"), self._market_day()
        if first_day is not None and first_day != today:
            # A retry does not outlive its market day: the same id and body on a later day is a new order
            # that reused an id (a counter that starts again each day), and answering it with the old
            # day's outcome would tell the caller an order is working that was never sent today.
            raise IdempotencyConflict(
                f"client_order_id {coid!r} was used on {first_day} (today is {today}): an id names one "
                "order for good; send today's order under a new client_order_id",
                {"reason": "earlier_day", "first_day": first_day, "first_outcome": entry["outcome"]},
            )
        if entry["outcome"].get("status") in OPEN_OUTCOMES:
            await self.reconcile()
        answer = {**(self.audit.outcome(coid) or {}), "replayed": True}
        with self.audit.transaction():
            self.audit.append(*request_row, client_order_id=coid, **ctx)
            self.audit.append("response.place", answer, client_order_id=coid, **ctx)
        return answer

    def _market_and_account(self, order: Order, now_ms: int) -> tuple[MarketInfo, AccountInfo]:
        """On the lane thread: what the market checks of ``order`` need, and nothing more. The day's
        limits and tick come from the instrument detail, fetched once per code and market day; the
        last price only for a market sell (valued at it); the asset for a buy (cash, total asset); the
        position for a sell (sellable) or when a position cap is set. Asset and position are asked of
        the SDK on every order: they are the account's truth, which no push-built copy can promise."""
        code = order.code
        day = (now_ms + CST_OFFSET_MS) // MS_PER_DAY  # the China-time day the limits belong to
        detail = self._details.get(code)
        if detail is None or detail[0] != day:
            raw = self.lane.xtdata.get_instrument_detail(code)
            if not raw:
                raise RiskRefused("unknown_code", f"no instrument {code}", code=code)
            detail = (day, raw)
            self._details[code] = detail
        raw = detail[1]
        last = 0.0
        if (
            (order.price_type == "market" and order.side == "sell")
            or order.price_type == "latest"
            or (order.price_type == "limit" and self.settings.risk.max_price_deviation is not None)
        ):
            tick = self.lane.xtdata.get_full_tick([code]).get(code) or {}
            last = float(tick.get("lastPrice") or raw.get("PreClose") or 0.0)
        market = MarketInfo(
            up_limit=float(raw["UpStopPrice"]),
            down_limit=float(raw["DownStopPrice"]),
            tick=float(raw.get("PriceTick") or 0.01),
            last=last,
        )
        trader, account = self.lane.trader, self.lane.account
        lim = self.settings.risk
        buy = order.side == "buy"
        asset = trader.query_stock_asset(account) if buy else None
        need_position = (not buy) or lim.max_position_value is not None or lim.max_position_ratio is not None
        position = trader.query_stock_position(account, code) if need_position else None
        return market, AccountInfo(
            cash=float(asset.cash) if asset is not None else 0.0,
            sellable=int(position.can_use_volume) if position is not None else 0,
            position_value=float(position.market_value) if position is not None else 0.0,
            total_asset=float(asset.total_asset) if asset is not None else 0.0,
        )

    async def _await_answer(self, sent: dict[str, Any], coid: str, settlement: _Settlement) -> dict[str, Any]:
        """The outcome of a sent order: its SDK answer's, or ``rejected`` when it certainly did not
        leave, ``unknown`` when it may have (never resent; reconciled later)."""
        seq = sent.get("seq")
        outcome: dict[str, Any] = {"client_order_id": coid, "seq": seq, "order_id": None}
        if "not_sent" in sent:
            return settlement.settle({**outcome, "status": "rejected", "error_msg": sent["not_sent"]})
        if "raised" in sent:
            outcome.update(status="unknown", error_msg=sent["raised"])
        else:
            written = settlement.written
            try:
                if written.done():  # answered and written while the lane call came back: no second trip
                    return written.result()
                return await asyncio.wait_for(asyncio.wrap_future(written), self.settings.response_timeout)
            except asyncio.TimeoutError:
                pass
            self.lane.forget(seq)
            self.audit.append("sdk.timeout", {"client_order_id": coid, "seq": seq}, client_order_id=coid)
            logger.warning("trading: no SDK answer to order %s (seq %s): outcome unknown", coid, seq)
            outcome["status"] = "unknown"
        if coid in self._seen:  # its push told us meanwhile
            outcome.update(status="accepted", order_id=self._seen[coid], reconciled_from="push")
        return settlement.settle(outcome)  # an answer that came at the last moment stands instead

    async def order_status(self, coid: str) -> dict[str, Any]:
        outcome = self.audit.outcome(coid)
        if outcome is None:
            raise OrderNotFound(f"no order with client_order_id {coid!r}")
        if outcome.get("status") in OPEN_OUTCOMES and self.lane.connected:
            await self.reconcile()
            outcome = self.audit.outcome(coid) or outcome
        order = None
        if outcome.get("order_id"):
            oid = outcome["order_id"]
            raw = await self._on_lane(lambda: self.lane.trader.query_stock_order(self.lane.account, oid))
            order = sdk_object_to_dict(raw) if raw is not None else None
        return {**outcome, "order": order}

    async def cancel(self, ctx: dict[str, Any], order_id: int | None = None, coid: str | None = None) -> dict:
        self.audit.append(
            "request.cancel", {"order_id": order_id, "client_order_id": coid}, client_order_id=coid, **ctx
        )
        try:
            self._require_connected()
            if order_id is None:
                outcome = self.audit.outcome(coid or "")
                if outcome is None:
                    raise OrderNotFound(f"no order with client_order_id {coid!r}")
                if outcome.get("status") in OPEN_OUTCOMES:
                    await self.reconcile()
                    outcome = self.audit.outcome(coid or "") or outcome
                order_id = outcome.get("order_id")
                if not order_id:
                    raise OrderNotFound(f"order {coid!r} has no order id ({outcome.get('status')})")
            oid = order_id
            result = await self._on_lane(lambda: self.lane.cancel(oid))
            if result != 0:
                raise await self._cancel_refusal(oid)
        except (TradingUnavailable, OrderNotFound, CancelRefused) as exc:
            raise self._refuse(exc, ctx, coid) from None
        answer = {"order_id": order_id, "client_order_id": coid, "cancel": "requested"}
        self.audit.append("response.cancel", answer, client_order_id=coid, **ctx)
        return answer

    async def _cancel_refusal(self, order_id: int) -> OrderNotFound | CancelRefused:
        """Why the SDK refused a cancel (it answers only -1), from the order itself: not in the account
        (404 ``order_not_found``) or already final (409 ``cancel_refused`` with its status)."""
        try:
            order = await self._on_lane(
                lambda: self.lane.trader.query_stock_order(self.lane.account, order_id)
            )
        except Exception:  # the refusal stands; only its reason is missing
            logger.warning("order %s: the query after a refused cancel failed", order_id, exc_info=True)
            return CancelRefused(f"the SDK refused to cancel order {order_id}", {"order_id": order_id})
        if order is None:
            return OrderNotFound(f"no order {order_id} in the account", {"order_id": order_id})
        status = getattr(order, "order_status", None)
        name = ORDER_STATUS_NAMES.get(status) if isinstance(status, int) else None
        return CancelRefused(
            f"the SDK refused to cancel order {order_id}" + (f": it is {name}" if name else ""),
            {"order_id": order_id, "order_status": status, "status_name": name},
        )

    # ------------------------------------------------------------------ queries

    async def _query(self, name: str, *args: Any) -> Any:
        self._require_connected()

        def run() -> Any:
            return getattr(self.lane.trader, name)(self.lane.account, *args)

        return await self._on_lane(run)

    async def orders(self) -> list[dict[str, Any]]:
        return [sdk_object_to_dict(o) for o in (await self._query("query_stock_orders") or [])]

    async def trades(self) -> list[dict[str, Any]]:
        return [sdk_object_to_dict(o) for o in (await self._query("query_stock_trades") or [])]

    async def positions(self) -> list[dict[str, Any]]:
        return [sdk_object_to_dict(o) for o in (await self._query("query_stock_positions") or [])]

    async def asset(self) -> dict[str, Any]:
        return sdk_object_to_dict(await self._query("query_stock_asset"))

    def status(self) -> dict[str, Any]:
        return {
            "connected": self.lane.connected,
            "account_id": self.lane.settings.account_id,  # the simulator's paper account when unset
            "account_type": self.settings.account_type,
            "simulated": self.lane.simulated,
            "session_id": self.lane.session_id,
            "halted": self.halted,
            "halted_since_ms": self.kill_switch.get("since_ms") if self.halted else None,
            "dry_run": self.settings.risk.dry_run,
            "connect_error": (
                {"reason": self.connect_error.reason, "message": self.connect_error.message}
                if self.connect_error
                else None
            ),
            "risk": self.settings.risk.model_dump(mode="json"),
        }

    def _check_halted(self, protective: bool = False) -> None:
        """The kill switch refuses the order (a protective sell passes with ``protect.act_when_halted``)."""
        if self.halted and not (protective and self.settings.protect.act_when_halted):
            raise TradingHalted("trading is halted (kill switch); resume with `qmtgate trading resume`")

    async def _check_session_day(self, now_ms: int) -> None:
        """The trading-hours rule's calendar half: no order on a day the exchanges are closed (a weekday
        holiday such as National Day), when the calendar knows it (weekends: :meth:`RiskChecker.check_static`)."""
        if self.calendar is None or not self.settings.risk.check_trading_hours:
            return
        day = date_of_ms(now_ms)
        if day.weekday() < 5 and await self.calendar.closed_on(day):
            raise RiskRefused(
                "trading_hours",
                f"the exchanges are closed on {day.isoformat()} (a holiday)",
                day=day.isoformat(),
            )

    def _market_day(self) -> str:
        """The market clock's China-time date (the simulator's on the simulator), as claims keep it."""
        return date_of_ms(self.lane.now_ms()).isoformat()

    # ------------------------------------------------------------------ kill switch

    @property
    def halted(self) -> bool:
        """The kill switch is on: new orders are refused (read from :attr:`kill_switch`)."""
        return bool(self.kill_switch.get("halted"))

    def _kill_switch_at_start(self) -> dict[str, Any]:
        """The kill switch as the last ``halt`` / ``resume`` left it (``{"halted": False}`` when neither
        ever ran). Kept in the audit database's ``state`` table; a trail written before that table
        existed is read once from its newest halt/resume row, and the answer kept."""
        switch = self.audit.state(KILL_SWITCH)
        if switch is None:
            switch = {"halted": False}
            if not self.audit.had_state:
                row = self.audit.last_row(("halt", "resume"))
                if row is not None and row["kind"] == "halt":
                    switch = {"halted": True, "since_ms": row["ts_ms"], "key_id": row["key_id"]}
            self.audit.set_state(KILL_SWITCH, switch)
        if switch.get("halted"):
            since = switch.get("since_ms")
            when = local_iso_one(since) if since else "an earlier run"
            logger.warning(
                "trading: the kill switch is on (halted since %s, key %s): every new order is refused until "
                "`qmtgate trading resume`",
                when,
                switch.get("key_id"),
            )
        return switch

    def _set_kill_switch(self, halted: bool, kind: str, payload: dict[str, Any], ctx: dict[str, Any]) -> None:
        """Turn the switch and record why, in one commit: the row and the state a restart reads agree."""
        switch = {"halted": halted, "since_ms": int(time.time() * 1000), "key_id": ctx.get("key_id")}
        with self.audit.transaction():
            self.audit.append(kind, payload, **ctx)
            self.audit.set_state(KILL_SWITCH, switch)
        self.kill_switch = switch

    async def halt(self, ctx: dict[str, Any], cancel_open: bool = True) -> dict[str, Any]:
        self._set_kill_switch(True, "halt", {"cancel_open": cancel_open}, ctx)
        cancelled: list[int] = []
        if cancel_open and self.lane.connected:
            # An order being placed as the switch turned is answered first (or refused by its own check
            # of the switch), so the sweep comes after QMT has it: its list shows an order it answered.
            async with self._place_lock:
                for order in [
                    sdk_object_to_dict(o) for o in (await self._query("query_stock_orders", True) or [])
                ]:
                    oid = order["order_id"]
                    if await self._on_lane(lambda oid=oid: self.lane.cancel(oid)) == 0:
                        cancelled.append(oid)
        answer = {"halted": True, "cancel_requested": cancelled}
        self.audit.append("response.halt", answer, **ctx)
        return answer

    async def resume(self, ctx: dict[str, Any]) -> dict[str, Any]:
        self._set_kill_switch(False, "resume", {}, ctx)
        return {"halted": False}
