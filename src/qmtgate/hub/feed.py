"""Keeps one whole-market subscription alive and feeding the stream hub (and so its last-value cache).

Upstream subscriptions die with the connection (a QMT restart drops them all), so the feed listens to the
source's events and subscribes again on each new connection number. Each subscription's callback is
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

from qmtgate.errors import QmtgateError, Unsupported
from qmtgate.hub.lvc import LastValueCache
from qmtgate.hub.stream import StreamHub
from qmtgate.source.base import MarketSource
from qmtgate.source.events import SourceEvent

logger = logging.getLogger(__name__)


class WholeMarketFeed:
    """Subscribe ``markets`` through ``source`` into ``hub``; resubscribe after every reconnect.

    Driven by the source's events (:mod:`qmtgate.source.events`): a ``connected`` or ``resubscribed``
    event (new connection number) subscribes again; nothing polls the source. A subscription that fails
    is retried every ``retry_interval`` seconds until it succeeds, the source drops (the next
    ``connected`` event starts again) or the source says the feature is unsupported.
    """

    def __init__(
        self,
        source: MarketSource,
        hub: StreamHub,
        markets: Sequence[str] = ("SH", "SZ", "BJ"),
        *,
        retry_interval: float = 1.0,
    ) -> None:
        self.source = source
        self.hub = hub
        self.cache: LastValueCache = hub.lvc
        self.markets = list(markets)
        self._retry_interval = retry_interval
        self._handle: int | None = None
        #: the source connection the active subscription was made on (None: none active)
        self.connection: int | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], None] | None = None
        self.unsupported = False
        self.last_error: str | None = None

    async def start(self) -> None:
        self._unlisten = self.source.events.subscribe(self._on_event)
        if not await self._ensure():
            self._kick()

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._handle is not None:
            with contextlib.suppress(QmtgateError):
                await self.source.unsubscribe(self._handle)
            self._handle = None

    def _on_event(self, event: SourceEvent) -> None:
        if event.renews:
            self._kick()

    def _kick(self) -> None:
        """(Re)subscribe in the background, retrying until done; one such task at a time."""
        if self.unsupported or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.create_task(self._resubscribe(), name="qmtgate-quote-feed")

    async def _resubscribe(self) -> None:
        while not await self._ensure():
            await asyncio.sleep(self._retry_interval)

    async def _ensure(self) -> bool:
        """Subscribe unless the active subscription belongs to the current connection. True when nothing
        is left to do (subscribed, unsupported, or the source is down: its ``connected`` event follows)."""
        async with self._lock:
            status = self.source.status()
            if self.unsupported or not status.connected:
                return True
            if self._handle is not None and status.connection == self.connection:
                return True
            connection = status.connection
            try:
                self.cache.expect(connection, connected=self.source.is_connected)
                self._handle = await self.source.subscribe_whole_quote(
                    self.markets, self.hub.tick_sink(connection)
                )
                self.connection = connection
                self.last_error = None
                logger.info(
                    "whole-market quote subscription for %s active (connection %d)", self.markets, connection
                )
                return True
            except Unsupported as e:
                self.unsupported = True
                self.last_error = e.message
                logger.warning("quote cache disabled: %s", e.message)
                return True
            except QmtgateError as e:
                self.last_error = e.message
                logger.warning("whole-market subscription failed, retrying: %s", e.message)
                return False
