"""The recorder task: a hub client that hands every tick it receives to the writer thread.

It subscribes through the :class:`~qmtgate.hub.stream.StreamHub` exactly like a WebSocket client
(whole markets, sectors, code lists), so in the gateway it shares the one whole-market upstream
subscription, and standalone (``qmtgate record``) the hub's refcounted registry subscribes for it.

Overflow policy: the recorder's outbox is drained as fast as the loop runs; when the writer's bounded
queue is full the drain waits, the hub conflates the outbox (as for any slow client) and the skipped
updates are counted in ``stats['conflated_updates']`` and logged: a recording never blocks the hub.

Backfill: on start the recorder asks the source for today's tick history after the last stored tick
(or from the session's start when nothing is stored today), so a restart loses no minute; the writer
stores those rows beside the live ones and builds bars only once the backfill is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from qmtgate.codes import normalize_code
from qmtgate.hub.clients import Frame
from qmtgate.hub.ring import burst_table
from qmtgate.hub.stream import MARKETS, StreamHub, market_of
from qmtgate.record.writer import RecordWriter
from qmtgate.source.base import MarketSource
from qmtgate.source.convert import date_of_ms, day_start_ms, tick_row

logger = logging.getLogger(__name__)

#: Opening call auction starts here (seconds after 00:00 CST): the start of a day's backfill.
SESSION_START_S = 9 * 3600 + 15 * 60
BACKFILL_CHUNK = 100


@dataclass(frozen=True)
class RecordTarget:
    """What to record: whole markets, sectors (resolved to codes at start) and codes."""

    markets: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        bad = [m for m in self.markets if m not in MARKETS]
        if bad:
            raise ValueError(f"unknown market(s) {bad}; expected {', '.join(MARKETS)}")
        if not (self.markets or self.sectors or self.codes):
            raise ValueError("nothing to record: give markets, sectors or codes")


@dataclass
class RecorderStats:
    frames: int = 0
    updates: int = 0
    conflated_frames: int = 0
    conflated_updates: int = 0
    backfill_rows: int = 0
    backfill_seconds: float = 0.0
    backfill_error: str | None = None
    codes: int = 0
    markets: list[str] = field(default_factory=list)


class Recorder:
    """Subscribe ``target`` through ``hub`` and feed ``writer``; ``start()`` / ``stop()`` on the loop."""

    def __init__(
        self,
        hub: StreamHub,
        source: MarketSource,
        writer: RecordWriter,
        target: RecordTarget,
        *,
        backfill: bool = True,
        clock_interval: float = 1.0,
    ) -> None:
        self.hub = hub
        self.source = source
        self.writer = writer
        self.target = target
        self.backfill = backfill
        self.clock_interval = clock_interval
        self.stats = RecorderStats()
        self._client: Any = None
        self._wanted: set[str] | None = None  # None: every code of the subscribed markets
        self._tasks: list[asyncio.Task[None]] = []
        self.backfill_done = asyncio.Event()

    async def start(self) -> None:
        codes = [normalize_code(c) for c in self.target.codes]
        for sector in self.target.sectors:
            members = await self.source.sector_members(sector)
            if not members:
                raise ValueError(f"sector {sector!r} has no members (unknown sector?)")
            codes.extend(members)
        codes = list(dict.fromkeys(codes))
        markets = list(self.target.markets)
        if codes and len(codes) > self.hub.config.max_codes_per_client:
            # too many explicit codes for one hub client: take their whole markets and filter here
            markets = sorted(set(markets) | {market_of(c) for c in codes})
            self._wanted = set(codes) if not self.target.markets else None
            codes = []
        elif codes and markets:
            self._wanted = None
        self.stats.codes = len(codes)
        self.stats.markets = markets
        self.writer.start()
        if self.backfill:
            self.writer.begin_fill()
        self._client = self.hub.connect()
        seeds = await self.hub.subscribe(self._client, "tick", codes, markets)
        if seeds:
            await self._hand_over([u.row for u in seeds])
        self._tasks.append(asyncio.create_task(self._drain(), name="qmtgate-recorder-drain"))
        self._tasks.append(asyncio.create_task(self._clock(), name="qmtgate-recorder-clock"))
        if self.backfill:
            self._tasks.append(
                asyncio.create_task(self._backfill(codes, markets), name="qmtgate-recorder-backfill")
            )
        else:
            self.backfill_done.set()
        logger.info(
            "recording %s%s into %s",
            f"markets {markets} " if markets else "",
            f"{len(codes)} codes" if codes else "",
            self.writer.path,
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._client is not None:
            await self.hub.disconnect(self._client)
            self._client = None
        await asyncio.to_thread(self.writer.close)

    def info(self) -> dict[str, Any]:
        return {
            "recorder": self.stats.__dict__,
            "writer": self.writer.stats.to_dict(),
            "backlog": self.backlog(),
        }

    def backlog(self) -> int:
        """Batches not yet stored: the writer's queue plus frames waiting in the recorder's outbox."""
        outbox = len(self._client.outbox) if self._client is not None else 0
        return self.writer.backlog() + outbox

    # -- live ------------------------------------------------------------------------------------------

    async def _drain(self) -> None:
        outbox = self._client.outbox
        while True:
            frame = await outbox.get()
            if frame is None:
                logger.error("the hub closed the recorder's stream: %s", outbox.closed_reason)
                return
            if not isinstance(frame, Frame):
                continue  # status messages
            updates = frame.updates
            if self._wanted is not None:
                updates = [u for u in updates if u.code in self._wanted]
            table = burst_table(updates)  # live frames: columns, no row dicts
            batch: list[dict[str, Any]] | pa.Table = table if table is not None else [u.row for u in updates]
            self.stats.frames += 1
            self.stats.updates += len(batch)
            if frame.conflated and not frame.replay:
                skipped = frame.seq_to - frame.seq_from + 1 - len(frame.updates)
                self.stats.conflated_frames += 1
                self.stats.conflated_updates += max(skipped, 0)
                logger.warning("recorder fell behind: %d updates conflated away", skipped)
            if len(batch):
                await self._hand_over(batch)

    async def _hand_over(self, batch: list[dict[str, Any]] | pa.Table) -> None:
        while not self.writer.offer(batch):
            await asyncio.sleep(0.02)  # writer queue full: wait (the hub conflates meanwhile)

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(self.clock_interval)
            self.writer.clock(self.source.now_ms())

    # -- backfill --------------------------------------------------------------------------------------

    async def _backfill(self, codes: Sequence[str], markets: Sequence[str]) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            await self._fill(codes, markets)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # live recording goes on; the gap stays and is reported
            self.stats.backfill_error = f"{type(e).__name__}: {e}"
            logger.warning("recorder backfill failed, recording live data only: %s", e)
        finally:
            self.stats.backfill_seconds = loop.time() - began
            await asyncio.to_thread(self.writer.end_fill)
            self.backfill_done.set()

    async def _fill(self, codes: Sequence[str], markets: Sequence[str]) -> None:
        now = self.source.now_ms()
        day = date_of_ms(now)
        session_start = day_start_ms(day) + SESSION_START_S * 1000
        if now < session_start:
            return
        last = await asyncio.to_thread(self.writer.last_tick_ts, day)
        since = last if last is not None else session_start - 1
        wanted = list(codes)
        if markets:
            snapshot = await self.source.market_snapshot(markets)
            wanted += [c for c in snapshot if market_of(c) in markets]
        if self._wanted is not None:
            wanted = [c for c in wanted if c in self._wanted]
        wanted = list(dict.fromkeys(wanted))
        if not wanted:
            return
        start = _yyyymmddhhmmss(since + 1)
        day_text = day.strftime("%Y%m%d")
        for i in range(0, len(wanted), BACKFILL_CHUNK):
            chunk = wanted[i : i + BACKFILL_CHUNK]
            await self.source.download_history(chunk, "tick", day_text, day_text)
            frames = await self.source.history(chunk, "tick", start=start, end="")
            rows: list[dict[str, Any]] = []
            for code, frame in frames.items():
                if frame is None or len(frame) == 0:
                    continue
                rows.extend(tick_row(code, rec) for rec in frame.to_dict("records") if rec["time"] > since)
            if rows:
                self.stats.backfill_rows += len(rows)
                await asyncio.to_thread(self.writer.put, rows)


def _yyyymmddhhmmss(ts_ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ts_ms / 1000, dt.timezone(dt.timedelta(hours=8)))
    return moment.strftime("%Y%m%d%H%M%S")
