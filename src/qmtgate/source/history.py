"""K-line reads as a real gateway must do them: download what is missing, then read, and reuse what cannot change.

Three rules from QMT's semantics (xtquant-api.md §3.1) shape this service:

1. **Reads see local data only.** Minute and tick history is empty until ``download_history_data2`` has
   fetched it. Before reading, :meth:`HistoryService.ensure_downloaded` asks the :class:`DownloadLedger`
   which sessions are missing for each (code, base period) and downloads just those: inline on the history
   lane for small requests, on the download lane for large ones.
2. **Today's bars come from the live subscription.** The forming session is visible only for subscribed
   codes, and changes every few seconds; complete sessions never change within a trading day.
3. **Complete sessions are immutable until the next day.** So bars of complete sessions are cached per
   (code, period, dividend type, fill) and reused while the last complete session and the ledger version of
   the code are unchanged (a download, a new session or the simulator's replay loop invalidates them).
   Today's forming daily bar is taken from the whole-market quote cache when it is live (it holds exactly
   the open/high/low/last/volume/amount of the session so far); other forming bars are read from the source.

Only periods whose bars never span sessions (minutes and ``1d``) are split this way; weekly and longer
bars, and ranges that end before the last complete session, are read from the source as asked.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from qmtgate.errors import Unsupported
from qmtgate.source.base import MarketSource, ProgressCallback
from qmtgate.source.calendar import CalendarService, SessionState, day_end_ms
from qmtgate.source.coalesce import Coalescer
from qmtgate.source.convert import Bars, bars_from_ticks, date_of_ms, day_start_ms, tail_parts
from qmtgate.source.ledger import DOWNLOAD_BASE, DownloadLedger

logger = logging.getLogger(__name__)

#: Bars per A-share session by period (241 one-minute bars: 09:30 carries the opening auction).
BARS_PER_SESSION: dict[str, float] = {
    "1m": 241,
    "5m": 49,
    "15m": 17,
    "30m": 9,
    "60m": 5,
    "1h": 5,
    "1d": 1,
    "1w": 1 / 5,
    "1mon": 1 / 20,
    "1q": 1 / 60,
    "1hy": 1 / 120,
    "1y": 1 / 240,
    "tick": 4800,
}
#: Periods whose bars never span two sessions, so complete-session bars can be cached and today's appended.
SPLITTABLE = frozenset({"1m", "5m", "15m", "30m", "60m", "1h", "1d"})
#: Dividend types that leave the latest bar unchanged (only earlier bars are adjusted).
_LATEST_UNCHANGED = frozenset({"none", "front", "front_ratio"})


class LiveTicks(Protocol):
    """What the history service needs from the quote cache (qmtgate.hub)."""

    def is_live(self) -> bool:
        """True when the cache holds the current session's snapshots (first push received, connected)."""

    def raw_tick(self, code: str) -> Mapping[str, Any] | None:
        """The latest xtquant tick dict of ``code``; None when it has no snapshot this session."""


