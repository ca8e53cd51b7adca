"""Keeps one whole-market subscription alive and feeding the stream hub (and so its last-value cache).

Upstream subscriptions die with the connection (a QMT restart drops them all), so the feed watches the
source's connection ``epoch`` and subscribes again whenever it changes. Each subscription's callback is
the hub's own inbox (:meth:`StreamHub.tick_sink`) tagged with its connection number, so the cache
(:mod:`qmtgate.hub.lvc`) only calls itself live once the *current* subscription has delivered its first
push (xtquant's whole-quote subscription starts with the full current snapshot). One subscription, one
inbox, one pump, one conversion: the stream and the REST snapshots read the same cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from qmtgate.errors import QmtgateError, Unsupported
from qmtgate.hub.lvc import LastValueCache
from qmtgate.hub.stream import StreamHub
from qmtgate.source.base import MarketSource

logger = logging.getLogger(__name__)


class WholeMarketFeed:
    """Subscribe ``markets`` through ``source`` into ``hub``; resubscribe after every reconnect."""

    def __init__(
        self,
        source: MarketSource,
        hub: StreamHub,
        markets: Sequence[str] = ("SH", "SZ", "BJ"),
        *,
        check_interval: float = 1.0,
    ) -> None:
        self.source = source
        self.hub = hub
        self.cache: LastValueCache = hub.lvc
        self.markets = list(markets)
        self._interval = check_interval
        self._handle: int | None = None
        self._epoch: int | None = None
        self._task: asyncio.Task[None] | None = None
        self.unsupported = False
        self.last_error: str | None = None

    async def start(self) -> None:
        await self._ensure()
        self._task = asyncio.create_task(self._supervise(), name="qmtgate-quote-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._handle is not None:
            with contextlib.suppress(QmtgateError):
                await self.source.unsubscribe(self._handle)
            self._handle = None

    def _callback(self, epoch: int) -> Callable[[Any], None]:
        return self.hub.tick_sink(epoch)

    async def _supervise(self) -> None:
        while not self.unsupported:
            await asyncio.sleep(self._interval)
            await self._ensure()

    async def _ensure(self) -> None:
        status = self.source.status()
        if not status.connected or (self._handle is not None and status.epoch == self._epoch):
            return
        try:
            self.cache.expect(status.epoch, connected=self.source.is_connected)
            self._handle = await self.source.subscribe_whole_quote(self.markets, self._callback(status.epoch))
            self._epoch = status.epoch
            self.last_error = None
            logger.info(
                "whole-market quote subscription for %s active (epoch %d)", self.markets, status.epoch
            )
        except Unsupported as e:
            self.unsupported = True
            self.last_error = e.message
            logger.warning("quote cache disabled: %s", e.message)
        except QmtgateError as e:
            self.last_error = e.message
            logger.warning("whole-market subscription failed, retrying: %s", e.message)
