"""The paper broker: A-share accounts whose orders match against the simulated market.

Orders never match against each other; they match against what the simulated market does:

- **at entry** (continuous trading only) a marketable order walks the opposite side of the
  instrument's latest 5-level snapshot book, at each level's price, up to its size;
- **resting** orders fill from the market's later trades, slot by 3 s slot: a buy at L fills at L
  when the market trades below L (the whole slot volume is available to it) or at L (half of it:
  the queue); sells mirror that. In the opening (09:25) and closing (15:00) call-auction matches an
  order at or through the match price fills at the match price. Liquidity one order took (a book
  level, a slot's volume) is not available to the next one. Partial fills are in whole lots where
  the board trades in lots.

Cash and shares are frozen at entry (buys freeze the price x volume plus estimated fees; market
buys at the limit-up price), so a fill can never overdraw an account; everything is integer li.
A cancel takes effect at the next snapshot slot, after that slot's fills (so it can race a fill
as on a real exchange). Unfilled orders expire after the close; at the next session's start T+1
volumes roll and the simulated market's dividends and bonus shares are applied on their ex-dates.

Thread-safe (one lock); every change is reported to listeners as xtquant objects, in the order of
the real terminal's pushes: order (49 -> 50), then per fill trade -> order (55/56) -> position ->
asset.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np

from ..daily import FLAG_SUSPENDED
from ..daypath import CLOSE_SLOT, N_SLOTS, OPEN_SLOT, DayPath
from ..faults import TraderFaultInjector
from ..intraday import order_book
from ..market import SimMarket
from ..rules import Board
from ..timeutil import seconds_of_day_of_ms
from . import objects as obj
from . import rules as R
from .fees import FeeSchedule, yuan_to_li
from .model import (
    FINAL_STATUSES,
    ORDER_CANCELED,
    ORDER_JUNK,
    ORDER_PART_CANCEL,
    ORDER_PART_SUCC,
    ORDER_PARTSUCC_CANCEL,
    ORDER_REPORTED,
    ORDER_REPORTED_CANCEL,
    ORDER_SUCCEEDED,
    ORDER_WAIT_REPORTING,
    STOCK_BUY,
    STOCK_SELL,
    Account,
    Order,
    Position,
    Trade,
)
from .store import AccountStore

log = logging.getLogger("qmtgate.sim.broker")

STOCK_ACCOUNT = 2
CREDIT_ACCOUNT = 3
#: Credit order types (27-45: 融资买入, 融券卖出, repayments...) that need margin books.
CREDIT_ONLY_TYPES = frozenset({27, 28, 29, 30, 31, 32, 40, 41, 42, 43, 44, 45})
MARKET_CODE = {"SH": 0, "SZ": 1, "BJ": 70}

Listener = Callable[[str, str, Any], None]


@dataclass(frozen=True)
class BrokerConfig:
    """Paper-broker options.

    ``accounts`` are (account_id, 'STOCK' | 'CREDIT') pairs that exist (others answer as unknown);
    a fresh account starts with ``starting_cash`` 元. ``db_path`` keeps the accounts in a SQLite file
    across restarts (None: in memory); a missing file is created only with ``create=True``.
    """

    accounts: tuple[tuple[str, str], ...] = (("8880001", "STOCK"),)
    starting_cash: float = 1_000_000.0
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    db_path: str | Path | None = None
    create: bool = False


@dataclass(frozen=True)
class Instr:
    index: int
    code: str
    market: str
    board: Board
    is_fund: bool
    tick_li: int
    name: str
    key: int
    liquidity: float


@dataclass
class Book:
    """One snapshot's 5-level book in li and shares."""

    slot: int
    last_li: int
    bids: list[int]
    bid_shares: list[int]
    asks: list[int]
    ask_shares: list[int]


class BrokerError(Exception):
    """A request the broker refuses before an order exists (answered with order_id -1)."""


def _newest(trades: list[Trade], ids: set[str]) -> list[Trade]:
    """The trades named by ``ids``, in the order they were made. They are the day's newest (made since
    the last save), so the search runs back from the end and stops once all are found: a save costs what
    it writes, not the length of a day that may hold tens of thousands of fills."""
    found: list[Trade] = []
    wanted = set(ids)
    for t in reversed(trades):
        if t.traded_id in wanted:
            found.append(t)
            wanted.discard(t.traded_id)
            if not wanted:
                break
    found.reverse()
    return found