def xt_time(ms: int) -> str:
    """Epoch ms -> xtdata's ``'YYYYMMDDHHMMSS'`` in Asia/Shanghai."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m%d%H%M%S")


def xt_day(day: dt.date | None) -> str:
    return "" if day is None else day.strftime("%Y%m%d")


@dataclass
class _Entry:
    as_of: dt.date
    version: int
    lo_ms: int | None  # None: everything the source has
    bars: Bars


class HistoryService:
    """Ensure-downloaded, cached K-line reads over a :class:`MarketSource`."""

    def __init__(
        self,
        source: MarketSource,
        calendar: CalendarService,
        ledger: DownloadLedger | None = None,
        *,
        quotes: LiveTicks | None = None,
        inline_download_codes: int = 50,
        cache_rows: int = 5_000_000,
        download_chunk: int = 20,
    ) -> None:
        self.source = source
        self.calendar = calendar
        self.ledger = ledger or DownloadLedger()
        self.quotes = quotes
        self._inline_codes = inline_download_codes
        self._cache_rows = cache_rows
        self._download_chunk = download_chunk
        self._cache: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self._cached_rows = 0
        self._downloads: Coalescer[tuple[Any, ...], None] = Coalescer()
        self.hits = 0
        self.misses = 0

    # -- downloads -------------------------------------------------------------------------------------

    async def ensure_downloaded(
        self,
        codes: Sequence[str],
        period: str,
        lo: dt.date | None,
        hi: dt.date,
        *,
        urgent: bool | None = None,
    ) -> int:
        """Download whatever of ``[lo, hi]`` the ledger lacks for ``period``'s base; return codes downloaded."""
        base = DOWNLOAD_BASE[period]
        groups: dict[tuple[dt.date | None, dt.date], list[str]] = {}
        for code in codes:
            for gap in self.ledger.missing(code, base, lo, hi):
                groups.setdefault(gap, []).append(code)
        if not groups:
            return 0
        count = len({code for group in groups.values() for code in group})
        urgent = count <= self._inline_codes if urgent is None else urgent
        for (gap_lo, gap_hi), group in groups.items():
            await self.download(group, base, gap_lo, gap_hi, urgent=urgent)
        return count

    async def download(
        self,
        codes: Sequence[str],
        base: str,
        lo: dt.date | None,
        hi: dt.date,
        *,
        urgent: bool = False,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Download ``[lo, hi]`` of ``base`` for ``codes`` and record it in the ledger chunk by chunk."""
        for i in range(0, len(codes), self._download_chunk):
            chunk = list(codes[i : i + self._download_chunk])
            key = (tuple(chunk), base, lo, hi)

            async def run(chunk: list[str] = chunk) -> None:
                await self.source.download_history(
                    chunk,
                    base,
                    xt_day(lo),
                    hi.strftime("%Y%m%d") + "235959",
                    urgent=urgent,
                    progress=progress,
                )

            await self._downloads.run(key, run)
            for code in chunk:
                self.ledger.record(code, base, lo, hi)

    # -- reads -----------------------------------------------------------------------------------------

    async def klines(
        self,
        codes: Sequence[str],
        period: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        count: int | None = None,
        dividend_type: str = "none",
        fill_data: bool = True,
    ) -> dict[str, Bars]:
        """Bars per code with ``start_ms <= time <= end_ms``, the last ``count`` of them when given.

        At least one of ``start_ms`` and ``count`` should be given; with neither, everything the source has.
        """
        parts = await self.kline_parts(codes, period, start_ms, end_ms, count, dividend_type, fill_data)
        return {code: Bars.concat(p) for code, p in parts.items()}

    async def kline_parts(
        self,
        codes: Sequence[str],
        period: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        count: int | None = None,
        dividend_type: str = "none",
        fill_data: bool = True,
    ) -> dict[str, list[Bars]]:
        """As :meth:`klines`, with each code's bars as consecutive parts (saves copying for big answers)."""
        codes = list(dict.fromkeys(codes))
        self.require_supported(period, dividend_type)
        if not codes or count == 0:
            return {code: [] for code in codes}
        session = await self.calendar.session()
        await self._ensure_for_read(codes, period, start_ms, end_ms, count, session)

        last = session.last_complete
        reaches_now = end_ms is None or (last is not None and end_ms >= day_end_ms(last))
        if self._cache_rows <= 0 or period not in SPLITTABLE or last is None or not reaches_now:
            read = await self._read(codes, period, start_ms, end_ms, count, dividend_type, fill_data)
            return {code: [bars] for code, bars in read.items()}

        complete_end = day_end_ms(last)
        if start_ms is not None and start_ms > complete_end:  # starts after the last complete session
            complete = {code: Bars.empty() for code in codes}
        else:
            complete = await self._complete(
                codes, period, start_ms, complete_end, count, dividend_type, fill_data, last
            )
        forming: dict[str, Bars] = {}
        day = session.forming
        if (
            day is not None
            and (end_ms is None or end_ms >= day_start_ms(day))
            and (start_ms is None or start_ms <= day_end_ms(day))
        ):
            forming = await self._forming(codes, period, day, end_ms, dividend_type, fill_data)
        out: dict[str, list[Bars]] = {}
        for code in codes:
            # Today's bars are never later than end_ms (_forming reads up to it), complete ones end before;
            # both are cut at start_ms (a range that starts after today, e.g. wholly in the future, is empty).
            today = forming.get(code, Bars.empty())
            parts = [complete[code].between(start_ms, complete_end), today.between(start_ms, None)]
            out[code] = tail_parts(parts, count)
        return out

    def require_supported(self, period: str, dividend_type: str = "none") -> None:
        """501 when the source does not hold ``period`` or ``dividend_type`` at all (a replay of a recording
        holds unadjusted 1m bars and ticks): a valid value the source cannot serve is the source's limit,
        not a bad request, and every K-line route says so the same way."""
        caps = self.source.capabilities()
        if period not in caps.periods:
            raise Unsupported(
                f"the {self.source.name} source has no {period!r} bars (it serves {', '.join(caps.periods)})",
                {"period": period, "source": self.source.name, "periods": list(caps.periods)},
            )
        if dividend_type not in caps.dividend_types:
            raise Unsupported(
                f"the {self.source.name} source has no {dividend_type!r} adjustment (it serves "
                f"{', '.join(caps.dividend_types)})",
                {"dividend_type": dividend_type, "source": self.source.name},
            )

    async def _ensure_for_read(
        self,
        codes: list[str],
        period: str,
        start_ms: int | None,
        end_ms: int | None,
        count: int | None,
        session: SessionState,
    ) -> None:
        hi = session.last_complete
        if hi is None:
            return
        if end_ms is not None:
            hi = min(hi, date_of_ms(end_ms))
        if DOWNLOAD_BASE[period] == "1d":
            lo: dt.date | None = None  # daily history is small: keep the whole series local
        elif start_ms is not None:
            lo = date_of_ms(start_ms)
        else:
            sessions = math.ceil((count or 1) / BARS_PER_SESSION[period]) + 1
            lo = await self.calendar.sessions_before(hi, sessions)
        if lo is not None and lo > hi:
            return
        await self.ensure_downloaded(codes, period, lo, hi)

    async def _read(
        self,
        codes: list[str],
        period: str,
        start_ms: int | None,
        end_ms: int | None,
        count: int | None,
        dividend_type: str,
        fill_data: bool,
    ) -> dict[str, Bars]:
        frames = await self.source.history(
            codes,
            period,
            "" if start_ms is None else xt_time(start_ms),
            "" if end_ms is None else xt_time(end_ms),
            -1 if count is None else count,
            dividend_type,
            fill_data,
        )
        return {code: Bars.from_frame(frames.get(code)) for code in codes}

    async def _complete(
        self,
        codes: list[str],
        period: str,
        start_ms: int | None,
        complete_end: int,
        count: int | None,
        dividend_type: str,
        fill_data: bool,
        as_of: dt.date,
    ) -> dict[str, Bars]:
        base = DOWNLOAD_BASE[period]
        out: dict[str, Bars] = {}
        missing: list[str] = []
        for code in codes:
            key = (code, period, dividend_type, fill_data)
            entry = self._cache.get(key)
            if (
                entry is not None
                and entry.as_of == as_of
                and entry.version == self.ledger.version(code, base)
            ):
                covers = entry.lo_ms is None or (
                    entry.lo_ms <= start_ms if start_ms is not None else len(entry.bars) >= (count or 0)
                )
                if covers:
                    self._cache.move_to_end(key)
                    out[code] = entry.bars
                    continue
            missing.append(code)
        self.hits += len(out)
        self.misses += len(missing)
        if not missing:
            return out
        versions = {code: self.ledger.version(code, base) for code in missing}
        fetch_count = -1 if start_ms is not None or count is None else count
        frames = await self.source.history(
            missing,
            period,
            "" if start_ms is None else xt_time(start_ms),
            xt_time(complete_end),
            fetch_count,
            dividend_type,
            fill_data,
        )
        for code in missing:
            bars = Bars.from_frame(frames.get(code))
            if start_ms is not None:
                lo_ms: int | None = start_ms
            elif fetch_count > 0 and len(bars) >= fetch_count:
                lo_ms = int(bars.time[0])
            else:
                lo_ms = None  # fewer bars than asked: this is everything the source has
            self._store((code, period, dividend_type, fill_data), _Entry(as_of, versions[code], lo_ms, bars))
            out[code] = bars
        return out

    async def _forming(
        self,
        codes: list[str],
        period: str,
        day: dt.date,
        end_ms: int | None,
        dividend_type: str,
        fill_data: bool,
    ) -> dict[str, Bars]:
        quotes = self.quotes
        out: dict[str, Bars] = {}
        rest = codes
        if period == "1d" and dividend_type in _LATEST_UNCHANGED and quotes is not None and quotes.is_live():
            rest = []
            out = bars_from_ticks({code: quotes.raw_tick(code) for code in codes}, day)
        if rest:
            frames = await self.source.history(
                rest,
                period,
                xt_time(day_start_ms(day)),
                "" if end_ms is None else xt_time(end_ms),
                -1,
                dividend_type,
                fill_data,
            )
            for code in rest:
                out[code] = Bars.from_frame(frames.get(code)).between(day_start_ms(day), end_ms)
        return out

    def _store(self, key: tuple[Any, ...], entry: _Entry) -> None:
        old = self._cache.pop(key, None)
        if old is not None:
            self._cached_rows -= len(old.bars)
        if len(entry.bars) > self._cache_rows:
            return
        self._cache[key] = entry
        self._cached_rows += len(entry.bars)
        while self._cached_rows > self._cache_rows and self._cache:
            _, evicted = self._cache.popitem(last=False)
            self._cached_rows -= len(evicted.bars)

    def cache_info(self) -> dict[str, int]:
        return {
            "entries": len(self._cache),
            "rows": self._cached_rows,
            "hits": self.hits,
            "misses": self.misses,
        }

    def clear_cache(self) -> None:
        self._cache.clear()
        self._cached_rows = 0
