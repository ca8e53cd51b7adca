"""The services behind the routes, built once per app by the lifespan and shared by every router.

Routers (the normalized ``/api/v1`` ones and the compat adapters alike) only talk to :class:`Services`;
it owns the source, the calendar, the history service, the download jobs and the quote cache, and it is
where the cross-cutting rules live: existence checks against the instrument universe, and "snapshots come
from the live cache, the source only when the cache cannot answer".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qmtgate.api.burst_answers import BurstAnswers
from qmtgate.codes import classify
from qmtgate.config import Settings
from qmtgate.errors import NotFound, UnknownCode
from qmtgate.hub.feed import WholeMarketFeed
from qmtgate.hub.lvc import LastValueCache
from qmtgate.hub.stream import StreamHub
from qmtgate.source.base import MarketSource
from qmtgate.source.calendar import CalendarService
from qmtgate.source.convert import tick_rows
from qmtgate.source.history import HistoryService
from qmtgate.source.jobs import DownloadJobs

logger = logging.getLogger(__name__)

#: Instruments per market (stocks, funds, bonds, indices) as QMT lists them, used for quotas and cost
#: only until the quote cache knows the real numbers.
MARKET_SIZE_GUESS = {"SH": 5000, "SZ": 5000, "BJ": 300}


@dataclass
class Services:
    settings: Settings
    source: MarketSource
    calendar: CalendarService
    history: HistoryService
    jobs: DownloadJobs
    #: the hub's last-value cache when the whole-market feed is on (``hub.lvc``), else None
    quotes: LastValueCache | None = None
    feed: WholeMarketFeed | None = None
    hub: StreamHub | None = None
    #: whole-market answers encoded once per quote-cache burst (api.burst_answers)
    answers: BurstAnswers = field(default_factory=BurstAnswers)
    _started: list[Any] = field(default_factory=list, repr=False)
    _warming: asyncio.Task[None] | None = field(default=None, repr=False)

    # -- lifecycle -------------------------------------------------------------------------------------

    @classmethod
    def build(cls, settings: Settings, source: MarketSource) -> Services:
        limits = settings.limits
        calendar = CalendarService(source)
        hub = StreamHub(source, settings.stream.hub_config())
        quotes = hub.lvc if settings.quotes.enabled else None
        history = HistoryService(
            source,
            calendar,
            quotes=quotes,
            inline_download_codes=limits.inline_download_codes,
            cache_rows=limits.history_cache_rows,
            download_chunk=settings.download_chunk_size,
        )
        jobs = DownloadJobs(history, calendar, kept=limits.jobs_kept)
        feed = None
        if quotes is not None:
            # one upstream whole-market subscription feeds the stream and its cache, which REST reads
            feed = WholeMarketFeed(source, hub, settings.quotes.markets)
            hub.covered_markets = set(settings.quotes.markets)
        return cls(settings, source, calendar, history, jobs, quotes, feed, hub)

    async def start(self) -> None:
        # the instrument index loads in the background: the first requests after start join it
        warm = asyncio.create_task(self._warm_reference(), name="qmtgate-warm-reference")
        self._warming = warm
        await self.jobs.start()
        self._started.append(self.jobs)
        if self.hub is not None:
            await self.hub.start()
            self._started.append(self.hub)
            quotes = self.quotes
            if quotes is not None:  # answers that are polled are built ahead of each burst's requests
                self.hub.add_listener(self.answers.watch(lambda: quotes.version))
        if self.feed is not None:
            await self.feed.start()
            self._started.append(self.feed)

    async def _warm_reference(self) -> None:
        try:
            await self.source.warm_reference()
        except Exception as e:  # the first request loads it again (and reports the error)
            logger.info("instrument index not loaded at start: %s", e)

    async def stop(self) -> None:
        self.answers.clear()  # no answer is built ahead for a stopping gateway
        if self._warming is not None:
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._warming
        while self._started:
            component = self._started.pop()
            with contextlib.suppress(Exception):
                await component.stop()

    # -- instruments -----------------------------------------------------------------------------------

    async def require_known(self, codes: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Instrument details of ``codes``; a 404 naming every code the source does not know."""
        details = await self.source.instrument_details(codes)
        self._raise_unknown([code for code in codes if details.get(code) is None])
        return {code: details[code] for code in codes}  # type: ignore[misc]

    async def require_exists(self, codes: Sequence[str]) -> None:
        """404 for codes the source does not know, without waiting on xtdata for codes the live quote cache
        holds (a code with a snapshot this session exists); the rest are checked against the source's
        instrument index (a fixed number of upstream calls per day, never one per code)."""
        if self.quotes is not None and self.quotes.is_live():
            cached = self.quotes.has_raw(codes)
            codes = [code for code in codes if code not in cached]
        if codes:
            self._raise_unknown(await self.source.unknown_codes(codes))

    def _raise_unknown(self, unknown: Sequence[str]) -> None:
        if unknown:
            shown = ", ".join(unknown[:20]) + (" ..." if len(unknown) > 20 else "")
            noun = "code" if len(unknown) == 1 else "codes"
            raise UnknownCode(
                f"unknown {noun} {shown} (not in the {self.source.name} instrument universe)",
                {"codes": list(unknown), "source": self.source.name},
            )

    async def sector_members(self, sector: str) -> list[str]:
        """Codes of a sector; 404 for a sector the source does not list (xtdata would answer [])."""
        members = await self.source.sector_members(sector)
        if not members and sector not in await self.source.sector_list():
            raise NotFound(f"unknown sector {sector!r}", {"sector": sector})
        return members

    # -- snapshots -------------------------------------------------------------------------------------

    def cache_live(self) -> bool:
        return self.quotes is not None and self.quotes.is_live()

    async def snapshot_raw(self, codes: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """xtquant tick dicts; codes without a snapshot this session are absent (as ``get_full_tick``)."""
        if self.quotes is not None and self.quotes.is_live():
            # The live cache is authoritative: its first push was the full snapshot of the subscribed
            # markets, so a code it lacks has no snapshot. Never wait behind the xtdata thread here.
            return self.quotes.raw(codes)
        return await self._source_snapshot(codes)

    async def _source_snapshot(self, codes: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """``source.snapshot`` for any number of codes (a sector's 5,000 members with the cache off): the
        chunks are submitted together, so the executor merges them into one ``get_full_tick``."""
        limit = max(1, self.source.capabilities().max_codes_per_request)
        if len(codes) <= limit:
            return await self.source.snapshot(codes)
        parts = await asyncio.gather(
            *(self.source.snapshot(codes[i : i + limit]) for i in range(0, len(codes), limit))
        )
        merged: dict[str, Mapping[str, Any]] = {}
        for part in parts:
            merged.update(part)
        return merged

    async def snapshot_rows(self, codes: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
        """Normalized rows (in ``codes`` order) and the codes without a snapshot."""
        if self.quotes is not None and self.quotes.is_live():
            return self.quotes.rows(codes)
        raw = await self._source_snapshot(codes)
        have = [code for code in codes if code in raw]
        rows = tick_rows(have, [raw[code] for code in have])  # column-wise: a sector's 5,000 at once
        return rows, [code for code in codes if code not in raw]

    async def market_snapshot_rows(
        self, markets: Sequence[str], kinds: set[str] | None = None
    ) -> list[dict[str, Any]]:
        """Rows of every instrument of ``markets`` that has a snapshot, optionally of some ``kinds`` only."""
        if self.quotes is not None and self.quotes.is_live():
            rows, _ = self.quotes.rows(self.quotes.codes(markets, sorted(kinds) if kinds else None))
            return rows
        raw = await self.source.market_snapshot(markets)
        wanted = set(markets)
        codes = [
            code
            for code in raw
            if code.rpartition(".")[2] in wanted and (kinds is None or classify(code) in kinds)
        ]
        return tick_rows(codes, [raw[code] for code in codes])

    def market_size(self, market: str) -> int:
        """Instruments of a whole market (SH, SZ, BJ): what a market token covers, for quotas and cost.

        From the quote cache; before its first push, a conservative size of today's markets."""
        if self.quotes is not None:
            size = len(self.quotes.codes([market]))
            if size:
                return size
        return MARKET_SIZE_GUESS.get(market, 5000)

    def market_count(self, markets: Sequence[str], kinds: set[str] | None = None) -> int:
        """Instruments a whole-market request covers: exact from the live cache, else the markets' sizes."""
        if self.quotes is not None and self.quotes.is_live():
            return len(self.quotes.codes(markets, sorted(kinds) if kinds else None))
        return sum(self.market_size(m) for m in set(markets))

    def cache_info(self) -> dict[str, Any]:
        if self.quotes is None:
            return {"enabled": False, "live": False}
        info = {"enabled": True, **self.quotes.stats().to_dict()}
        if self.feed is not None and self.feed.last_error:
            info["error"] = self.feed.last_error
        return info
