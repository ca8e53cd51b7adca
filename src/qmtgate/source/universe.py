"""The instrument universe of one trading day: which codes exist, without one xtdata call per code.

Existence checks used to ask ``get_instrument_detail`` per unseen code; behind a slow terminal (100 ms per
call) a first request for 50 codes took 5 s and hit the snapshot lane's deadline. The index is built from a
handful of exchange-structure sector lists (``沪深A股``, ``京市A股``, ``沪深指数``, ...): a fixed number of
calls whatever the request, once per cache day. A code missing from it may be new since the load: a miss
reloads the index, at most once per ``miss_refresh`` seconds (concurrent reloads share one). The source
uses it without waiting (``missing(wait=False)``): loads run in the background on a low-priority lane, and
until the day's index is there (or for codes it lacks) the source checks codes with one batched
``get_instrument_detail_list`` per chunk, so no request waits behind the sector calls.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from qmtgate.source.coalesce import Coalescer

logger = logging.getLogger(__name__)

#: Exchange-structure sectors every miniQMT lists without ``download_sector_data`` (xtquant-api.md §2.3);
#: together they hold the stocks, funds, ETFs, indices and bonds of SH, SZ and BJ. A sector the terminal
#: does not list answers ``[]`` and costs nothing else.
UNIVERSE_SECTORS = (
    "沪深A股",
    "京市A股",
    "沪深B股",
    "沪深ETF",
    "沪深基金",
    "沪深指数",
    "沪深债券",
    "沪深转债",
)


class InstrumentIndex:
    """The set of codes of the current cache day, loaded by ``loader()`` (a fixed number of SDK calls).

    ``cache_day`` names the day the index belongs to (the reference-data cache's day, which rolls at the
    same time as instrument details); ``monotonic`` drives the miss-reload rate limit (tests inject it).
    """

    def __init__(
        self,
        loader: Callable[[], Awaitable[Iterable[str]]],
        *,
        cache_day: Callable[[], dt.date],
        miss_refresh: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loader = loader
        self._cache_day = cache_day
        self._miss_refresh = miss_refresh
        self._monotonic = monotonic
        self._codes: frozenset[str] = frozenset()
        self._day: dt.date | None = None
        self._loaded_at = float("-inf")
        self._loads: Coalescer[str, None] = Coalescer()
        self._background: set[asyncio.Future[None]] = set()
        #: loads done (day changes, first use, misses): tests and diagnostics
        self.loads = 0

    def __len__(self) -> int:
        return len(self._codes)

    def _fresh(self) -> bool:
        # today's, and either non-empty or loaded empty so recently that reloading would be hammering
        return self._day == self._cache_day() and (
            bool(self._codes) or self._monotonic() - self._loaded_at < self._miss_refresh
        )

    async def codes(self) -> frozenset[str]:
        """Today's codes, loading them first if the index belongs to another day (or came back empty and
        the miss-reload pause has passed)."""
        if not self._fresh():
            await self._reload()
        return self._codes

    async def missing(self, codes: Sequence[str], *, wait: bool = True) -> list[str] | None:
        """The codes of ``codes`` not in the index; None when the index cannot tell (not loaded for today,
        or empty: the terminal lists no sector), the caller must then check the codes another way.

        ``wait=True`` waits for a (re)load: of a stale index, and on a miss at most once per
        ``miss_refresh`` seconds. ``wait=False`` never waits: it starts that load in the background and
        answers from what is loaded (or None), so no request queues behind the sector calls.
        """
        if not self._fresh():
            if not wait:
                self.reload_soon()
                return None
            await self._reload()
        if not self._codes:
            return None
        absent = [code for code in codes if code not in self._codes]
        if absent and self._monotonic() - self._loaded_at >= self._miss_refresh:
            if not wait:
                self.reload_soon()
                return absent
            await self._reload()
            absent = [code for code in absent if code not in self._codes]
        return absent

    def reload_soon(self) -> None:
        """Start a (re)load in the background unless one is running; its failure is only logged."""
        if len(self._loads) or any(not task.done() for task in self._background):
            return
        task = asyncio.ensure_future(self._reload())
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Future[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.info("instrument index not loaded: %s", task.exception())

    async def _reload(self) -> None:
        # one key: a reload requested while one is running joins it
        await self._loads.run("load", self._load)

    async def _load(self) -> None:
        day = self._cache_day()
        codes = frozenset(await self._loader())
        self.loads += 1
        self._codes, self._day, self._loaded_at = codes, day, self._monotonic()
