"""A market source that replays one recorded session from a recording database (``--source replay``).

It implements the same :class:`~qmtgate.source.base.MarketSource` interface, in the same xtdata shapes
and units (volume in lots, camelCase tick dicts, ``{code: DataFrame}`` history), as the live sources,
so the hub, the quote cache, the REST routes and the WebSocket API run unchanged on it; only the source
name says ``replay``.

A replay clock starts at the session's first recorded tick (or at ``start``) and runs at ``speed``
simulated seconds per wall second, stepping over stretches in which nothing was recorded (the quiet
minutes after the 09:25 opening match, the lunch break): a client always sees the market move. A publisher thread follows it: every recorded snapshot whose time has
come is pushed, one push per recorded timestamp, in recorded order (``ORDER BY ts, seq``), to the
subscribed callbacks, as xtquant's callback threads do. History and snapshots answer what was recorded up
to the replay clock, never the future.

What a recording can answer, it answers: ticks, the recorded 1m bars, 5m/15m/30m/60m and daily bars
aggregated from them (the simulator's and QMT's conventions), and the reference data recorded with the
session (instrument details, sector membership, the trading calendar; ``record.reference``). The rest
(dividend factors, other days, sectors of a recording made without reference data) raises
``Unsupported`` (HTTP 501).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from qmtgate.codes import classify
from qmtgate.errors import BadRequest, SourceUnavailable, Unsupported
from qmtgate.record.bars import LABEL_SECONDS, index_of_label
from qmtgate.record.schema import RecordingError, has_table, open_database
from qmtgate.source.base import (
    Capabilities,
    DownloadResult,
    MarketSource,
    ProgressCallback,
    QuoteCallback,
    SourceState,
    SourceStatus,
)
from qmtgate.source.convert import SNAPSHOT_FIELDS, day_start_ms, labels
from qmtgate.source.events import SourceEventKind
from qmtgate.vocab import LOT
from qmtgate.vocab import xt_tick as vocab_xt_tick

logger = logging.getLogger(__name__)

REPLAY = "replay"
REPLAY_PERIODS: tuple[str, ...] = ("tick", "1m", "5m", "15m", "30m", "60m", "1h", "1d")
#: streamed periods (subscribe_quote): the recorded ones
STREAM_PERIODS: tuple[str, ...] = ("tick", "1m")
MINUTE_SIZE = {"5m": 5, "15m": 15, "30m": 30, "60m": 60, "1h": 60}
#: recorded time in which no tick was recorded for longer than this is stepped over by the replay clock
GAP_SKIP_MS = 10_000
#: what the clock keeps of a gap on each side (the last snapshot before it stays on screen briefly)
GAP_KEEP_MS = 1_000
#: the columns of ``_TICK_SQL``, in its order
_TICK_COLUMNS = ("code", "ts", *SNAPSHOT_FIELDS)
_TICK_SQL = f"SELECT {', '.join(_TICK_COLUMNS)} FROM ticks "


def xt_tick(row: Sequence[Any]) -> dict[str, Any]:
    """A stored tick row (``_TICK_SQL`` order) as an xtquant ``get_full_tick`` dict (volumes in lots)."""
    return vocab_xt_tick(dict(zip(_TICK_COLUMNS, row, strict=True)))


@dataclass
class _Sub:
    callback: QuoteCallback
    markets: frozenset[str] = frozenset()
    codes: frozenset[str] = frozenset()
    period: str = "tick"
    whole: bool = False
    first: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def wants(self, code: str) -> bool:
        return code in self.codes or code.rpartition(".")[2] in self.markets


class ReplayClock:
    """Recorded time moving at ``speed`` from ``start_ms`` (epoch ms), capped at ``end_ms``.

    ``gaps`` are (last tick before, first tick after) pairs of silent stretches: the clock runs
    :data:`GAP_KEEP_MS` into each and then jumps to :data:`GAP_KEEP_MS` before its end."""

    def __init__(
        self,
        start_ms: int,
        end_ms: int,
        speed: float,
        gaps: Sequence[tuple[int, int]] = (),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.start_ms, self.end_ms, self.speed = start_ms, end_ms, speed
        self.gaps = sorted((a, b) for a, b in gaps if b - a > 2 * GAP_KEEP_MS and b > start_ms)
        self._monotonic = monotonic
        self._anchor = monotonic()

    def now_ms(self) -> int:
        t = self.start_ms + int((self._monotonic() - self._anchor) * self.speed * 1000)
        for a, b in self.gaps:
            enter = max(a, self.start_ms) + GAP_KEEP_MS
            if t <= enter:
                break
            t += max(0, (b - GAP_KEEP_MS) - enter)
        return min(self.end_ms, t)


def newest_recorded_day(path: str | Path) -> dt.date:
    """The newest day with recorded ticks: what ``--source replay`` serves when no ``--date`` is given."""
    if not Path(path).exists():
        raise ValueError(f"no recording at {path}")
    try:
        con = open_database(path, read_only=True)
    except RecordingError as e:
        raise ValueError(str(e)) from e
    try:
        row = con.execute("SELECT max(date) FROM ticks").fetchone() if has_table(con, "ticks") else None
    finally:
        con.close()
    if row is None or row[0] is None:
        raise ValueError(f"{path} holds no recorded ticks to replay")
    return row[0]


class ReplaySource(MarketSource):
    """Replays ``day`` of the recording at ``path``; see the module docstring."""

    name = REPLAY

    def __init__(
        self,
        path: str | Path,
        day: dt.date,
        *,
        speed: float = 1.0,
        start: str | None = None,
        poll_seconds: float = 0.02,
    ) -> None:
        if speed <= 0:
            raise ValueError("replay speed must be positive")
        self.path = Path(path)
        self.day = day
        self.speed = speed
        self.start_text = start
        self.poll_seconds = poll_seconds
        self._con: Any = None
        self._lock = threading.Lock()  # the connection is used by the publisher and by data calls
        self._subs: dict[int, _Sub] = {}
        self._handles = itertools.count(1)
        self._latest: dict[str, dict[str, Any]] = {}
        self._pushed_ts = -1
        self._bars_ts = -1
        self._codes: list[str] = []
        self._pre_close: dict[str, float | None] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = SourceState.STARTING
        self._since = time.time()
        self.clock: ReplayClock | None = None
        self._details: dict[str, dict[str, Any]] = {}
        self._sectors: dict[str, list[str]] | None = None  # None: recorded without reference data
        self._calendar: list[dt.date] = []

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._open)
        self._thread = threading.Thread(target=self._run, name="qmtgate-replay-publisher", daemon=True)
        self._thread.start()
        self._state, self._since = SourceState.READY, time.time()
        self.events.bind(asyncio.get_running_loop())
        self.announce(SourceEventKind.CONNECTED)

    def _open(self) -> None:
        try:
            self._con = open_database(self.path, read_only=True)
        except RecordingError as e:
            raise SourceUnavailable(str(e), {"source": REPLAY, "db": str(self.path)}) from e
        first, last = self._con.execute(
            "SELECT min(ts), max(ts) FROM ticks WHERE date = ?", [self.day]
        ).fetchall()[0]
        if first is None:
            self._con.close()
            raise SourceUnavailable(
                f"recording {self.path} has no ticks on {self.day.isoformat()}",
                {"source": REPLAY, "date": self.day.isoformat()},
            )
        start = first
        if self.start_text:
            text = self.start_text.replace(":", "")
            moment = dt.datetime.strptime(self.day.strftime("%Y%m%d") + text.ljust(6, "0"), "%Y%m%d%H%M%S")
            start = day_start_ms(self.day) + (moment.hour * 3600 + moment.minute * 60 + moment.second) * 1000
        rows = self._con.execute(
            "SELECT code, arg_min(pre_close, ts) FROM ticks WHERE date = ? GROUP BY code ORDER BY code",
            [self.day],
        ).fetchall()
        self._codes = [r[0] for r in rows]
        self._pre_close = {r[0]: r[1] for r in rows}
        self._pushed_ts = start - 1
        self._bars_ts = start - 1
        # what was current at the start: the latest snapshot of each code before it
        for row in self._con.execute(
            "SELECT * EXCLUDE (rn) FROM (SELECT code, ts, last_price, open, high, low, pre_close, volume, "
            "amount, trades, phase, bid_price, bid_volume, ask_price, ask_volume, row_number() OVER "
            "(PARTITION BY code ORDER BY ts DESC, seq DESC) AS rn FROM ticks WHERE date = ? AND ts < ?) "
            "WHERE rn = 1",
            [self.day, start],
        ).fetchall():
            self._latest[row[0]] = xt_tick(row)
        gaps = self._con.execute(
            "SELECT prev, ts FROM (SELECT ts, lag(ts) OVER (ORDER BY ts) AS prev FROM "
            "(SELECT DISTINCT ts FROM ticks WHERE date = ?)) WHERE ts - prev > ?",
            [self.day, GAP_SKIP_MS],
        ).fetchall()
        self._load_reference()
        self.clock = ReplayClock(start, last, self.speed, [(int(a), int(b)) for a, b in gaps])

    def _load_reference(self) -> None:
        """Instrument details, sectors and calendar recorded with the session (``record.reference``)."""
        import json

        con = self._con
        if has_table(con, "ref_instruments"):
            for code, detail in con.execute(
                "SELECT code, detail FROM ref_instruments WHERE date = ?", [self.day]
            ).fetchall():
                with contextlib.suppress(ValueError):
                    self._details[code] = json.loads(detail)
        if has_table(con, "ref_sectors"):
            rows = con.execute(
                "SELECT sector, list(code ORDER BY code) FROM ref_sectors WHERE date = ? GROUP BY sector "
                "ORDER BY sector",
                [self.day],
            ).fetchall()
            if rows or self._details:
                self._sectors = {name: list(codes) for name, codes in rows}
        if has_table(con, "ref_calendar"):
            self._calendar = [
                r[0]
                for r in con.execute(
                    "SELECT day FROM ref_calendar WHERE market = 'SH' AND day <= ? ORDER BY day", [self.day]
                ).fetchall()
            ]

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
        if self._con is not None:
            with self._lock:
                self._con.close()
            self._con = None
        was_ready = self._state is SourceState.READY
        self._state, self._since = SourceState.STOPPED, time.time()
        if was_ready:
            self.announce(SourceEventKind.DISCONNECTED, "stopped")

    def status(self) -> SourceStatus:
        connected = self._state is SourceState.READY
        note = None
        if self.clock is not None:
            note = (
                f"replaying {self.path.name} session {self.day.isoformat()} at {self.speed:g}x "
                f"(recorded data, not live quotes)"
            )
        return SourceStatus(
            name=self.name,
            state=self._state,
            connected=connected,
            message=None if connected else self._state.value,
            since=self._since,
            connection=1 if connected else 0,
            note=note,
        )

    def capabilities(self) -> Capabilities:
        features = {
            "snapshot": True,
            "history": True,
            "subscribe": True,
            "instrument_detail": True,
            "instrument_type": True,
            "sectors": self._sectors is not None,
            "calendar": True,
            "divid_factors": False,
            "download": False,
            "level2": False,
            "financial": False,
            "trading": False,
        }
        return Capabilities(REPLAY, ("SH", "SZ", "BJ"), REPLAY_PERIODS, ("none",), features, 5000)

    def now_ms(self) -> int:
        return self.clock.now_ms() if self.clock is not None else int(time.time() * 1000)

    # -- the publisher ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:  # the replay keeps going, as a live feed would
                logger.exception("replay publisher step failed")
            self._stop.wait(self.poll_seconds)

    def _step(self) -> None:
        now = self.now_ms()
        subs = list(self._subs.values())
        for sub in subs:
            if sub.first and sub.whole:
                sub.first = False
                snapshot = {c: t for c, t in self._latest.items() if sub.wants(c)}
                if snapshot:
                    _call(sub.callback, snapshot)
        if now > self._pushed_ts:
            with self._lock:
                rows = self._con.execute(
                    _TICK_SQL + "WHERE date = ? AND ts > ? AND ts <= ? ORDER BY ts, seq",
                    [self.day, self._pushed_ts, now],
                ).fetchall()
            self._pushed_ts = now
            for _ts, group in itertools.groupby(rows, key=lambda r: r[1]):
                burst = {r[0]: xt_tick(r) for r in group}
                self._latest.update(burst)
                for sub in subs:
                    if sub.period != "tick":
                        continue
                    if sub.whole:
                        part = {c: t for c, t in burst.items() if sub.wants(c)}
                        if part:
                            _call(sub.callback, part)
                    else:
                        for code in sub.codes & burst.keys():
                            _call(sub.callback, {code: [burst[code]]})
        bar_subs = [s for s in subs if s.period == "1m"]
        if bar_subs and now > self._bars_ts:
            with self._lock:
                bars = self._con.execute(
                    "SELECT code, ts, open, high, low, close, volume, amount, pre_close FROM bars "
                    "WHERE date = ? AND period = '1m' AND ts > ? AND ts <= ? ORDER BY ts, code",
                    [self.day, self._bars_ts, now],
                ).fetchall()
            self._bars_ts = now
            for code, ts, o, h, lo, c, v, a, pre in bars:
                item = {"time": ts, "open": o, "high": h, "low": lo, "close": c, "volume": (v or 0) // LOT,
                        "amount": a, "preClose": pre, "settelementPrice": 0.0, "openInterest": 0,
                        "suspendFlag": 0}  # fmt: skip
                for sub in bar_subs:
                    if code in sub.codes:
                        _call(sub.callback, {code: [item]})

    # -- subscriptions ---------------------------------------------------------------------------------

    async def subscribe_whole_quote(self, codes: Sequence[str], callback: QuoteCallback) -> int:
        markets = frozenset(c for c in codes if c in ("SH", "SZ", "BJ"))
        explicit = frozenset(c for c in codes if c not in markets)
        handle = next(self._handles)
        self._subs[handle] = _Sub(callback, markets, explicit, whole=True)
        return handle

    async def subscribe_quote(self, code: str, period: str, callback: QuoteCallback) -> int:
        if period not in STREAM_PERIODS:
            raise Unsupported(
                f"a replay streams {', '.join(STREAM_PERIODS)} only, not {period!r}",
                {"period": period, "allowed": list(STREAM_PERIODS), "source": REPLAY},
            )
        handle = next(self._handles)
        self._subs[handle] = _Sub(callback, codes=frozenset([code]), period=period, first=False)
        return handle

    async def unsubscribe(self, handle: int) -> None:
        self._subs.pop(handle, None)

    # -- data ------------------------------------------------------------------------------------------

    async def snapshot(self, codes: Sequence[str]) -> dict[str, dict[str, Any]]:
        latest = self._latest
        return {c: latest[c] for c in codes if c in latest}

    async def market_snapshot(self, markets: Sequence[str]) -> dict[str, dict[str, Any]]:
        wanted = set(markets)
        return {c: t for c, t in self._latest.items() if c.rpartition(".")[2] in wanted}

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
        if period not in REPLAY_PERIODS:
            raise Unsupported(
                f"a replay holds {', '.join(REPLAY_PERIODS)} data only, not {period!r}",
                {"period": period, "allowed": list(REPLAY_PERIODS), "source": REPLAY},
            )
        if dividend_type != "none":
            raise BadRequest("a replay serves unadjusted prices only", {"dividend_type": dividend_type})
        lo = _bound(start, False)
        hi = min(_bound(end, True) or 2**62, self.now_ms())
        return await asyncio.to_thread(self._history, list(codes), period, lo, hi, count, list(fields))

    def _history(
        self, codes: list[str], period: str, lo: int | None, hi: int, count: int, fields: list[str]
    ) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        for code in codes:
            if period not in ("tick", "1m"):
                out[code] = self._aggregated(code, period, lo, hi, count, fields)
                continue
            if period == "tick":
                sql = _TICK_SQL + "WHERE date = ? AND code = ? AND ts >= ? AND ts <= ? ORDER BY ts, seq"
            else:
                sql = (
                    "SELECT code, ts, open, high, low, close, volume, amount, pre_close FROM bars "
                    "WHERE date = ? AND code = ? AND period = '1m' AND ts >= ? AND ts <= ? ORDER BY ts"
                )
            with self._lock:
                rows = self._con.execute(
                    sql, [self.day, code, lo if lo is not None else -(2**62), hi]
                ).fetchall()
            if count is not None and count >= 0:
                rows = rows[len(rows) - count :] if count else []
            if period == "tick":
                records = [xt_tick(r) for r in rows]
            else:
                records = [
                    {"time": r[1], "open": r[2], "high": r[3], "low": r[4], "close": r[5],
                     "volume": (r[6] or 0) // LOT, "amount": r[7], "settelementPrice": 0.0,
                     "openInterest": 0, "preClose": r[8], "suspendFlag": 0}
                    for r in rows
                ]  # fmt: skip
            frame = pd.DataFrame.from_records(records)
            if len(frame):
                frame.index = labels(frame["time"].to_numpy(), daily=False)
                if fields:
                    frame = frame[[f for f in fields if f in frame.columns]]
            out[code] = frame
        return out

    def _aggregated(
        self, code: str, period: str, lo: int | None, hi: int, count: int, fields: list[str]
    ) -> pd.DataFrame:
        """N-minute or daily bars of one code from its recorded 1m bars up to ``hi`` (the replay clock).

        The simulator's (and QMT's) convention: an N-minute bar is labelled by its end (09:35 holds the
        09:30 opening-match bar and 09:31-09:35), the daily bar by 00:00 of its day; high and low come
        from minutes that traded, open from the first that traded, ``preClose`` from the first minute."""
        with self._lock:
            rows = self._con.execute(
                "SELECT ts, open, high, low, close, volume, amount, pre_close FROM bars "
                "WHERE date = ? AND code = ? AND period = '1m' AND ts <= ? ORDER BY ts",
                [self.day, code, hi],
            ).fetchall()
        groups: dict[int, list[tuple[Any, ...]]] = {}
        size = MINUTE_SIZE.get(period)
        for row in rows:
            key = 0 if size is None else _minute_group(index_of_label(self.day, row[0]), size)
            groups.setdefault(key, []).append(row)
        start = day_start_ms(self.day)
        records = []
        for key, members in groups.items():
            traded = [m for m in members if (m[5] or 0) > 0]
            basis = traded or members[:1]
            label = start if size is None else start + LABEL_SECONDS[_group_end(key, size)] * 1000
            records.append(
                {"time": label, "open": basis[0][1], "high": max(m[2] for m in basis),
                 "low": min(m[3] for m in basis), "close": members[-1][4],
                 "volume": sum(m[5] or 0 for m in members) // LOT, "amount": sum(m[6] or 0.0 for m in members),
                 "settelementPrice": 0.0, "openInterest": 0, "preClose": members[0][7], "suspendFlag": 0}
            )  # fmt: skip
        records = [r for r in records if lo is None or r["time"] >= lo]
        if count is not None and count >= 0:
            records = records[len(records) - count :] if count else []
        frame = pd.DataFrame.from_records(records)
        if len(frame):
            frame.index = labels(frame["time"].to_numpy(), daily=size is None)
            if fields:
                frame = frame[[f for f in fields if f in frame.columns]]
        return frame

    async def instrument_details(
        self, codes: Sequence[str], complete: bool = False
    ) -> dict[str, dict[str, Any] | None]:
        out: dict[str, dict[str, Any] | None] = {}
        for code in codes:
            if code in self._details:
                out[code] = dict(self._details[code])
                continue
            if code not in self._pre_close:
                out[code] = None
                continue
            digits, _, market = code.partition(".")
            out[code] = {
                "ExchangeID": market,
                "InstrumentID": digits,
                "InstrumentName": code,
                "PreClose": self._pre_close[code],
                "PriceTick": 0.001 if classify(code) in ("etf", "fund") else 0.01,
                "VolumeMultiple": 1,
                "TradingDay": self.day.strftime("%Y%m%d"),
                "InstrumentStatus": 0,
            }
        return out

    async def instrument_type(self, code: str) -> dict[str, bool]:
        known = code in self._pre_close or code in self._details
        return {classify(code): True} if known else {}

    def _require_sectors(self) -> dict[str, list[str]]:
        if self._sectors is None:
            raise Unsupported(
                f"recording {self.path.name} holds no sector data for {self.day.isoformat()} "
                "(recorded before qmtgate kept reference data)",
                {"feature": "sectors", "source": REPLAY},
            )
        return self._sectors

    async def sector_list(self) -> list[str]:
        return list(self._require_sectors())

    async def sector_members(self, sector: str) -> list[str]:
        return list(self._require_sectors().get(sector, []))

    async def trading_dates(self, market: str, start: str = "", end: str = "", count: int = -1) -> list[int]:
        days = sorted({*self._calendar, self.day})  # the replayed day is a trading day (it has ticks)
        lo, hi = _bound(start, False), _bound(end, True)
        out = [day_start_ms(d) for d in days]
        out = [ms for ms in out if (lo is None or ms >= lo) and (hi is None or ms <= hi)]
        return out[-count:] if count is not None and count > 0 else out

    async def trading_calendar(self, market: str, start: str = "", end: str = "") -> list[str]:
        return [dt.datetime.fromtimestamp(ms / 1000 + 8 * 3600, dt.timezone.utc).strftime("%Y%m%d")
                for ms in await self.trading_dates(market, start, end)]  # fmt: skip

    async def holidays(self) -> list[str]:
        raise Unsupported("a replay holds no holiday list", {"feature": "holidays", "source": REPLAY})

    async def divid_factors(self, code: str, start: str = "", end: str = "") -> pd.DataFrame:
        raise Unsupported(
            "a replay serves unadjusted prices and holds no dividend factors",
            {"feature": "divid_factors", "source": REPLAY},
        )

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
        """Nothing to download: the recording is the local data."""
        return DownloadResult(tuple(codes), period, start, end, 0, 0.0)


def _call(callback: Callable[[Any], None], payload: Any) -> None:
    try:
        callback(payload)
    except Exception:  # as xtquant: a raising callback is reported, the feed goes on
        logger.exception("replay subscriber callback failed")


def _bound(text: str, is_end: bool) -> int | None:
    """xtdata time text ('' / YYYYMMDD / YYYYMMDDHHMMSS, Asia/Shanghai) -> epoch ms."""
    if not text:
        return None
    day = dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    if len(text) == 8:
        return day_start_ms(day) + (86_400_000 - 1 if is_end else 0)
    return day_start_ms(day) + (int(text[8:10]) * 3600 + int(text[10:12]) * 60 + int(text[12:14])) * 1000


def _minute_group(k: int, size: int) -> int:
    """N-minute group of 1m bar ``k`` (0..240): the 09:30 bar joins the first group (as the simulator)."""
    if k <= 120:
        return max(k - 1, 0) // size
    return 120 // size + (k - 121) // size


def _group_end(group: int, size: int) -> int:
    """Index of the last 1m bar of ``group`` (its label is the group's end time)."""
    return max(k for k in range(241) if _minute_group(k, size) == group)
