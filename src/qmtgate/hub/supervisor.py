"""Supervision of the market source above the connection: silent subscriptions, failed resubscribes, staleness.

:class:`~qmtgate.source.xtdata_source.XtdataSource` already notices a lost connection (QMT's status callback,
a call failing with "not connected", its periodic probe) and reconnects with backoff; every reconnect starts a
new connection number and a ``connected`` event (:mod:`qmtgate.source.events`), on which the quote feed and
the stream hub subscribe again. What it cannot see is a connection
that answers calls while pushes have stopped, xtquant users' top complaint. This supervisor watches what
actually arrives:

* **staleness** per subscribed market (ticks) and per explicitly streamed code, in *market-clock* seconds,
  counted only inside continuous-trading segments of trading days. Market time, not wall time, because the
  simulator's clock may be paused (tests) or accelerated (soak): "no update for N seconds" means N seconds in
  which the market moved. For real QMT the two are the same. The silence must also have lasted
  ``min_wall_seconds`` of wall time, so a processing hiccup under an accelerated clock is not mistaken for
  dead subscriptions.
* a streamed code whose latest tick says it is suspended or halted (``openInt`` / ``phase`` in
  :data:`qmtgate.vocab.HALTED_PHASES`: QMT keeps one flat tick of a suspended stock all session) is
  **quiet**, not stale: it is expected not to change, so it counts no silence, is never renewed and is
  listed apart (``quiet_symbols``). Market staleness is about bursts arriving, which a halted code's
  silence never affects.
* a stale market -> probe the connection (a failure marks the source down: reconnect path); if the probe
  answers, the subscriptions went silent: renew all of them (``resubscribed`` event). A stale streamed code whose market
  is fresh -> renew that one upstream subscription. Each action restarts the staleness window, so it repeats
  at most once per window.
* registry entries whose resubscribe failed (say QMT refused it right after a restart) are retried every
  check while connected, instead of waiting for the next reconnect.
* when the set of stale markets changes the supervisor announces a ``stale`` source event (the hub turns
  it into the clients' ``status`` message, the alerts can act on it); readiness and metrics read
  :meth:`SourceSupervisor.report`.

It lives in the hub because what it supervises is the hub's deliveries; it uses the hub's public API
(``add_listener``, ``subscribed_markets``, ``streamed_codes``, ``retry_failed_upstream``, ``renew_codes``,
``lvc``) and the source's (``status``, ``probe``, ``renew_subscriptions``, ``announce``). Its periodic
check is about time passing without data (staleness), not about connection changes: those are events.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qmtgate.hub.lvc import LastValueCache
from qmtgate.hub.ring import markets_of
from qmtgate.source.events import SourceEventKind
from qmtgate.vocab import is_halted

logger = logging.getLogger(__name__)

CST = dt.timezone(dt.timedelta(hours=8))
#: Continuous-trading segments (CST); outside them silence is normal.
SESSIONS: tuple[tuple[dt.time, dt.time], ...] = (
    (dt.time(9, 30), dt.time(11, 30)),
    (dt.time(13, 0), dt.time(15, 0)),
)


@dataclass(frozen=True)
class SupervisorConfig:
    """``stale_seconds`` for markets, ``symbol_stale_seconds`` for streamed codes (market-clock seconds)."""

    check_interval: float = 1.0
    stale_seconds: float = 15.0
    symbol_stale_seconds: float = 60.0
    #: silence must also last this many wall seconds: an accelerated simulator moves 15 market seconds in
    #: well under a second, so a short processing hiccup would otherwise look like a dead subscription
    min_wall_seconds: float = 3.0
    max_symbols: int = 2000  # streamed codes tracked (and exported as metric series) at most


def session_open(now: float, sessions: Sequence[tuple[dt.time, dt.time]] = SESSIONS) -> float | None:
    """Epoch seconds at which the continuous-trading segment containing ``now`` opened; None outside one."""
    local = dt.datetime.fromtimestamp(now, CST)
    for start, end in sessions:
        if start <= local.time() < end:
            return dt.datetime.combine(local.date(), start, CST).timestamp()
    return None


@dataclass
class _Symbol:
    seq: int  # LVC seq last seen; a new seq means the code updated
    seen: float  # market time of the last observed change (or of when watching began)
    seen_wall: float  # the same on the monotonic wall clock


@dataclass
class StalenessTracker:
    """Last activity per market and per (channel, code), in market-clock seconds. Loop-only, no locks."""

    clock: Callable[[], float]
    wall: Callable[[], float] = time.monotonic
    markets: dict[str, float] = field(default_factory=dict)
    markets_wall: dict[str, float] = field(default_factory=dict)
    symbols: dict[tuple[str, str], _Symbol] = field(default_factory=dict)
    #: when a market entered the watched set (or was last acted on): silence is counted from here
    baseline: dict[str, float] = field(default_factory=dict)
    baseline_wall: dict[str, float] = field(default_factory=dict)

    def observe(self, updates: Sequence[Any]) -> None:
        """Hub listener (once per burst, on the loop): remember which markets ticked."""
        if not updates or updates[0].channel != "tick":
            return
        now, wall = self.clock(), self.wall()
        for market in markets_of(updates):  # computed once per burst, shared with the fan-out
            self.markets[market] = now
            self.markets_wall[market] = wall

    def watch_markets(self, markets: Iterable[str]) -> None:
        now, wall = self.clock(), self.wall()
        wanted = set(markets)
        for m in wanted - set(self.baseline):
            self.baseline[m] = now
            self.baseline_wall[m] = wall
        for m in set(self.baseline) - wanted:
            del self.baseline[m]
            self.baseline_wall.pop(m, None)

    def refresh_symbols(self, watched: Iterable[tuple[str, str]], lvc: LastValueCache) -> None:
        """Compare the hub's last values with what was seen last check (O(watched), nothing per burst)."""
        now, wall = self.clock(), self.wall()
        kept: dict[tuple[str, str], _Symbol] = {}
        for key in watched:
            update = lvc.get(*key)
            seq = update.seq if update is not None else -1
            old = self.symbols.get(key)
            if old is None or seq != old.seq:
                kept[key] = _Symbol(seq, now, wall)
            else:
                kept[key] = old
        self.symbols = kept

    def market_silence(self, market: str, opened: float) -> float:
        last = max(self.markets.get(market, 0.0), self.baseline.get(market, 0.0), opened)
        return max(self.clock() - last, 0.0)

    def market_wall_silence(self, market: str) -> float:
        last = max(self.markets_wall.get(market, 0.0), self.baseline_wall.get(market, 0.0))
        return max(self.wall() - last, 0.0)

    def symbol_wall_silence(self, key: tuple[str, str]) -> float:
        sym = self.symbols.get(key)
        return 0.0 if sym is None else max(self.wall() - sym.seen_wall, 0.0)

    def halted(self, key: tuple[str, str], lvc: LastValueCache) -> bool:
        """Whether the code's latest tick in the cache says suspended / halted (it is quiet, not stale)."""
        return is_halted(lvc.raw_value(key[1], "openInt"))

    def symbol_silence(self, key: tuple[str, str], opened: float) -> float:
        sym = self.symbols.get(key)
        if sym is None:
            return 0.0
        return max(self.clock() - max(sym.seen, opened), 0.0)

    def restart_market(self, market: str) -> None:
        self.baseline[market] = self.clock()
        self.baseline_wall[market] = self.wall()

    def restart_symbol(self, key: tuple[str, str]) -> None:
        sym = self.symbols.get(key)
        if sym is not None:
            sym.seen, sym.seen_wall = self.clock(), self.wall()


