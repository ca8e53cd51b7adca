"""A hub consumer inside the gateway that wants the ticks of a changing set of codes (the protective
orders of the trading lane): one hub client, its interest kept equal to ``set_codes``, its frames drained
on the event loop into ``on_rows(rows)``.

Like any hub client it may be conflated when it falls behind: it then sees the latest tick of each code,
which is what a price watch needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from qmtgate.hub.clients import Frame
from qmtgate.hub.stream import TICK, ClientState, StreamHub

logger = logging.getLogger(__name__)

RowsHandler = Callable[[list[dict[str, Any]]], None]


class CodeWatch:
    def __init__(self, hub: StreamHub, on_rows: RowsHandler, name: str = "watch") -> None:
        self.hub = hub
        self.on_rows = on_rows
        self.name = name
        self.codes: set[str] = set()
        self.frames = 0
        self._client: ClientState | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def set_codes(self, codes: Iterable[str]) -> None:
        """Watch exactly ``codes`` (subscribing and releasing the difference); the current value of each
        new code is handed over at once (its age tells the consumer whether it is fresh)."""
        wanted = set(codes)
        async with self._lock:
            if self._client is None:
                self._client = self.hub.connect()
                self._task = asyncio.create_task(self._drain(self._client), name=f"qmtgate-{self.name}")
            gone, new = self.codes - wanted, wanted - self.codes
            if gone:
                await self.hub.unsubscribe(self._client, TICK, sorted(gone), [])
            seeds = await self.hub.subscribe(self._client, TICK, sorted(new), []) if new else []
            self.codes = wanted
        if seeds:
            self._hand(seeds)

    def _hand(self, updates: Iterable[Any]) -> None:
        try:
            self.on_rows([u.row for u in updates])
        except Exception:
            logger.exception("%s: the rows handler failed", self.name)

    async def _drain(self, client: ClientState) -> None:
        while True:
            frame = await client.outbox.get()
            if frame is None:  # dropped as too slow: take a new client and the current values again
                logger.error("%s: the hub closed the stream (%s)", self.name, client.outbox.closed_reason)
                codes = set(self.codes)
                async with self._lock:
                    if self._client is client:
                        self._client, self.codes = None, set()
                await self.hub.disconnect(client)
                await self.set_codes(codes)
                return
            if isinstance(frame, Frame) and frame.channel == TICK:
                self.frames += 1
                self._hand(frame.updates)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._client is not None:
            await self.hub.disconnect(self._client)
            self._client = None
        self.codes = set()