class PaperBroker:
    """Accounts, order entry, matching against the simulated market, day changes, persistence."""

    def __init__(self, market: SimMarket, config: BrokerConfig | None = None) -> None:
        self.m = market
        self.cfg = config or BrokerConfig()
        self.fees = self.cfg.fees
        self.faults = TraderFaultInjector()
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        #: session ids of the connected traders (each must be unique, as on a real terminal)
        self.sessions: set[object] = set()
        self._instr: dict[str, Instr | None] = {}
        self._used: dict[tuple, int] = {}  # liquidity taken: (i, slot, side[, level]) -> shares
        self.day = -1
        self.slot = -1
        self._next_order_id = 1
        self._next_trade_id = 1
        self._next_sysid = 1
        self.store = AccountStore(self.cfg.db_path, create=self.cfg.create) if self.cfg.db_path else None
        self.accounts: dict[str, Account] = {}
        if self.store is not None:
            self.accounts = self.store.load_accounts()
            self.day = int(self.store.get_meta("day") or -1)
            self.slot = int(self.store.get_meta("slot") or -1)
            self._next_order_id = int(self.store.get_meta("next_order_id") or 1)
            self._next_trade_id = int(self.store.get_meta("next_trade_id") or 1)
            self._next_sysid = int(self.store.get_meta("next_sysid") or 1)
        #: order id -> (account, order) for every order that may still be live: the slots' matching walks
        #: these, not the day's whole order book (a strategy's day can hold tens of thousands of orders,
        #: nearly all of them done); an order leaves the index on the first walk that finds it final
        self._working: dict[int, tuple[Account, Order]] = {
            o.order_id: (acct, o) for acct in self.accounts.values() for o in acct.orders.values() if o.live
        }
        cash = yuan_to_li(self.cfg.starting_cash)
        for account_id, kind in self.cfg.accounts:
            if account_id not in self.accounts:
                atype = CREDIT_ACCOUNT if kind.upper() == "CREDIT" else STOCK_ACCOUNT
                self.accounts[account_id] = Account(account_id, atype, cash_li=cash, initial_li=cash)
        self._touched: set[tuple[str, str, Any]] = set()
        self._removed_positions: list[tuple[str, str]] = []
        self._full_save = True
        self._price_cache: dict[tuple[int, int, int], int] = {}
        # (instrument, day, slot) -> its book: a pure function of the day's path, computed once per slot
        # (~0.2 ms of numpy per book) instead of once per order
        self._book_cache: dict[tuple[int, int, int], Book | None] = {}
        self._pump: threading.Thread | None = None
        self._pump_stop = threading.Event()
        self._dirty = True
        self.sync()

    # ------------------------------------------------------------------ listeners

    def add_listener(self, fn: Listener) -> None:
        """``fn(account_id, kind, obj)`` for every change; kind is order, trade, position, asset,
        order_error or cancel_error. Called under the broker's lock, in push order: keep it short."""
        with self._lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def _emit(self, events: list[tuple[str, str, Any]]) -> None:
        if self.store is not None:
            for account_id, kind, payload in events:  # what to write at the next save
                if kind == "order":
                    self._touched.add(("o", account_id, payload.order_id))
                    self._touched.add(("p", account_id, payload.stock_code))
                elif kind == "trade":
                    self._touched.add(("t", account_id, payload.traded_id))
                elif kind == "position":
                    self._touched.add(("p", account_id, payload.stock_code))
                if kind in ("order", "trade", "position", "asset"):
                    self._touched.add(("a", account_id, ""))
        for account_id, kind, payload in events:
            for fn in list(self._listeners):
                try:
                    fn(account_id, kind, payload)
                except Exception:
                    log.exception("broker listener failed on %s", kind)

    # ------------------------------------------------------------------ instruments and market

    def instrument(self, code: str) -> Instr | None:
        if code in self._instr:
            return self._instr[code]
        i = self.m.index_of(code) if isinstance(code, str) else None
        ins = None
        if i is not None:
            inst = self.m.universe.instruments[i]
            if inst.kind in ("stock", "etf"):
                ins = Instr(
                    i,
                    code,
                    inst.market,
                    inst.board,
                    inst.kind == "etf",
                    round(inst.tick * 1000),
                    inst.name,
                    int(self.m.keys[i]),
                    float(self.m.universe.p_trade[i]),
                )
        self._instr[code] = ins
        return ins

    def _path(self, ins: Instr, d: int) -> DayPath:
        return self.m.day_path(ins.index, d)

    def _suspended(self, ins: Instr, d: int) -> bool:
        c = self.m.daily.chain(ins.index)
        r = d - c.start
        return 0 <= r < len(c.flags) and bool(c.flags[r] & FLAG_SUSPENDED)

    def _last_slot(self, path: DayPath, slot: int) -> int:
        if slot < OPEN_SLOT:
            return -1
        traded = np.flatnonzero(path.volume[: slot + 1] > 0)
        return int(traded[-1]) if len(traded) else -1

    def last_price_li(self, ins: Instr) -> int:
        """Latest trade price now (while slots are processed: at the slot being processed; the
        previous close before the day's first trade)."""
        if self.day < 0 or not self.m.listed_by(ins.index, self.day):
            return 0
        slot = self._cur_slot if self._cur_slot >= 0 else self.slot
        key = (ins.index, self.day, slot)
        price = self._price_cache.get(key)
        if price is None:
            path = self._path(ins, self.day)
            k = self._last_slot(path, slot)
            price = int(path.price[k] if k >= 0 else path.pre) * ins.tick_li
            if len(self._price_cache) > 20_000:
                self._price_cache.clear()
            self._price_cache[key] = price
        return price

    def book(self, ins: Instr, d: int, slot: int) -> Book | None:
        """The book of the instrument's latest traded snapshot at or before ``slot`` (continuous). Books
        are read-only (what orders took is kept in ``_used``), so one is shared by every order of a slot."""
        key = (ins.index, d, slot)
        if key in self._book_cache:
            return self._book_cache[key]
        book = self._compute_book(ins, d, slot)
        if len(self._book_cache) > 20_000:
            self._book_cache.clear()
        self._book_cache[key] = book
        return book

    def _compute_book(self, ins: Instr, d: int, slot: int) -> Book | None:
        path = self._path(ins, d)
        s = self._last_slot(path, slot)
        if s < 0:
            return None
        bids, bid_vol, asks, ask_vol = order_book(
            np.array([path.price[s]]),
            np.array([path.down]),
            np.array([path.up]),
            np.array([ins.liquidity]),
            np.array([ins.key], np.int64),
            s,
        )
        t = ins.tick_li
        return Book(
            s,
            int(path.price[s]) * t,
            [int(x) * t for x in bids[0]],
            [int(x) * 100 for x in bid_vol[0]],
            [int(x) * t for x in asks[0]],
            [int(x) * 100 for x in ask_vol[0]],
        )

    # ------------------------------------------------------------------ time

    def _now(self) -> tuple[int, float, Any]:
        t = self.m.time()
        return t.now_ms, seconds_of_day_of_ms(t.now_ms), t

    def _session_open(self, now_ms: int) -> bool:
        """Whether the clock is on a session day (the calendar's, not a weekend or holiday)."""
        from ..timeutil import cst_date_of_ms

        return self.m.calendar.is_trading_day(cst_date_of_ms(now_ms))

    def sync(self) -> None:
        """Bring the books to the market clock: process every slot since the last sync (fills,
        pending cancels, the close's expiry) and any day changes, and report what happened."""
        with self._lock:
            events: list[tuple[str, str, Any]] = []
            t = self.m.time()
            if t.day_index < 0:
                return
            if self.day < 0:
                self.day, self.slot = t.day_index, t.slot
                self._dirty = True
            while self.day < t.day_index:
                self._process(self.day, self.slot + 1, N_SLOTS - 1, events)
                self._new_day(self.day + 1)
            if t.slot > self.slot:
                self._process(self.day, self.slot + 1, t.slot, events)
                self.slot = t.slot
                self._dirty = True
            self._emit(events)
            self._save()

    # ------------------------------------------------------------------ accounts

    def account(self, account_id: str, account_type: int | None = None) -> Account | None:
        a = self.accounts.get(account_id)
        if a is None or (account_type is not None and a.account_type != account_type):
            return None
        return a

    def account_list(self) -> list[Account]:
        return list(self.accounts.values())

    # ------------------------------------------------------------------ order entry

    def place_order(
        self,
        account_id: str,
        account_type: int,
        stock_code: str,
        order_type: int,
        volume: int,
        price_type: int,
        price: float,
        strategy_name: str = "",
        order_remark: str = "",
        seq: int = 0,
    ) -> tuple[int, str]:
        """Enter an order; returns (order_id, error_msg). order_id -1: refused before an order
        existed (an ``order_error`` with order_id -1 is reported). A counter rejection creates the
        order and reports it as 57 (``status_msg``) plus an ``order_error``."""
        with self._lock:
            self.sync()
            events: list[tuple[str, str, Any]] = []
            try:
                order_id, msg = self._place(
                    account_id, account_type, stock_code, order_type, volume, price_type, price,
                    strategy_name, order_remark, seq, events,
                )  # fmt: skip
            except BrokerError as e:
                order_id, msg = -1, str(e)
                events.append(
                    (
                        account_id,
                        "order_error",
                        obj.order_error_object(
                            account_id, account_type, -1, R.ERROR_ORDER, msg, strategy_name, order_remark, seq
                        ),
                    )
                )
            self._emit(events)
            self._dirty = True
            self._save()
            return order_id, msg

    def _place(
        self,
        account_id: str,
        account_type: int,
        code: str,
        order_type: int,
        volume: int,
        price_type: int,
        price: float,
        strategy_name: str,
        order_remark: str,
        seq: int,
        events: list,
    ) -> tuple[int, str]:
        acct = self.account(account_id, account_type)
        if acct is None:
            raise BrokerError(R.MSG_ACCOUNT)
        if acct.account_type == CREDIT_ACCOUNT and order_type in CREDIT_ONLY_TYPES:
            raise BrokerError(R.MSG_NOT_SIMULATED_CREDIT)
        if order_type not in (STOCK_BUY, STOCK_SELL):
            raise BrokerError(R.MSG_ORDER_TYPE)
        ins = self.instrument(code)
        if ins is None or self.day < 0 or not self.m.listed_by(ins.index, self.day):
            raise BrokerError(R.MSG_CODE)
        try:
            price_f = float(price)
        except (TypeError, ValueError):
            raise BrokerError(R.MSG_PRICE_OFF_TICK) from None
        if not math.isfinite(price_f):
            price_f = -1.0  # junked below as off the tick grid
        now_ms, sec, _ = self._now()
        is_market = price_type not in R.LIMIT_TYPES
        o = Order(
            order_id=self._take_order_id(),
            account_id=account_id,
            stock_code=code,
            order_type=order_type,
            volume=int(volume),
            price_type=int(price_type),
            price_li=yuan_to_li(price_f) if price_type == R.FIX_PRICE and price_f > 0 else 0,
            submitted_price=price_f,
            order_time=now_ms // 1000,
            day=self.day,
            entry_slot=self.slot,
            strategy_name=strategy_name,
            order_remark=order_remark,
            status=ORDER_WAIT_REPORTING,
            market_order=is_market,
        )
        acct.orders[o.order_id] = o
        self._working[o.order_id] = (acct, o)
        events.append((account_id, "order", obj.order_object(acct, o, ins.name)))

        def junk(msg: str, error_id: int = R.ERROR_ORDER) -> tuple[int, str]:
            o.status, o.status_msg = ORDER_JUNK, msg
            events.append((account_id, "order", obj.order_object(acct, o, ins.name)))
            events.append(
                (
                    account_id,
                    "order_error",
                    obj.order_error_object(
                        account_id,
                        acct.account_type,
                        o.order_id,
                        error_id,
                        msg,
                        strategy_name,
                        order_remark,
                        seq,
                    ),
                )
            )
            return o.order_id, ""

        forced = self.faults.take_reject()
        if forced is not None:
            return junk(forced[1], forced[0])
        phase = R.phase_at(sec)
        if not self._session_open(now_ms) or not R.accepts_orders(phase):
            return junk(R.MSG_NOT_TRADING_TIME)
        if not is_market and price_type not in R.LIMIT_TYPES:
            return junk(R.MSG_PRICE_TYPE)
        if is_market and price_type not in R.MARKET_TYPES.get(ins.market, ()):
            return junk(R.MSG_PRICE_TYPE)
        if is_market and phase != R.Phase.CONTINUOUS:
            return junk(R.MSG_MARKET_IN_AUCTION)
        if self._suspended(ins, self.day):
            return junk(R.MSG_SUSPENDED)
        pos = acct.positions.get(code)
        sellable = pos.can_use if pos else 0
        lot_msg = R.lot_error(ins.board, o.is_buy, o.volume, sellable)
        if lot_msg:
            return junk(lot_msg)
        path = self._path(ins, self.day)
        down_li, up_li = int(path.down) * ins.tick_li, int(path.up) * ins.tick_li
        if price_type == R.FIX_PRICE:
            if o.price_li <= 0 or o.price_li % ins.tick_li:
                return junk(R.MSG_PRICE_OFF_TICK)
            if not down_li <= o.price_li <= up_li:
                return junk(R.MSG_PRICE_OUT_OF_LIMIT)
        elif price_type == R.LATEST_PRICE:
            o.price_li = self.last_price_li(ins)
        if not o.is_buy:
            if o.volume > sellable:
                return junk(R.MSG_NO_SHARES)
        else:
            freeze_price = up_li if is_market else o.price_li
            amount = freeze_price * o.volume
            need = amount + self.fees.total(
                amount, is_sell=False, market=ins.market, is_fund=ins.is_fund, day=self._date()
            )
            if need > acct.cash_li:
                return junk(R.MSG_NO_CASH)
        # accepted by the counter and reported to the exchange
        o.sysid = str(self._take_sysid())
        o.status = ORDER_REPORTED
        if o.is_buy:
            acct.cash_li -= need
            acct.frozen_li += need
            o.frozen_li = need
        else:
            o.frozen_volume = o.volume
            pos.frozen += o.volume  # type: ignore[union-attr]
        events.append((account_id, "order", obj.order_object(acct, o, ins.name)))
        if phase == R.Phase.CONTINUOUS:
            self._enter(acct, o, ins, events)
        return o.order_id, ""

    def _enter(self, acct: Account, o: Order, ins: Instr, events: list) -> None:
        """Match a just-reported order against the current book (continuous trading)."""
        book = self.book(ins, self.day, self.slot)
        pt = o.price_type
        if book is None:
            if o.market_order:
                self._finish(acct, o, ins, R.MSG_NO_QUOTE, events)
            return  # a limit order rests until the market trades
        same = book.bids if o.is_buy else book.asks
        other = book.asks if o.is_buy else book.bids
        if pt == R.MARKET_PEER_PRICE_FIRST:
            if not other[0]:
                return self._finish(acct, o, ins, R.MSG_NO_QUOTE, events)
            o.price_li = other[0]
        elif pt == R.MARKET_MINE_PRICE_FIRST:
            if not same[0]:
                return self._finish(acct, o, ins, R.MSG_NO_QUOTE, events)
            o.price_li = same[0]
            return  # rests at the own side's best
        if pt == R.MARKET_SZ_FULL_OR_CANCEL and self._available(o, ins, book, 5, None) < o.remaining:
            return self._finish(acct, o, ins, "", events)
        cap = o.price_li if o.price_li else None
        last_fill = self._walk(acct, o, ins, book, cap, events)
        if o.status in FINAL_STATUSES:
            return
        if pt in (
            R.MARKET_SH_CONVERT_5_CANCEL,
            R.MARKET_SZ_CONVERT_5_CANCEL,
            R.MARKET_SZ_INSTBUSI_RESTCANCEL,
            R.MARKET_SZ_FULL_OR_CANCEL,
        ):
            self._finish(acct, o, ins, "", events)
        elif pt == R.MARKET_SH_CONVERT_5_LIMIT:
            if last_fill:
                o.price_li = last_fill  # the rest becomes a limit order at the last fill's price
            else:
                self._finish(acct, o, ins, R.MSG_NO_QUOTE, events)

    def _available(self, o: Order, ins: Instr, book: Book, levels: int, cap: int | None) -> int:
        side = "A" if o.is_buy else "B"
        prices, sizes = (book.asks, book.ask_shares) if o.is_buy else (book.bids, book.bid_shares)
        total = 0
        for j in range(levels):
            p = prices[j]
            if not p or (cap is not None and (p > cap if o.is_buy else p < cap)):
                break
            total += sizes[j] - self._used.get((ins.index, book.slot, side, j), 0)
        return total

    def _walk(self, acct: Account, o: Order, ins: Instr, book: Book, cap: int | None, events: list) -> int:
        """Take the opposite side's levels (at most five, none beyond ``cap``); returns the last fill price."""
        side = "A" if o.is_buy else "B"
        prices, sizes = (book.asks, book.ask_shares) if o.is_buy else (book.bids, book.bid_shares)
        last = 0
        for j in range(5):
            p = prices[j]
            if o.remaining <= 0 or not p or (cap is not None and (p > cap if o.is_buy else p < cap)):
                break
            key = (ins.index, book.slot, side, j)
            qty = self._quantize(o, ins, sizes[j] - self._used.get(key, 0))
            if qty <= 0:
                continue
            self._used[key] = self._used.get(key, 0) + qty
            self._fill(acct, o, ins, p, qty, events)
            last = p
        return last

    def _quantize(self, o: Order, ins: Instr, available: int) -> int:
        rem = o.remaining
        if available >= rem:
            return rem
        if available <= 0:
            return 0
        lot = R.fill_lot(ins.board)
        return available - available % lot

    # ------------------------------------------------------------------ fills and completion

    def _date(self) -> dt.date:
        return self.m.calendar.day(max(self.day, 0))

    def _fill(self, acct: Account, o: Order, ins: Instr, price_li: int, qty: int, events: list) -> None:
        amount = price_li * qty
        o.traded_volume += qty
        o.traded_amount_li += amount
        total_fees = self.fees.total(
            o.traded_amount_li, is_sell=not o.is_buy, market=ins.market, is_fund=ins.is_fund, day=self._date()
        )
        fee = total_fees - o.fees_li
        o.fees_li = total_fees
        acct.fees_total_li += fee
        pos = acct.positions.get(o.stock_code)
        if pos is None:
            pos = acct.positions[o.stock_code] = Position(
                o.stock_code, open_date=self._date().strftime("%Y%m%d")
            )
        if o.is_buy:
            o.frozen_li -= amount + fee
            acct.frozen_li -= amount + fee
            acct.bought_li += amount
            pos.volume += qty
            pos.cost_li += amount + fee
            pos.open_amount_li += amount
        else:
            acct.cash_li += amount - fee
            acct.sold_today_li += amount - fee
            acct.sold_li += amount
            share_cost = pos.cost_li * qty // pos.volume
            share_open = pos.open_amount_li * qty // pos.volume
            pos.cost_li -= share_cost
            pos.open_amount_li -= share_open
            pos.volume -= qty
            pos.frozen -= qty
            pos.sold_today += qty
            o.frozen_volume -= qty
        if self._cur_slot >= 0:
            traded_time = self._slot_time(self.day, self._cur_slot)
        else:
            traded_time = self.m.time().now_ms // 1000
        tr = Trade(
            traded_id=str(self._next_trade_id),
            order_id=o.order_id,
            account_id=acct.account_id,
            stock_code=o.stock_code,
            order_type=o.order_type,
            traded_time=traded_time,
            price_li=price_li,
            volume=qty,
            amount_li=amount,
            fees_li=fee,
            sysid=o.sysid,
            strategy_name=o.strategy_name,
            order_remark=o.order_remark,
        )
        self._next_trade_id += 1
        acct.trades.append(tr)
        if o.remaining == 0:
            o.status = ORDER_SUCCEEDED
        else:
            o.status = ORDER_PARTSUCC_CANCEL if o.cancel_slot is not None else ORDER_PART_SUCC
        raced = o.status == ORDER_SUCCEEDED and o.cancel_slot is not None
        if o.status == ORDER_SUCCEEDED:
            o.cancel_slot = None
            self._release(acct, o)
        events.append((acct.account_id, "trade", obj.trade_object(acct, tr, ins.name)))
        events.append((acct.account_id, "order", obj.order_object(acct, o, ins.name)))
        events.append((acct.account_id, "position", self._position_obj(acct, pos)))
        events.append((acct.account_id, "asset", self._asset_obj(acct)))
        if raced:  # the fill reached the order before its cancel did
            events.append(
                (
                    acct.account_id,
                    "cancel_error",
                    obj.cancel_error_object(
                        acct.account_id,
                        acct.account_type,
                        o.order_id,
                        MARKET_CODE.get(ins.market, -1),
                        o.sysid,
                        R.ERROR_CANCEL,
                        R.MSG_CANCEL_FILLED,
                    ),
                )
            )

    _cur_slot = -1

    def _slot_time(self, d: int, slot: int) -> int:
        from ..daypath import SLOT_SECONDS
        from ..timeutil import ms_of

        return ms_of(self.m.calendar.day(d), int(SLOT_SECONDS[max(slot, 0)])) // 1000

    def _release(self, acct: Account, o: Order) -> None:
        if o.is_buy:
            acct.cash_li += o.frozen_li
            acct.frozen_li -= o.frozen_li
            o.frozen_li = 0
        else:
            pos = acct.positions.get(o.stock_code)
            if pos is not None:
                pos.frozen -= o.frozen_volume
            o.frozen_volume = 0

    def _finish(self, acct: Account, o: Order, ins: Instr, msg: str, events: list) -> None:
        """End a live order unfilled (54) or partly filled (53) and give back what it froze."""
        o.status = ORDER_PART_CANCEL if o.traded_volume else ORDER_CANCELED
        o.status_msg = msg
        o.cancel_slot = None
        self._release(acct, o)
        events.append((acct.account_id, "order", obj.order_object(acct, o, ins.name)))
        if o.is_buy:
            events.append((acct.account_id, "asset", self._asset_obj(acct)))
        else:
            pos = acct.positions.get(o.stock_code)
            if pos is not None:
                events.append((acct.account_id, "position", self._position_obj(acct, pos)))

    # ------------------------------------------------------------------ cancels

    def cancel_order(
        self,
        account_id: str,
        account_type: int,
        order_id: int | None = None,
        market: int | None = None,
        sysid: str | None = None,
    ) -> tuple[int, int, str, str]:
        """Ask to cancel (by order id, or by exchange and contract number); returns
        (cancel_result 0/-1, order_id, order_sysid, error_msg). A refused cancel also reports a
        ``cancel_error``; an accepted one takes effect at the next snapshot slot."""
        with self._lock:
            self.sync()
            events: list[tuple[str, str, Any]] = []
            result = self._cancel(account_id, account_type, order_id, market, sysid, events)
            self._emit(events)
            self._dirty = True
            self._save()
            return result

    def _cancel(self, account_id, account_type, order_id, market, sysid, events) -> tuple[int, int, str, str]:
        acct = self.account(account_id, account_type)
        o = None
        if acct is not None:
            if sysid is not None:
                o = next(
                    (
                        x for x in acct.orders.values()
                        if x.sysid == str(sysid) and MARKET_CODE.get(x.stock_code.rsplit(".", 1)[-1]) == market
                    ),
                    None,
                )  # fmt: skip
            else:
                o = acct.orders.get(order_id) if isinstance(order_id, int) else None
        oid = o.order_id if o else (order_id if isinstance(order_id, int) else -1)
        osys = o.sysid if o else (str(sysid) if sysid is not None else "")
        mkt = (
            MARKET_CODE.get(o.stock_code.rsplit(".", 1)[-1], -1)
            if o
            else (market if isinstance(market, int) else -1)
        )

        def refuse(msg: str) -> tuple[int, int, str, str]:
            events.append(
                (
                    account_id,
                    "cancel_error",
                    obj.cancel_error_object(account_id, account_type, oid, mkt, osys, R.ERROR_CANCEL, msg),
                )
            )
            return -1, oid, osys if sysid is not None else "", msg

        if acct is None:
            return refuse(R.MSG_ACCOUNT)
        if o is None:
            return refuse(R.MSG_CANCEL_UNKNOWN)
        if not o.live:
            return refuse(R.MSG_CANCEL_FINAL)
        if o.cancel_slot is not None:
            return 0, oid, osys if sysid is not None else "", ""
        now_ms, sec, _ = self._now()
        phase = R.phase_at(sec)
        if not self._session_open(now_ms) or not R.accepts_cancels(phase, sec):
            return refuse(R.MSG_NO_CANCEL_TIME)
        ins = self.instrument(o.stock_code)
        assert ins is not None  # an order exists only for a known instrument
        if phase in (R.Phase.CONTINUOUS, R.Phase.OPEN_AUCTION):
            o.cancel_slot = self.slot + 1  # reaches the exchange with the next snapshot
            o.status = ORDER_PARTSUCC_CANCEL if o.traded_volume else ORDER_REPORTED_CANCEL
            events.append((account_id, "order", obj.order_object(acct, o, ins.name)))
        else:  # orders held (09:25-09:30) or lunch: nothing can fill before the cancel lands
            self._finish(acct, o, ins, "", events)
        return 0, oid, osys if sysid is not None else "", ""

    # ------------------------------------------------------------------ the market moves

    def _process(self, d: int, a: int, b: int, events: list) -> None:
        """Slots a..b of session d: fills from the market's trades, pending cancels, the close."""
        if b < a:
            return
        live: list[tuple[Account, Order]] = []
        done: list[int] = []
        for oid, entry in self._working.items():
            o = entry[1]
            if not o.live:
                done.append(oid)
            elif o.day == d:
                live.append(entry)
        for oid in done:
            del self._working[oid]
        if not live:
            return
        agenda: list[tuple[int, int, int, Any]] = []
        by_code: dict[str, list[tuple[Account, Order]]] = {}
        for acct, o in live:
            by_code.setdefault(o.stock_code, []).append((acct, o))
            if o.cancel_slot is not None and o.cancel_slot <= b:
                agenda.append((max(o.cancel_slot, a), 1, o.order_id, (acct, o)))
        for code, items in by_code.items():
            ins = self.instrument(code)
            if ins is None:
                continue
            path = self._path(ins, d)
            lo = max(a, OPEN_SLOT, min(o.entry_slot for _, o in items) + 1)
            if lo > b:
                continue
            for k in (np.flatnonzero(path.volume[lo : b + 1] > 0) + lo).tolist():
                agenda.append((k, 0, ins.index, (ins, path, items)))
        if a <= CLOSE_SLOT <= b:
            agenda.append((CLOSE_SLOT, 2, 0, None))
        agenda.sort(key=lambda e: (e[0], e[1], e[2]))
        for k, kind, _, payload in agenda:
            self._cur_slot = k
            if kind == 0:
                self._match_slot(k, *payload, events)
            elif kind == 1:
                acct, o = payload
                if o.cancel_slot is None:
                    continue
                ins = self.instrument(o.stock_code)
                if o.live:
                    self._finish(acct, o, ins, "", events)  # type: ignore[arg-type]
                else:  # filled before the cancel reached the exchange
                    o.cancel_slot = None
            else:
                for acct, o in live:
                    if o.live:
                        self._finish(acct, o, self.instrument(o.stock_code), R.MSG_EXPIRED, events)  # type: ignore[arg-type]
        self._cur_slot = -1

    def _match_slot(self, k: int, ins: Instr, path: DayPath, items: list, events: list) -> None:
        price_li = int(path.price[k]) * ins.tick_li
        volume = int(path.volume[k]) * 100
        up_li, down_li = int(path.up) * ins.tick_li, int(path.down) * ins.tick_li
        auction = k in (OPEN_SLOT, CLOSE_SLOT)
        resting = [(a, o) for a, o in items if o.live and o.entry_slot < k and o.price_li > 0]
        # only orders priced at or through the slot's price can take any of its volume (in an auction and
        # in continuous trading alike): the others are left out before the sort, and the walk stops once
        # the slot's volume is used up (what is left gets nothing), so thousands of resting orders cost a
        # comparison each per slot instead of a sort and a walk
        buys = sorted(
            (x for x in resting if x[1].is_buy and x[1].price_li >= price_li),
            key=lambda x: (-x[1].price_li, x[1].order_id),
        )
        sells = sorted(
            (x for x in resting if not x[1].is_buy and x[1].price_li <= price_li),
            key=lambda x: (x[1].price_li, x[1].order_id),
        )
        for side, group in (("B", buys), ("S", sells)):
            key = (ins.index, k, side)
            for acct, o in group:
                if self._used.get(key, 0) >= volume:
                    break
                limit = o.price_li
                if auction:
                    crosses = limit >= price_li if o.is_buy else limit <= price_li
                    avail, at = (volume if crosses else 0), price_li
                else:
                    through = price_li < limit if o.is_buy else price_li > limit
                    # at its own price an order waits behind the queue: half the slot's volume, a
                    # tenth at a limit price (the queue of a locked limit is long)
                    at_limit = limit == (up_li if o.is_buy else down_li)
                    share = volume // 10 if at_limit else volume // 2
                    avail = volume if through else (share if price_li == limit else 0)
                    at = limit
                qty = self._quantize(o, ins, avail - self._used.get(key, 0))
                if qty <= 0:
                    continue
                self._used[key] = self._used.get(key, 0) + qty
                self._fill(acct, o, ins, at, qty, events)

    def _new_day(self, d: int) -> None:
        """Session d starts: yesterday's orders and trades go to history, T+1 volumes roll,
        dividends and bonus shares with ex-date d are applied."""
        day = self.m.calendar.day(d)
        prev = self.m.calendar.day(self.day) if self.day >= 0 else None
        for acct in self.accounts.values():
            if self.store is not None and prev is not None:
                self.store.archive_day(prev.strftime("%Y%m%d"), acct)
            for o in acct.orders.values():
                if o.live:  # defensive: the close expires every order
                    self._release(acct, o)
                    o.status = ORDER_PART_CANCEL if o.traded_volume else ORDER_CANCELED
            acct.orders.clear()
            acct.trades.clear()
            acct.sold_today_li = 0
            for code in list(acct.positions):
                p = acct.positions[code]
                if p.volume <= 0:
                    del acct.positions[code]
                    self._removed_positions.append((acct.account_id, code))
                    continue
                p.sold_today = 0
                p.frozen = 0
                ins = self.instrument(code)
                if ins is not None:
                    self._apply_corporate_actions(acct, p, ins, day)
                p.yesterday_volume = p.volume
        self._working.clear()
        self._used.clear()
        self._price_cache.clear()
        self._book_cache.clear()
        self.day, self.slot = d, -1
        self._dirty = True
        self._full_save = True

    def _apply_corporate_actions(self, acct: Account, p: Position, ins: Instr, day: dt.date) -> None:
        for ev in self.m.daily.chain(ins.index).dividends:
            if ev.day != day:
                continue
            if ev.interest > 0:
                cash = int(
                    (Decimal(str(float(ev.interest))) * 1000 * p.volume).quantize(Decimal(1), ROUND_HALF_UP)
                )
                cash -= cash % 10  # paid to the 分
                acct.cash_li += cash
                acct.dividends_total_li += cash
                p.cost_li -= cash
            ratio = Decimal(str(float(ev.stock_bonus))) + Decimal(str(float(ev.stock_gift)))
            if ratio > 0:
                p.volume += int(Decimal(p.volume) * ratio)

    # ------------------------------------------------------------------ queries (xtquant objects)

    def _position_obj(self, acct: Account, p: Position) -> Any:
        ins = self.instrument(p.stock_code)
        last = self.last_price_li(ins) if ins else 0
        return obj.position_object(acct, p, last, ins.name if ins else "")

    def market_value_li(self, acct: Account) -> int:
        total = 0
        for p in acct.positions.values():
            ins = self.instrument(p.stock_code)
            if ins is not None and p.volume:
                total += p.volume * self.last_price_li(ins)
        return total

    def _asset_obj(self, acct: Account) -> Any:
        return obj.asset_object(acct, self.market_value_li(acct))

    def query_asset(self, account_id: str, account_type: int) -> list:
        with self._lock:
            self.sync()
            acct = self.account(account_id, account_type)
            return [self._asset_obj(acct)] if acct else []

    def query_orders(
        self, account_id: str, account_type: int, cancelable_only: bool = False, order_id: int | None = None
    ) -> list:
        with self._lock:
            self.sync()
            acct = self.account(account_id, account_type)
            if acct is None:
                return []
            out = []
            for o in acct.orders.values():
                if order_id is not None and o.order_id != order_id:
                    continue
                if cancelable_only and (not o.live or o.cancel_slot is not None):
                    continue
                ins = self.instrument(o.stock_code)
                out.append(obj.order_object(acct, o, ins.name if ins else ""))
            return out

    def query_trades(self, account_id: str, account_type: int) -> list:
        with self._lock:
            self.sync()
            acct = self.account(account_id, account_type)
            if acct is None:
                return []
            names = {
                t.stock_code: (
                    self.instrument(t.stock_code) or Instr(0, "", "", Board.SH_MAIN, False, 10, "", 0, 0)
                ).name
                for t in acct.trades
            }
            return [obj.trade_object(acct, t, names[t.stock_code]) for t in acct.trades]

    def query_positions(self, account_id: str, account_type: int, stock_code: str | None = None) -> list:
        with self._lock:
            self.sync()
            acct = self.account(account_id, account_type)
            if acct is None:
                return []
            return [
                self._position_obj(acct, p)
                for p in acct.positions.values()
                if stock_code is None or p.stock_code == stock_code
            ]

    # ------------------------------------------------------------------ persistence and pump

    def _take_order_id(self) -> int:
        n = self._next_order_id
        self._next_order_id += 1
        return n

    def _take_sysid(self) -> int:
        n = self._next_sysid
        self._next_sysid += 1
        return n

    def _save(self) -> None:
        """Write what changed since the last save (everything after a day change or at start)."""
        if self.store is None or not (self._dirty or self._touched):
            return
        meta = {
            "day": self.day,
            "slot": self.slot,
            "next_order_id": self._next_order_id,
            "next_trade_id": self._next_trade_id,
            "next_sysid": self._next_sysid,
        }
        if self._full_save:
            orders = [o for a in self.accounts.values() for o in a.orders.values()]
            trades = [t for a in self.accounts.values() for t in a.trades]
            positions: list = [
                (a.account_id, p) for a in self.accounts.values() for p in a.positions.values()
            ]
            positions += self._removed_positions
            self.store.save(list(self.accounts.values()), orders, positions, trades, meta)
        else:
            accounts, orders, trades, positions = [], [], [], []
            new_trades: dict[str, set[str]] = {}  # account -> ids of the trades made since the last save
            for kind, aid, key in self._touched:
                acct = self.accounts.get(aid)
                if acct is None:
                    continue
                if kind == "a":
                    accounts.append(acct)
                elif kind == "o" and key in acct.orders:
                    orders.append(acct.orders[key])
                elif kind == "p":
                    p = acct.positions.get(key)
                    positions.append((aid, p if p is not None else key))
                elif kind == "t":
                    new_trades.setdefault(aid, set()).add(key)
            for aid, ids in new_trades.items():
                trades += _newest(self.accounts[aid].trades, ids)
            self.store.save(accounts, orders, positions, trades, meta)
        self._touched.clear()
        self._removed_positions = []
        self._full_save = False
        self._dirty = False

    def start_pump(self, interval: float = 0.1) -> None:
        """Follow a running clock on a thread (fills and pushes without any API call)."""
        with self._lock:
            if self._pump is not None and self._pump.is_alive():
                return
            self._pump_stop.clear()
            self._pump = threading.Thread(
                target=self._pump_loop, args=(interval,), name="qmtgate-sim-broker", daemon=True
            )
            self._pump.start()

    def _pump_loop(self, interval: float) -> None:
        while not self._pump_stop.wait(interval):
            try:
                self.sync()
            except Exception:  # the pump is the broker's heartbeat: log and go on
                log.exception("paper broker sync failed")

    def close(self) -> None:
        self._pump_stop.set()
        if self._pump is not None:
            self._pump.join(timeout=5)
        with self._lock:
            self._save()
            if self.store is not None:
                self.store.close()
                self.store = None