@dataclass(frozen=True)
class SupervisorReport:
    """What readiness, metrics and tests read (cheap, never touches the upstream)."""

    in_session: bool
    market_staleness: dict[str, float]  # market -> silent market-seconds in the current session segment
    symbol_staleness: dict[tuple[str, str], float]  # (channel, code) -> silent market-seconds
    stale_markets: tuple[str, ...]
    stale_symbols: tuple[tuple[str, str], ...]
    market_renewals: int  # times every subscription was renewed because a market went silent
    symbol_renewals: int  # times one code's subscription was renewed
    resubscribe_retries: int  # failed registry resubscribes retried
    #: streamed (channel, code)s whose code is suspended / halted now: quiet, never stale (staleness 0)
    quiet_symbols: tuple[tuple[str, str], ...] = ()


class SourceSupervisor:
    """Watch deliveries of ``hub`` (and its registry) against ``source``; see the module docstring."""

    def __init__(
        self,
        source: Any,
        hub: Any,
        *,
        config: SupervisorConfig | None = None,
        is_trading_day: Callable[[dt.date], Awaitable[bool]] | None = None,
    ) -> None:
        self.source = source
        self.hub = hub
        self.config = config or SupervisorConfig()
        self._is_trading_day = is_trading_day
        self._trading_days: dict[dt.date, bool] = {}
        self.tracker = StalenessTracker(clock=lambda: source.now_ms() / 1000)
        self._task: asyncio.Task[None] | None = None
        self._stale_sent: tuple[str, ...] = ()
        self.market_renewals = 0
        self.symbol_renewals = 0
        self.resubscribe_retries = 0
        self._report = SupervisorReport(False, {}, {}, (), (), 0, 0, 0)

    async def start(self) -> None:
        self.hub.add_listener(self.tracker.observe)
        self._task = asyncio.create_task(self._run(), name="qmtgate-source-supervisor")

    async def stop(self) -> None:
        self.hub.remove_listener(self.tracker.observe)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def report(self) -> SupervisorReport:
        return self._report

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.check_interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # supervision must outlive any one bad check
                logger.exception("source supervision check failed")

    def _subscribed_markets(self) -> set[str]:
        return self.hub.subscribed_markets()

    def _watched_symbols(self) -> list[tuple[str, str]]:
        return self.hub.streamed_codes(self.config.max_symbols)

    async def _trading_day(self, now: float) -> bool:
        day = dt.datetime.fromtimestamp(now, CST).date()
        if self._is_trading_day is None:
            return day.weekday() < 5
        known = self._trading_days.get(day)
        if known is None:
            try:
                known = bool(await self._is_trading_day(day))
            except Exception:  # calendar unavailable (source down): decide again next check
                return False
            self._trading_days = {day: known}
        return known

    async def check(self) -> SupervisorReport:
        """One supervision pass (the loop calls this every ``check_interval``; tests may call it)."""
        cfg = self.config
        tracker = self.tracker
        markets = self._subscribed_markets()
        tracker.watch_markets(markets)
        watched = self._watched_symbols()
        tracker.refresh_symbols(watched, self.hub.lvc)
        status = self.source.status()
        usable = status.connected and status.state.value in ("ready",)

        if usable:
            await self._retry_failed()

        now = tracker.clock()
        opened = session_open(now)
        in_session = opened is not None and await self._trading_day(now)
        market_staleness: dict[str, float] = {}
        symbol_staleness: dict[tuple[str, str], float] = {}
        quiet: tuple[tuple[str, str], ...] = ()
        if in_session:
            assert opened is not None
            market_staleness = {m: tracker.market_silence(m, opened) for m in sorted(markets)}
            symbol_staleness = {k: tracker.symbol_silence(k, opened) for k in watched}
            lvc = self.hub.lvc
            quiet = tuple(k for k, s in symbol_staleness.items() if s > 0 and tracker.halted(k, lvc))
            for key in quiet:  # a suspended / halted code does not change: that is not silence
                symbol_staleness[key] = 0.0
                tracker.restart_symbol(key)  # its silence counts from when it trades again
        else:
            market_staleness = {m: 0.0 for m in sorted(markets)}
            symbol_staleness = dict.fromkeys(watched, 0.0)
        floor = cfg.min_wall_seconds
        stale_markets = tuple(
            m
            for m, s in market_staleness.items()
            if s > cfg.stale_seconds and tracker.market_wall_silence(m) > floor
        )
        stale_symbols = tuple(
            k
            for k, s in symbol_staleness.items()
            if s > cfg.symbol_stale_seconds
            and tracker.symbol_wall_silence(k) > floor
            and k[1].rpartition(".")[2] not in stale_markets
        )
        self._report = SupervisorReport(
            in_session,
            market_staleness,
            symbol_staleness,
            stale_markets,
            stale_symbols,
            self.market_renewals,
            self.symbol_renewals,
            self.resubscribe_retries,
            quiet,
        )
        self._announce_stale(stale_markets)
        if usable and stale_markets:
            await self._recover_markets(stale_markets, market_staleness)
        if usable and stale_symbols:
            await self._recover_symbols(stale_symbols, symbol_staleness)
        self._report = dataclasses.replace(
            self._report,
            market_renewals=self.market_renewals,
            symbol_renewals=self.symbol_renewals,
            resubscribe_retries=self.resubscribe_retries,
        )
        return self._report

    # ------------------------------------------------------------------ actions

    async def _retry_failed(self) -> None:
        self.resubscribe_retries += await self.hub.retry_failed_upstream()

    async def _recover_markets(self, stale: tuple[str, ...], silence: dict[str, float]) -> None:
        detail = ", ".join(f"{m} {silence[m]:.0f} s" for m in stale)
        probe = getattr(self.source, "probe", None)
        if probe is not None and not await probe():
            logger.warning("stale markets (%s): the source probe failed; reconnect path takes over", detail)
        else:
            renew = getattr(self.source, "renew_subscriptions", None)
            if renew is None:
                return
            self.market_renewals += 1
            await renew(f"no update during trading hours: {detail}")
        for market in stale:  # one action per window, whatever its outcome
            self.tracker.restart_market(market)

    async def _recover_symbols(self, stale: tuple[tuple[str, str], ...], silence: dict[Any, float]) -> None:
        held = await self.hub.renew_codes(stale)
        if held:
            self.symbol_renewals += len(held)
            logger.warning(
                "renewed %d silent code subscriptions: %s",
                len(held),
                ", ".join(f"{c}/{code} {silence[(c, code)]:.0f} s" for c, code in held[:10]),
            )
        for key in stale:
            self.tracker.restart_symbol(key)

    def _announce_stale(self, stale: tuple[str, ...]) -> None:
        if stale == self._stale_sent:
            return
        self._stale_sent = stale
        self.source.announce(SourceEventKind.STALE, stale=stale)
