"""The recorder task: a hub client that hands every tick it receives to the writer thread.

It subscribes through the :class:`~qmtgate.hub.stream.StreamHub` exactly like a WebSocket client
(whole markets, sectors, code lists), so in the gateway it shares the one whole-market upstream
subscription, and standalone (``qmtgate record``) the hub's refcounted registry subscribes for it.

Overflow policy: the recorder's outbox is drained as fast as the loop runs; when the writer's bounded
queue is full the drain waits, the hub conflates the outbox (as for any slow client) and the skipped
updates are counted in ``stats['conflated_updates']`` and logged: a recording never blocks the hub.

Completeness and backfill (docs/recording.md, "Completeness"): the recorder claims the span it records
live in the recording's ``coverage`` table, only up to what the writer has committed. A backfill task
finds every hole of today for its scopes (the downtime before this start, one left by an earlier start
that was cut short, a conflation of its own stream) and fills each from the source's tick history,
claiming a hole only once its rows are stored. It retries with backoff (1 s doubling to 60 s) until
nothing fillable is left, then re-checks on every break of the live stream and every minute; it never
blocks live recording. Holes from the opening match on are filled oldest first and the writer builds
bars up to the oldest one not filled yet (the *fill barrier*), so bars follow the fill minute by minute;
the opening call auction (09:15-09:25, no trade, no bar needs it) is filled last. Until the first attempt
knows its holes no bar is built; a hole filled after bars were built rebuilds that day's bars from the
hole on. What stays missing is what ``completeness.report`` lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from qmtgate.codes import normalize_code
from qmtgate.errors import Unsupported
from qmtgate.hub.clients import Frame
from qmtgate.hub.ring import burst_table
from qmtgate.hub.stream import MARKETS, StreamHub, market_of
from qmtgate.record.bars import AUCTION_MATCH_S
from qmtgate.record.completeness import MARKET_SCOPES, expected, holes_by_scope, intersect
from qmtgate.record.remote import RemoteFrame, StreamBreak
from qmtgate.record.writer import RecordWriter
from qmtgate.source.base import MarketSource
from qmtgate.source.convert import date_of_ms, day_start_ms, tick_rows

logger = logging.getLogger(__name__)

#: Opening call auction starts here (seconds after 00:00 CST): the start of a day's backfill.
SESSION_START_S = 9 * 3600 + 15 * 60
BACKFILL_CHUNK = 200
#: rows one history read may return (codes per read shrink for long holes: memory stays bounded)
BACKFILL_ROWS = 200_000
#: xtdata serves today's ticks once the opening match traded: holes are filled from then on
HISTORY_READY_S = 9 * 3600 + 25 * 60 + 30
#: a live claim stays this far behind the market clock (ticks still on their way through the hub)
COVER_MARGIN_MS = 10_000
#: a live span starts with the first frame this close to the market clock: before it the source may still
#: be catching up (a starting QMT or simulator merges what it missed into one update, losing ticks)
IN_TIME_MS = 15_000
#: holes are filled (and claimed) in slices of at most this much market time, so a start cut short keeps
#: what it filled and bars follow the fill slice by slice
FILL_SLICE_MS = 600_000
#: "no hole in front of any bar": the fill barrier when nothing a bar needs is left to fill
NO_BARRIER_MS = 2**62
#: how long the first backfill attempt waits for the live span to start (a live frame in time)
OPEN_WAIT_S = 120.0
BACKFILL_RETRY_MAX_S = 60.0
#: with nothing left to fill, holes are looked for again this often (a new day, a stream break)
RECHECK_S = 60.0
#: a whole-market history read that returns nothing over this much session time is "not available yet"
EMPTY_MARKET_HOLE_MS = 30_000


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
    backfill_attempts: int = 0
    backfill_failures: int = 0
    #: "pending" (first attempt running), "retrying", "done" (nothing fillable left), "off"
    backfill_state: str = "pending"
    holes_filled: int = 0
    #: days whose reference data (instrument details, sectors, calendar) this recorder stored
    reference_days: list[str] = field(default_factory=list)
    reference_error: str | None = None
    #: holes of today left after the latest attempt, and the session seconds they span (longest scope)
    holes_open: int = 0
    missing_seconds: float = 0.0
    stream_breaks: int = 0
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
        retry_first_s: float = 1.0,
        retry_max_s: float = BACKFILL_RETRY_MAX_S,
        recheck_s: float = RECHECK_S,
        reference: bool = True,
        open_wait_s: float = OPEN_WAIT_S,
    ) -> None:
        self.hub = hub
        self.source = source
        self.writer = writer
        self.target = target
        self.backfill = backfill
        self.clock_interval = clock_interval
        self.retry_first_s = retry_first_s
        self.retry_max_s = retry_max_s
        self.recheck_s = recheck_s
        self.reference = reference
        self.open_wait_s = open_wait_s
        self.reference_done = asyncio.Event()
        self.stats = RecorderStats()
        self._client: Any = None
        self._wanted: set[str] | None = None  # None: every code of the subscribed markets
        self._tasks: list[asyncio.Task[None]] = []
        self.backfill_done = asyncio.Event()  # the first backfill attempt ended (bars are built from now)
        self.fill_idle = asyncio.Event()  # nothing fillable is left (set and cleared as holes come and go)
        self._recheck = asyncio.Event()
        self._opened = asyncio.Event()  # the first live span started
        self._scopes: list[str] = []
        self._codes: list[str] = []
        self._run = ""
        self._run_day: dt.date | None = None
        self._run_lo = 0
        self._run_pending = True  # no live span yet: waiting for a frame in time (see IN_TIME_MS)
        self._prev_live_ts: int | None = None  # the newest tick of the last frame while pending
        self._market_codes: dict[str, list[str]] = {}
        self._downloaded: set[tuple[dt.date, str]] = set()

    async def start(self) -> None:
        codes = [normalize_code(c) for c in self.target.codes]
        for sector in self.target.sectors:
            members = await self.source.sector_members(sector)
            if not members:
                raise ValueError(f"sector {sector!r} has no members (unknown sector?)")
            codes.extend(members)
        codes = list(dict.fromkeys(codes))
        markets = list(self.target.markets)
        scopes = [*markets, *codes]
        if codes and len(codes) > self.hub.config.max_codes_per_client:
            # too many explicit codes for one hub client: take their whole markets and filter here
            markets = sorted(set(markets) | {market_of(c) for c in codes})
            self._wanted = set(codes) if not self.target.markets else None
            codes = []
        elif codes and markets:
            self._wanted = None
        self._scopes = list(dict.fromkeys(scopes))
        self._codes = codes
        self.stats.codes = len(codes)
        self.stats.markets = markets
        self.writer.start()
        if self.backfill:
            self.writer.begin_fill()
        self._client = self.hub.connect()
        seeds = await self.hub.subscribe(self._client, "tick", codes, markets)
        # the live span starts with the first frame in time (_drain) or, outside the session, now (_clock)
        if seeds:
            await self._hand_over([u.row for u in seeds])
        self._tasks.append(asyncio.create_task(self._drain(), name="qmtgate-recorder-drain"))
        self._tasks.append(asyncio.create_task(self._clock(), name="qmtgate-recorder-clock"))
        if self.reference:
            self._tasks.append(asyncio.create_task(self._reference_loop(), name="qmtgate-recorder-reference"))
        if self.backfill:
            self._tasks.append(
                asyncio.create_task(self._backfill_loop(markets), name="qmtgate-recorder-backfill")
            )
        else:
            self.stats.backfill_state = "off"
            self.backfill_done.set()
        logger.info(
            "recording %s%s into %s",
            f"markets {markets} " if markets else "",
            f"{len(codes)} codes" if codes else "",
            self.writer.path,
        )

    async def stop(self) -> None:
        """Stop recording: what the hub delivered is stored, the live span claimed, the file checkpointed."""
        for task in [t for t in self._tasks if t.get_name() != "qmtgate-recorder-drain"]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        now = self.source.now_ms()
        if self._client is not None:  # let the drain hand over what the hub already delivered
            deadline = asyncio.get_running_loop().time() + 5.0
            while len(self._client.outbox) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
            if not len(self._client.outbox) and self._run and not self._run_pending:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.writer.cover, "claim", self._run, now - COVER_MARGIN_MS, now)
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

    def _open_run(self, lo: int) -> None:
        """Start a live span at ``lo`` (blocking: call in a thread)."""
        self._run = uuid.uuid4().hex[:12]
        self._run_day = date_of_ms(lo)
        self._run_lo = lo
        self._run_pending = False
        self.writer.cover("open", self._run, self._run_day, self._scopes, lo)

    async def _start_span(self, lo: int) -> None:
        await asyncio.to_thread(self._open_run, lo)
        self._opened.set()
        self._recheck.set()  # the hole before it can be filled now

    async def _live(self, newest_ts: int | None) -> None:
        """A live frame arrived: the first one in time that moved the market on from the frame before it
        opens the live span just after the market clock.

        Not earlier: the first push of a subscription is a snapshot (each code's latest tick, so a code's
        earlier ticks of the same seconds are superseded), and a source catching up after a start merges
        what it missed. Every tick after the clock's present is pushed one by one; the ticks before it
        are in the hole the backfill fills."""
        if not self._run_pending or newest_ts is None:
            return
        previous, self._prev_live_ts = self._prev_live_ts, newest_ts
        if previous is None or newest_ts <= previous:
            return  # the first push (a snapshot, maybe stale) or no progress: the market is not moving yet
        now = self.source.now_ms()
        if newest_ts >= now - IN_TIME_MS:
            await self._start_span(max(newest_ts, now) + 1)

    async def _drain(self) -> None:
        outbox = self._client.outbox
        while True:
            frame = await outbox.get()
            if frame is None:
                logger.error("the hub closed the recorder's stream: %s", outbox.closed_reason)
                return
            if isinstance(frame, StreamBreak):  # a remote gateway's stream lost ticks (record.remote)
                logger.warning("the gateway's stream broke (%s): a new live span starts", frame.reason)
                await self._break()
                continue
            if isinstance(frame, RemoteFrame):
                self.stats.frames += 1
                rows = (
                    frame.rows
                    if self._wanted is None
                    else [r for r in frame.rows if r.get("code") in self._wanted]
                )
                self.stats.updates += len(rows)
                if frame.conflated:
                    self.stats.conflated_frames += 1
                    await self._break()
                if rows:
                    await self._hand_over(rows)
                if not frame.seed:
                    await self._live(
                        max((r["ts"] for r in frame.rows if r.get("ts") is not None), default=None)
                    )
                continue
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
                if skipped > 0:
                    await self._break()
            if len(batch):
                await self._hand_over(batch)
            if self._run_pending and frame.updates and not frame.conflated:
                await self._live(max((u.row.get("ts") or 0) for u in frame.updates) or None)

    async def _break(self) -> None:
        """The stream lost ticks: the live span ends at its last claim, a new one starts with the next
        frame in time, and the backfill looks for the hole between."""
        self.stats.stream_breaks += 1
        self._run_pending = True
        self._prev_live_ts = None
        self._recheck.set()

    async def _hand_over(self, batch: list[dict[str, Any]] | pa.Table) -> None:
        while not self.writer.offer(batch):
            await asyncio.sleep(0.02)  # writer queue full: wait (the hub conflates meanwhile)

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(self.clock_interval)
            now = self.source.now_ms()
            self.writer.clock(now)
            day = date_of_ms(now)
            if self._run_pending and not _in_session(now):
                await self._start_span(now)  # nothing is published now: nothing to wait for
            if self._run_pending:
                continue
            if self._run_day is not None and day != self._run_day:
                # a new trading day while recording: the old span ends with its day, a new one begins
                end = day_start_ms(day) - 1
                await asyncio.to_thread(self.writer.cover, "claim", self._run, end, end)
                await self._start_span(day_start_ms(day))
            if self._client is not None and not len(self._client.outbox):
                # everything delivered so far is queued ahead of this claim, which the writer stores
                # only after those rows are committed
                self.writer.try_cover("claim", self._run, now - COVER_MARGIN_MS, now)

    # -- reference data --------------------------------------------------------------------------------

    async def _reference_loop(self) -> None:
        """Store each recorded day's reference data once (``record.reference``), retrying with backoff."""
        from qmtgate.record import reference

        delay = self.retry_first_s
        while True:
            day = date_of_ms(self.source.now_ms())
            try:
                have = await asyncio.to_thread(lambda: reference.recorded_days(self.writer.cursor()))
                if day not in have:
                    codes = await self._codes_of(self._scopes)
                    data = await reference.collect(self.source, day, codes, self.target.sectors)
                    await asyncio.to_thread(self.writer.put, ("reference", (day, data)))
                    await asyncio.to_thread(self.writer.flush)
                    self.stats.reference_days.append(day.isoformat())
                    logger.info(
                        "recorded the reference data of %s: %d instruments, %d sector memberships",
                        day,
                        len(data[0]),
                        len(data[1]),
                    )
                self.stats.reference_error = None
                self.reference_done.set()
                delay = self.retry_first_s
                await asyncio.sleep(self.recheck_s)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.stats.reference_error = f"{type(e).__name__}: {e}"
                logger.warning("recording the reference data failed (%s); retrying in %.0f s", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)

    # -- backfill --------------------------------------------------------------------------------------

    async def _backfill_loop(self, markets: Sequence[str]) -> None:
        loop = asyncio.get_running_loop()
        delay = self.retry_first_s
        first = True
        # the first attempt fills up to where the live span starts: wait (bounded) for its first frame
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await asyncio.wait_for(self._opened.wait(), self.open_wait_s)
        while True:
            began = loop.time()
            self.stats.backfill_attempts += 1
            try:
                pending = await self._fill_holes()
                failed = False
            except asyncio.CancelledError:
                raise
            except Unsupported as e:  # no tick history at all (a gateway that does not record)
                pending = -1
                failed = True
                self.stats.backfill_error = f"{type(e).__name__}: {e}"
                if self.stats.backfill_state != "unavailable":
                    logger.warning("recorder backfill unavailable: %s", e)
                self.stats.backfill_state = "unavailable"
                if first:
                    first = False
                    await asyncio.to_thread(self.writer.end_fill)
                    self.backfill_done.set()
                self._recheck.clear()
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    await asyncio.wait_for(self._recheck.wait(), self.recheck_s * 10)
                continue
            except Exception as e:  # live recording goes on; the hole stays, is reported, and is retried
                failed = True
                pending = -1
                self.stats.backfill_failures += 1
                self.stats.backfill_error = f"{type(e).__name__}: {e}"
                logger.warning(
                    "recorder backfill attempt %d failed (%s); live recording goes on, retrying in %.0f s",
                    self.stats.backfill_attempts,
                    e,
                    delay,
                )
            finally:
                self.stats.backfill_seconds += loop.time() - began
            if first:
                first = False
                await asyncio.to_thread(self.writer.end_fill)
                self.backfill_done.set()
            if pending == 0:
                if self.stats.backfill_state != "done":
                    logger.info(
                        "recorder backfill done: %d hole(s) filled with %d ticks so far, %d attempt(s), %d failed",
                        self.stats.holes_filled,
                        self.stats.backfill_rows,
                        self.stats.backfill_attempts,
                        self.stats.backfill_failures,
                    )
                self.stats.backfill_state = "done"
                self.stats.backfill_error = None
                self.fill_idle.set()
                delay = self.retry_first_s
                self._recheck.clear()
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    await asyncio.wait_for(self._recheck.wait(), self.recheck_s)
                self.fill_idle.clear()
                continue
            self.stats.backfill_state = "retrying"
            if not failed:
                logger.info(
                    "recorder backfill: %d hole(s) not in the source's history yet; retrying", pending
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_s)

    async def _fill_holes(self) -> int:
        """Fill today's holes before the current live span; return how many are left (0: nothing to do)."""
        now = self.source.now_ms()
        day = date_of_ms(now)
        was_pending = self._run_pending
        # up to the live span (its start is a tick already published, so the history holds everything
        # before it); while it has not started, up to what the history surely holds
        horizon = now - COVER_MARGIN_MS
        if not self._run_pending and self._run_day == day:
            horizon = self._run_lo - 1
        await asyncio.to_thread(self.writer.flush)  # the live span's row is stored before it is read
        spans = await asyncio.to_thread(self._spans, day)
        holes = holes_by_scope(day, spans, self._scopes, horizon)
        grouped: dict[tuple[int, int], list[str]] = {}
        for scope, found in holes.items():
            for span in found:
                grouped.setdefault(span, []).append(scope)
        self.stats.holes_open = len(grouped)
        self.stats.missing_seconds = (
            max((sum(hi - lo + 1 for lo, hi in h) for h in holes.values()), default=0) / 1000
        )
        if not grouped:
            return 1 if was_pending else 0  # the live span had not started: look again
        if (now - day_start_ms(day)) // 1000 < HISTORY_READY_S:
            return len(grouped)  # no tick history of today before the opening match
        match = day_start_ms(day) + AUCTION_MATCH_S * 1000
        slices = _slices(grouped, match)
        # bars are built in front of the oldest slice a bar needs that is not stored yet (the fill
        # barrier); while the live span has not started, nothing after the horizon is known complete
        waiting = {s for s in slices if s[1] >= match}
        ceiling = horizon + 1 if was_pending else NO_BARRIER_MS

        def barrier() -> int:
            return min([ceiling, *(s[0] for s in waiting)])

        left = 0
        run = "fill-" + uuid.uuid4().hex[:8]
        covered = getattr(self.source, "covered", None)  # a remote gateway: only what its recording holds
        known: dict[tuple[str, ...], list[tuple[int, int]] | None] = {}
        await asyncio.to_thread(self.writer.begin_fill)
        await asyncio.to_thread(self.writer.fill_barrier, barrier())
        try:
            for piece in slices:
                lo, hi, scopes = piece
                whole = True
                pieces = [(lo, hi)]
                if covered is not None:
                    if scopes not in known:
                        known[scopes] = await covered(day.strftime("%Y%m%d"), scopes)
                    held = known[scopes]
                    if held is not None:
                        pieces = intersect(pieces, held)
                        if pieces != [(lo, hi)]:
                            left += 1  # the rest is not in the gateway's recording (yet)
                            whole = False
                for a, b in pieces:
                    rows = await self._fill(day, scopes, a, b)
                    market_wide = any(s in MARKET_SCOPES for s in scopes)
                    session_ms = sum(max(0, min(y, b) - max(x, a)) for x, y in expected(day, b))
                    if rows == 0 and market_wide and session_ms >= EMPTY_MARKET_HOLE_MS:
                        left += 1  # a whole market traded nothing for that long: no history there (yet)
                        whole = False
                        continue
                    await asyncio.to_thread(self.writer.cover, "filled", run, day, list(scopes), a, b)
                    self.stats.holes_filled += 1
                if whole and piece in waiting:
                    # stored and claimed (queued ahead of this): the bars in front of the next hole
                    waiting.discard(piece)
                    await asyncio.to_thread(self.writer.fill_barrier, barrier())
        finally:
            await asyncio.to_thread(self.writer.end_fill)
        remaining = await asyncio.to_thread(self._spans, day)
        after = holes_by_scope(day, remaining, self._scopes, horizon)
        self.stats.holes_open = len({span for found in after.values() for span in found})
        return left + (1 if was_pending else 0)

    def _spans(self, day: dt.date) -> dict[str, list[tuple[int, int]]]:
        rows = (
            self.writer.cursor()
            .execute("SELECT scope, lo, hi FROM coverage WHERE date = ?", [day])
            .fetchall()
        )
        out: dict[str, list[tuple[int, int]]] = {}
        for scope, lo, hi in rows:
            out.setdefault(scope, []).append((int(lo), int(hi)))
        return out

    async def _codes_of(self, scopes: Sequence[str]) -> list[str]:
        wanted: list[str] = []
        for scope in scopes:
            if scope in MARKET_SCOPES:
                if scope not in self._market_codes:
                    snapshot = await self.source.market_snapshot([scope])
                    self._market_codes[scope] = [c for c in snapshot if market_of(c) == scope]
                wanted += self._market_codes[scope]
            else:
                wanted.append(scope)
        if self._wanted is not None:
            wanted = [c for c in wanted if c in self._wanted]
        return list(dict.fromkeys(wanted))

    async def _fill(self, day: dt.date, scopes: Sequence[str], lo: int, hi: int) -> int:
        """Store the source's ticks of ``scopes`` in ``[lo, hi]``; return how many came."""
        wanted = await self._codes_of(scopes)
        if not wanted:
            return 0
        history_rows = getattr(self.source, "history_rows", None)  # a remote gateway (record.remote)
        day_text = day.strftime("%Y%m%d")
        slots = max(1, (hi - lo) // 3000)
        chunk_size = max(1, min(BACKFILL_CHUNK, BACKFILL_ROWS // slots))
        start, end = _yyyymmddhhmmss(lo), _yyyymmddhhmmss(hi + 999)
        chunks = [wanted[i : i + chunk_size] for i in range(0, len(wanted), chunk_size)]
        total = 0
        if history_rows is not None:
            for chunk in chunks:
                got = await history_rows(chunk, lo, hi)
                if got:
                    total += len(got)
                    self.stats.backfill_rows += len(got)
                    await asyncio.to_thread(self.writer.put, got)
            return total

        async def read(chunk: list[str]) -> dict[str, Any]:
            fresh = [c for c in chunk if (day, c) not in self._downloaded]
            if fresh:
                await self.source.download_history(fresh, "tick", day_text, day_text)
                self._downloaded.update((day, c) for c in fresh)
            return await self.source.history(chunk, "tick", start=start, end=end)

        # the next chunk is read by the source while this one is converted and stored (the source's
        # thread sits mostly in xtdata's download meanwhile): one chunk ahead, never more
        ahead = asyncio.ensure_future(read(chunks[0]))
        try:
            for n in range(len(chunks)):
                frames = await ahead
                if n + 1 < len(chunks):
                    ahead = asyncio.ensure_future(read(chunks[n + 1]))
                rows = await asyncio.to_thread(_history_rows, frames, lo, hi)
                if rows:
                    total += len(rows)
                    self.stats.backfill_rows += len(rows)
                    await asyncio.to_thread(self.writer.put, rows)
        finally:
            if not ahead.done():  # cancelled or failed: the read ahead is not wanted any more
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await ahead
        return total


def _slices(
    grouped: dict[tuple[int, int], list[str]], match_ms: int
) -> list[tuple[int, int, tuple[str, ...]]]:
    """Holes ``{(lo, hi): scopes}`` cut into fill slices (at most :data:`FILL_SLICE_MS`, and at the opening
    match ``match_ms``), in fill order: from the opening match on oldest first, so the bars (built in front
    of the oldest hole not filled yet) follow the fill; then the opening call auction, which no bar needs
    (nothing trades before the match) and which holds the most snapshots of a short hole."""
    out: list[tuple[int, int, tuple[str, ...]]] = []
    for (lo, hi), scopes in grouped.items():
        parts = [(lo, match_ms - 1), (match_ms, hi)] if lo < match_ms <= hi else [(lo, hi)]
        for a0, b0 in parts:
            out.extend(
                (a, min(a + FILL_SLICE_MS - 1, b0), tuple(scopes)) for a in range(a0, b0 + 1, FILL_SLICE_MS)
            )
    out.sort(key=lambda s: (s[1] < match_ms, s[0]))
    return out


def _history_rows(frames: dict[str, Any], lo: int, hi: int) -> list[dict[str, Any]]:
    """Normalized tick rows of the tick-history frames (one DataFrame per code, xtdata's shape) in
    ``[lo, hi]``, converted column by column and as one batch: a whole-market backfill reads thousands of
    frames of a few rows each, and ``DataFrame.to_dict("records")`` per frame cost ~5 ms a code (most
    of a 5,885-code backfill of the minutes after the opening match)."""
    codes: list[str] = []
    recs: list[dict[str, Any]] = []
    for code, frame in frames.items():
        if frame is None or len(frame) == 0:
            continue
        names = list(frame.columns)
        for values in zip(*(frame[name].tolist() for name in names), strict=True):
            rec = dict(zip(names, values, strict=True))
            if lo <= rec["time"] <= hi:
                recs.append(rec)
                codes.append(code)
    return tick_rows(codes, recs)


def _yyyymmddhhmmss(ts_ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ts_ms / 1000, dt.timezone(dt.timedelta(hours=8)))
    return moment.strftime("%Y%m%d%H%M%S")


def _in_session(ms: int) -> bool:
    """Whether ``ms`` lies in a session window (with a minute's margin: ticks may come late)."""
    from qmtgate.record.completeness import windows

    return any(lo - 60_000 <= ms <= hi + 60_000 for lo, hi in windows(date_of_ms(ms)))
