"""MarketSource over an xtdata-shaped module: the real ``xtquant.xtdata`` or the simulator's.

The module object is passed in and only ever called through :class:`XtdataExecutor`, so the same code
drives production (Windows, QMT) and the simulated market (any OS) and no xtdata call can run concurrently.
Functions are looked up by their real xtquant names; a function the module lacks makes the feature
``unsupported`` rather than failing obscurely.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qmtgate.errors import BadRequest, QmtgateError, SourceError, SourceUnavailable, Unsupported
from qmtgate.source.base import (
    DIVIDEND_TYPES,
    HISTORY_PERIODS,
    Capabilities,
    DownloadProgress,
    DownloadResult,
    MarketSource,
    ProgressCallback,
    QuoteCallback,
    SourceState,
    SourceStatus,
    check_period,
)
from qmtgate.source.coalesce import Coalescer
from qmtgate.source.events import SourceEventKind
from qmtgate.source.executor import DEFAULT_TIMEOUT, ExecutorState, Lane, XtdataExecutor
from qmtgate.source.static_cache import StaticCache
from qmtgate.source.universe import UNIVERSE_SECTORS, InstrumentIndex

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

#: Substrings of xtquant's plain ``Exception`` messages that mean "not connected to QMT" (§1.2, §6).
_DISCONNECTED_MARKERS = ("无法连接xtquant服务", "行情服务连接断开", "rpc init failed")

#: Seconds before a failed ``download_sector_data`` is tried again.
SECTOR_DATA_RETRY_SECONDS = 600

#: Feature name -> xtdata functions it needs.
_FEATURE_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "snapshot": ("get_full_tick",),
    "history": ("get_market_data_ex",),
    "instrument_detail": ("get_instrument_detail",),
    "instrument_type": ("get_instrument_type",),
    "sectors": ("get_sector_list", "get_stock_list_in_sector"),
    "calendar": ("get_trading_dates", "get_holidays", "get_trading_calendar"),
    "divid_factors": ("get_divid_factors",),
    "download": ("download_history_data2",),
    "subscribe": ("subscribe_quote", "subscribe_whole_quote", "unsubscribe_quote"),
}


@dataclass(frozen=True)
class XtdataSourceConfig:
    """Behaviour of :class:`XtdataSource`.

    ``connect_ip``/``connect_port``: passed to ``xtdata.connect`` (``''``/None = local discovery, as xtquant).
    ``connect_timeout``: seconds one ``connect`` attempt may take (xtquant scans local instances).
    ``reconnect_interval``: the longest wait between reconnect attempts while unavailable; attempts back off
    exponentially from ``reconnect_min_interval`` up to it (a QMT restart is caught quickly, a long outage
    is not hammered).
    ``probe_interval``/``probe_timeout``: while connected, a cheap ``get_full_tick`` of one code every
    ``probe_interval`` seconds, so a connection that dropped without a status callback is found by a
    failing call within ``probe_interval + probe_timeout`` seconds (0 disables the probe).
    ``max_codes_per_request``: upper bound on codes per snapshot/history/detail call.
    ``detail_chunk_size``: codes per executor job when loading instrument details (keeps jobs short).
    ``download_chunk_size``: codes per ``download_history_data2`` call (a running call is never preempted).
    ``history_chunk_size``: codes per ``get_market_data_ex`` job, so snapshots interleave with big reads.
    ``static_roll_time``: CST time of day at which the reference-data cache rolls over.
    ``universe_miss_refresh``: seconds between reloads of the instrument index caused by unknown codes.
    """

    connect_ip: str = ""
    connect_port: int | None = None
    connect_timeout: float = 15.0
    reconnect_interval: float = 5.0
    reconnect_min_interval: float = 0.25
    probe_interval: float = 2.0
    probe_timeout: float = 2.0
    probe_code: str = "000001.SH"
    max_codes_per_request: int = 1000
    detail_chunk_size: int = 200
    download_chunk_size: int = 20
    history_chunk_size: int = 100
    static_roll_time: dt.time = dt.time(9, 0)
    universe_miss_refresh: float = 60.0


class XtdataSource(MarketSource):
    """Serve market data from an xtdata-shaped module through one executor thread.

    ``clock`` is the market's clock in epoch seconds: wall time for QMT, the simulator's clock for the
    simulated market. It drives :meth:`now_ms` and the day roll of the reference-data cache.
    """

    def __init__(
        self,
        xtdata: Any,
        *,
        name: str,
        config: XtdataSourceConfig | None = None,
        executor: XtdataExecutor | None = None,
        clock: Callable[[], float] = time.time,
        note: Callable[[], str] | None = None,
    ) -> None:
        self.name = name
        self._xt = xtdata
        self._config = config or XtdataSourceConfig()
        self._executor = executor or XtdataExecutor()
        self._clock = clock
        self._note = note
        self._cache = StaticCache(clock=clock, roll_at=self._config.static_roll_time)
        self._history_calls: Coalescer[tuple[Any, ...], dict[str, Any]] = Coalescer()
        self._universe = InstrumentIndex(
            self._load_universe,
            cache_day=self._cache.cache_day,
            miss_refresh=self._config.universe_miss_refresh,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._connected = False
        self._stopped = False
        self._started = False
        self._message: str | None = "not started"
        self._since = time.time()
        self._connection = 0
        self._last_ok = 0.0  # monotonic time of the last upstream call that came back (the probe skips)
        self._subscriptions: dict[int, int] = {}  # our handle -> xtdata subscription id ("seq" in xtquant)
        self._next_handle = 1
        #: reliability counters (metrics, readiness, tests): connections lost and regained, forced renewals
        self.disconnects = 0
        self.reconnects = 0
        self.renewals = 0
        self.last_outage_seconds: float | None = None
        self._lost_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # download_sector_data: the cache day it succeeded on, and when a failed one may be retried
        self._sector_data_day: dt.date | None = None
        self._sector_data_retry_at = 0.0
        self._sector_downloads: Coalescer[dt.date, None] = Coalescer()

    @property
    def executor(self) -> XtdataExecutor:
        return self._executor

    @property
    def cache(self) -> StaticCache:
        return self._cache

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.events.bind(self._loop)
        self._executor.start()
        self._started = True
        if hasattr(self._xt, "watch_xtquant_status"):
            # Must be registered before the first connect: xtquant attaches it only to new connections.
            with contextlib.suppress(QmtgateError):
                await self._call(Lane.CONTROL, "watch_xtquant_status", self._on_xt_status)
        await self.connect()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"qmtgate-{self.name}-supervisor")

    async def stop(self) -> None:
        self._stopped = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._executor.stop()
        self._connected, self._message, self._since = False, "stopped", time.time()

    async def connect(self) -> bool:
        """Try ``xtdata.connect`` once on the control lane; return whether the source is connected."""
        try:
            await self._call(
                Lane.CONTROL,
                "connect",
                ip=self._config.connect_ip,
                port=self._config.connect_port,
                timeout=self._config.connect_timeout,
            )
        except QmtgateError as e:
            self._set_connected(False, f"connect failed: {e.message}")
            return False
        self._set_connected(True, None)
        return True

    async def _supervise(self) -> None:
        """Keep the connection: probe it while connected, reconnect with exponential backoff while not.

        Reconnects are only tried while the executor is RUNNING: with a call stuck in xtdata (DEGRADED) a
        connect would just queue behind it and time out.
        """
        cfg = self._config
        floor = min(cfg.reconnect_min_interval, cfg.reconnect_interval)
        delay = floor
        while not self._stopped:
            if self._connected:
                delay = floor
                await asyncio.sleep(cfg.probe_interval if cfg.probe_interval > 0 else cfg.reconnect_interval)
                if (
                    cfg.probe_interval > 0
                    and self._connected
                    and self._executor.state is ExecutorState.RUNNING
                    # a real call that came back within the interval proved the connection as well as the
                    # probe would: skip it, so a busy gateway's snapshots never queue behind a probe
                    and time.monotonic() - self._last_ok >= cfg.probe_interval
                ):
                    await self.probe()
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, cfg.reconnect_interval)
            if not self._connected and self._executor.state is ExecutorState.RUNNING and await self.connect():
                logger.warning("%s source reconnected", self.name)

    async def probe(self) -> bool:
        """One cheap upstream call; a "not connected" failure marks the source unavailable (``_guard``).

        Returns whether the call succeeded. Timeouts leave the executor DEGRADED, which readiness reports.
        """
        try:
            await self._call(
                Lane.CONTROL, "get_full_tick", [self._config.probe_code], timeout=self._config.probe_timeout
            )
        except QmtgateError as e:
            logger.debug("%s probe failed: %s", self.name, e.message)
            return False
        return True

    async def _cancel_orphans(self, sub_ids: list[int]) -> None:
        fn = getattr(self._xt, "unsubscribe_quote", None)
        if not callable(fn):
            return
        await asyncio.gather(
            *(
                self._executor.submit(Lane.CONTROL, fn, sub_id, name="unsubscribe_quote")
                for sub_id in sub_ids
            ),
            return_exceptions=True,  # best effort: the new QMT may not know these ids
        )

    async def renew_subscriptions(self, reason: str) -> int:
        """Treat every upstream subscription as dead although the connection looks fine (they went silent).

        Cancels them upstream (so a late push cannot duplicate data) and starts a new connection number, which
        makes the quote feed and the stream hub subscribe again (a ``resubscribed`` event). Returns it.
        """
        old = list(self._subscriptions.values())
        self._subscriptions.clear()
        for sub_id in old:
            with contextlib.suppress(QmtgateError):
                await self._call(Lane.CONTROL, "unsubscribe_quote", sub_id)
        self._connection += 1
        self.renewals += 1
        self._since = time.time()
        logger.warning(
            "%s source: renewing every subscription (connection %d): %s", self.name, self._connection, reason
        )
        self.announce(SourceEventKind.RESUBSCRIBED, reason)
        return self._connection

    def _on_xt_status(self, data: Any) -> None:
        # Called on an xtquant callback thread: only hop onto the loop, never call xtdata here.
        status = data.get("status") if isinstance(data, dict) else None
        loop = self._loop
        if status in ("connected", "disconnected") and loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(
                    self._set_connected,
                    status == "connected",
                    None if status == "connected" else "QMT disconnected",
                )

    def _set_connected(self, connected: bool, message: str | None) -> None:
        if connected != self._connected or message != self._message:
            self._since = time.time()
        announce_later = False
        if connected and not self._connected:
            self._connection += (
                1  # a new connection number: every upstream subscription of the previous one is gone
            )
            orphans = list(self._subscriptions.values())
            self._subscriptions.clear()
            if orphans and self._loop is not None and not self._stopped:
                # A drop without a QMT restart may leave them alive upstream: cancel them so that they
                # cannot push alongside the new ones. ``connected`` is announced once they are cancelled,
                # so every resubscribe (the listeners') comes after: a recycled subscription id is never cancelled.
                announce_later = True
                task = self._loop.create_task(self._cancel_orphans_then_announce(orphans, self._connection))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if self._lost_at is not None:
                self.reconnects += 1
                self.last_outage_seconds = time.monotonic() - self._lost_at
                self._lost_at = None
        elif not connected and self._connected:
            self.disconnects += 1
            self._lost_at = time.monotonic()
        changed = connected != self._connected
        if changed:
            log = logger.warning if not connected else logger.info
            log(
                "%s source %s%s",
                self.name,
                "connected" if connected else "unavailable",
                f": {message}" if message else "",
            )
        self._connected = connected
        self._message = message
        if changed and not announce_later:  # after the state is set: listeners see a status that agrees
            self.announce(SourceEventKind.CONNECTED if connected else SourceEventKind.DISCONNECTED, message)

    async def _cancel_orphans_then_announce(self, sub_ids: list[int], connection: int) -> None:
        try:
            await self._cancel_orphans(sub_ids)
        finally:
            if self._connected and self._connection == connection and not self._stopped:
                self.announce(SourceEventKind.CONNECTED, self._message)

    # -- status ----------------------------------------------------------------------------------------

    def is_connected(self) -> bool:
        return self._connected

    def status(self) -> SourceStatus:
        executor = self._executor.status()
        if self._stopped:
            state = SourceState.STOPPED
        elif not self._started:
            state = SourceState.STARTING
        elif executor.state is ExecutorState.FAULTED or not self._connected:
            state = SourceState.UNAVAILABLE
        elif executor.state is ExecutorState.DEGRADED:
            state = SourceState.DEGRADED
        else:
            state = SourceState.READY
        message = self._message
        if state is SourceState.DEGRADED:
            message = f"upstream call {executor.degraded_call} overran its deadline and is still running"
        elif executor.state is ExecutorState.FAULTED:
            message = "executor thread died"
        return SourceStatus(
            name=self.name,
            state=state,
            connected=self._connected,
            message=message,
            since=self._since,
            executor=executor,
            connection=self._connection,
            note=self._note() if self._note is not None else None,
        )

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def capabilities(self) -> Capabilities:
        features = {
            feature: all(callable(getattr(self._xt, fn, None)) for fn in functions)
            for feature, functions in _FEATURE_FUNCTIONS.items()
        }
        features.update({"level2": False, "financial": False, "trading": False})
        return Capabilities(
            source=self.name,
            markets=("SH", "SZ", "BJ"),
            periods=HISTORY_PERIODS,
            dividend_types=DIVIDEND_TYPES,
            features=features,
            max_codes_per_request=self._config.max_codes_per_request,
        )

    # -- market data -----------------------------------------------------------------------------------

    async def snapshot(self, codes: Sequence[str]) -> dict[str, dict[str, Any]]:
        codes = self._check_codes(codes)
        if not codes:
            return {}
        fn = self._function("get_full_tick")
        # Queued snapshot requests are merged by the executor into one get_full_tick(union).
        return await self._guard(
            "get_full_tick",
            self._executor.submit_merged(
                Lane.SNAPSHOT, "get_full_tick", codes, fn, name="get_full_tick", joinable=True
            ),
        )

    async def market_snapshot(self, markets: Sequence[str]) -> dict[str, dict[str, Any]]:
        # Not merged: market tokens expand upstream, so the answer is not keyed by the requested items.
        return await self._call(Lane.SNAPSHOT, "get_full_tick", list(markets))

    async def history(
        self,
        codes: Sequence[str],
        period: str = "1d",
        start: str = "",
        end: str = "",
        count: int = -1,
        dividend_type: str = "none",
        fill_data: bool = True,
        fields: Sequence[str] = (),
    ) -> dict[str, pd.DataFrame]:
        codes = self._check_codes(codes)
        check_period(period)
        if dividend_type not in DIVIDEND_TYPES:
            raise BadRequest(
                f"invalid dividend_type {dividend_type!r}; expected one of {', '.join(DIVIDEND_TYPES)}",
                {"dividend_type": dividend_type, "allowed": list(DIVIDEND_TYPES)},
            )
        if not codes:
            return {}
        key = (tuple(codes), period, start, end, count, dividend_type, fill_data, tuple(fields))

        async def read(chunk: list[str]) -> dict[str, Any]:
            return await self._call(
                Lane.HISTORY,
                "get_market_data_ex",
                field_list=list(fields),
                stock_list=chunk,
                period=period,
                start_time=start,
                end_time=end,
                count=count,
                dividend_type=dividend_type,
                fill_data=fill_data,
            )

        async def read_all() -> dict[str, Any]:
            # Chunks queue one behind the other on the history lane; snapshot jobs can run in between.
            size = self._config.history_chunk_size
            parts = await asyncio.gather(*(read(codes[i : i + size]) for i in range(0, len(codes), size)))
            merged: dict[str, Any] = {}
            for part in parts:
                merged.update(part)
            return merged

        return await self._history_calls.run(key, read_all)

    # -- subscriptions ---------------------------------------------------------------------------------

    async def subscribe_whole_quote(self, codes: Sequence[str], callback: QuoteCallback) -> int:
        sub_id = await self._call(Lane.CONTROL, "subscribe_whole_quote", list(codes), callback=callback)
        return self._remember(sub_id, "subscribe_whole_quote", list(codes)[:10])

    async def subscribe_quote(self, code: str, period: str, callback: QuoteCallback) -> int:
        check_period(period)
        sub_id = await self._call(Lane.CONTROL, "subscribe_quote", code, period, count=0, callback=callback)
        return self._remember(sub_id, "subscribe_quote", [code])

    def _remember(self, sub_id: Any, call: str, codes: list[str]) -> int:
        if not isinstance(sub_id, int) or sub_id < 0:
            raise SourceError(
                f"{call} refused the subscription (answered {sub_id!r})", {"call": call, "codes": codes}
            )
        handle = self._next_handle
        self._next_handle += 1
        self._subscriptions[handle] = sub_id
        return handle

    async def unsubscribe(self, handle: int) -> None:
        sub_id = self._subscriptions.pop(handle, None)
        if sub_id is not None and self._connected:
            with contextlib.suppress(QmtgateError):
                await self._call(Lane.CONTROL, "unsubscribe_quote", sub_id)

    # -- reference data (cached per trading day) -------------------------------------------------------

    async def instrument_details(
        self, codes: Sequence[str], complete: bool = False
    ) -> dict[str, dict[str, Any] | None]:
        return await self._details(self._check_codes(codes), complete)

    async def _details(self, codes: list[str], complete: bool) -> dict[str, dict[str, Any] | None]:
        keyed = await self._cache.get_many(
            [("detail", code, complete) for code in codes],
            lambda keys: self._load_details([key[1] for key in keys], complete),
        )
        return {key[1]: value for key, value in keyed.items()}

    async def _load_details(self, codes: list[str], complete: bool) -> dict[tuple[str, str, bool], Any]:
        # One SDK call per chunk where xtdata has get_instrument_detail_list (a slow terminal then costs
        # one round trip per chunk, not per code); else a loop of cheap local reads in one job per chunk.
        batched = getattr(self._xt, "get_instrument_detail_list", None)
        if callable(batched):
            fn, job, name = batched, _detail_list, "get_instrument_detail_list"
        else:
            fn, job, name = self._function("get_instrument_detail"), _detail_many, "get_instrument_detail"
        loaded: dict[tuple[str, str, bool], Any] = {}
        size = self._config.detail_chunk_size
        for i in range(0, len(codes), size):
            chunk = codes[i : i + size]
            # merged: the cold requests of a burst each checking their codes share one call
            details = await self._guard(
                name,
                self._executor.submit_merged(
                    Lane.SNAPSHOT,
                    (name, complete),
                    chunk,
                    functools.partial(_details_of, job, fn, complete),
                    name=name,
                ),
            )
            loaded.update({("detail", code, complete): details.get(code) for code in chunk})
        return loaded

    async def unknown_codes(self, codes: Sequence[str]) -> list[str]:
        """Codes the source does not know, checked against today's instrument index (a fixed number of
        sector-list calls per day, loaded in the background), then, for codes outside it (options, futures,
        a listing since the index loaded) or while it loads, against batched instrument details cached for
        the day."""
        codes = self._check_codes(codes, limit=None)
        if not codes:
            return []
        absent = await self._universe.missing(codes, wait=False)
        if absent is None:  # the index is loading (or empty): one batched detail call per chunk
            absent = codes
        elif not absent:
            return []
        details = await self._details(absent, False)
        return [code for code in absent if details.get(code) is None]

    async def warm_reference(self) -> None:
        if self._connected:  # a failing call would overwrite the connect error readiness reports
            await self._universe.codes()

    @property
    def universe(self) -> InstrumentIndex:
        return self._universe

    async def _load_universe(self) -> set[str]:
        fn = getattr(self._xt, "get_stock_list_in_sector", None)
        if not callable(fn):
            return set()
        # one short job per sector on the history lane: no request waits for the index (it is checked
        # with batched details meanwhile), so snapshots and reference reads go first
        lists = await asyncio.gather(
            *(self._call(Lane.HISTORY, "get_stock_list_in_sector", sector) for sector in UNIVERSE_SECTORS)
        )
        return {code for members in lists for code in (members or ()) if isinstance(code, str)}

    async def instrument_type(self, code: str) -> dict[str, bool]:
        return (
            await self._cache.get(
                ("type", code), lambda: self._call(Lane.SNAPSHOT, "get_instrument_type", code)
            )
            or {}
        )

    async def sector_list(self) -> list[str]:
        version = await self._sector_data()
        return list(
            await self._cache.get(("sectors", version), lambda: self._call(Lane.SNAPSHOT, "get_sector_list"))
        )

    async def sector_members(self, sector: str) -> list[str]:
        version = await self._sector_data()
        return list(
            await self._cache.get(
                ("sector", sector, version),
                lambda: self._call(Lane.SNAPSHOT, "get_stock_list_in_sector", sector),
            )
            or []
        )

    async def _sector_data(self) -> dt.date | None:
        """Fetch QMT's sector membership data (``download_sector_data``) once per cache day.

        Index-constituent sectors (沪深300, 中证500, ...) and industry sectors (SW1银行, ...) exist in QMT only
        after ``download_sector_data()``; without it only the exchange-structure sectors (沪深A股, 科创板, ...)
        are listed. Returns the cache day the data was fetched on (None while it is not), which keys the
        cached sector answers, so answers read before the download are not served after it. A failed
        download (no data permission on the terminal) is logged and retried after a pause.
        """
        if not callable(getattr(self._xt, "download_sector_data", None)):
            return None
        day = self._cache.cache_day()
        if self._sector_data_day == day or time.monotonic() < self._sector_data_retry_at:
            return self._sector_data_day if self._sector_data_day == day else None
        await self._sector_downloads.run(day, lambda: self._download_sector_data(day))
        return self._sector_data_day if self._sector_data_day == day else None

    async def _download_sector_data(self, day: dt.date) -> None:
        if self._sector_data_day == day:
            return
        try:
            # ahead of bulk downloads (a reader waits for it), with a download's deadline: outliving a
            # history call's 30 s would mark the executor DEGRADED while QMT is still fetching
            timeout = self._executor.config.timeout.get(Lane.DOWNLOAD, DEFAULT_TIMEOUT[Lane.DOWNLOAD])
            await self._call(Lane.HISTORY, "download_sector_data", timeout=timeout)
        except SourceUnavailable:
            raise
        except QmtgateError as e:
            self._sector_data_retry_at = time.monotonic() + SECTOR_DATA_RETRY_SECONDS
            logger.warning(
                "download_sector_data failed (%s): only exchange-structure sectors are listed; retrying in "
                "%d s",
                e.message,
                SECTOR_DATA_RETRY_SECONDS,
            )
            return
        self._sector_data_day = day

    async def trading_dates(self, market: str, start: str = "", end: str = "", count: int = -1) -> list[int]:
        return list(
            await self._cache.get(
                ("trading_dates", market, start, end, count),
                lambda: self._call(Lane.SNAPSHOT, "get_trading_dates", market, start, end, count),
            )
        )

    async def trading_calendar(self, market: str, start: str = "", end: str = "") -> list[str]:
        if market not in ("SH", "SZ"):
            # xtquant raises a plain Exception for other markets; say it precisely instead.
            raise BadRequest(
                f"trading calendar is available for SH and SZ only, not {market!r}", {"market": market}
            )
        return list(
            await self._cache.get(
                ("trading_calendar", market, start, end),
                lambda: self._call(Lane.SNAPSHOT, "get_trading_calendar", market, start, end),
            )
        )

    async def holidays(self) -> list[str]:
        return [
            str(day)
            for day in await self._cache.get(("holidays",), lambda: self._call(Lane.SNAPSHOT, "get_holidays"))
        ]

    async def divid_factors(self, code: str, start: str = "", end: str = "") -> pd.DataFrame:
        return await self._cache.get(
            ("divid_factors", code, start, end),
            lambda: self._call(Lane.HISTORY, "get_divid_factors", code, start, end),
        )

    # -- downloads -------------------------------------------------------------------------------------

    async def download_history(
        self,
        codes: Sequence[str],
        period: str,
        start: str = "",
        end: str = "",
        *,
        incrementally: bool | None = None,
        progress: ProgressCallback | None = None,
        urgent: bool = False,
    ) -> DownloadResult:
        codes = self._check_codes(codes, limit=None)
        check_period(period)
        self._function("download_history_data2")
        began = time.monotonic()
        total = len(codes)
        size = self._config.download_chunk_size
        info: dict[str, Any] = {}
        chunks = 0
        for offset in range(0, total, size):
            chunk = codes[offset : offset + size]
            callback = self._progress_relay(progress, offset, total) if progress is not None else None
            answer = await self._call(
                Lane.HISTORY if urgent else Lane.DOWNLOAD,
                "download_history_data2",
                chunk,
                period,
                start,
                end,
                callback=callback,
                incrementally=incrementally,
            )
            chunks += 1
            if isinstance(answer, dict):
                info.update(answer)
            if progress is not None:
                progress(DownloadProgress(finished=offset + len(chunk), total=total, code=chunk[-1]))
        return DownloadResult(
            codes=tuple(codes),
            period=period,
            start=start,
            end=end,
            chunks=chunks,
            elapsed_seconds=time.monotonic() - began,
            info=info,
        )

    def _progress_relay(self, progress: ProgressCallback, offset: int, total: int) -> Callable[[Any], None]:
        loop = self._loop
        assert loop is not None

        def relay(data: Any) -> None:
            # Runs on the executor (or an xtquant) thread: translate and hop onto the loop.
            if not isinstance(data, dict):
                return
            report = DownloadProgress(
                finished=min(total, offset + int(data.get("finished", 0) or 0)),
                total=total,
                code=str(data.get("stockcode", "") or ""),
                message=str(data.get("message", "") or ""),
            )
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(progress, report)

        return relay

    # -- plumbing --------------------------------------------------------------------------------------

    def _check_codes(self, codes: Sequence[str], limit: int | None = -1) -> list[str]:
        if isinstance(codes, str):
            codes = [codes]
        unique = list(dict.fromkeys(codes))
        if limit == -1:
            limit = self._config.max_codes_per_request
        if limit is not None and len(unique) > limit:
            raise BadRequest(
                f"too many codes: {len(unique)} > {limit} per request", {"count": len(unique), "limit": limit}
            )
        return unique

    def _function(self, fn_name: str) -> Callable[..., Any]:
        fn = getattr(self._xt, fn_name, None)
        if not callable(fn):
            raise Unsupported(f"the {self.name} source does not provide {fn_name}", {"call": fn_name})
        return fn

    async def _call(
        self, lane: Lane, fn_name: str, *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> Any:
        fn = self._function(fn_name)
        return await self._guard(
            fn_name, self._executor.submit(lane, fn, *args, timeout=timeout, name=fn_name, **kwargs)
        )

    async def _guard(self, fn_name: str, awaitable: Any) -> Any:
        """Await an executor job and translate upstream exceptions into typed errors."""
        try:
            result = await awaitable
        except QmtgateError:
            raise
        except Exception as e:
            text = str(e)
            if any(marker in text for marker in _DISCONNECTED_MARKERS):
                self._set_connected(False, text[:200])
                raise SourceUnavailable(
                    f"{self.name} source is not connected: {text[:200]}", {"call": fn_name}
                ) from e
            raise SourceError(
                f"{fn_name} failed: {type(e).__name__}: {text[:200]}", {"call": fn_name, "source": self.name}
            ) from e
        self._last_ok = time.monotonic()
        return result


def _detail_many(fn: Callable[..., Any], codes: list[str], complete: bool) -> dict[str, Any]:
    return {code: fn(code, complete) for code in codes}


def _details_of(
    job: Callable[[Callable[..., Any], list[str], bool], dict[str, Any]],
    fn: Callable[..., Any],
    complete: bool,
    codes: list[str],
) -> dict[str, Any]:
    # submit_merged calls fn(union of items); unknown codes must map to None, not be absent
    answer = job(fn, codes, complete)
    return {code: answer.get(code) for code in codes}


def _detail_list(fn: Callable[..., Any], codes: list[str], complete: bool) -> dict[str, Any]:
    answer = fn(codes, complete)
    return answer if isinstance(answer, dict) else {}
