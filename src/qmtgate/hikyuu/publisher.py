"""The Hikyuu publisher: a hub client that sends every tick burst as one bracket on an NNG ``Pub0``.

Wire (docs/hikyuu.md, Hikyuu's ``SpotAgent``): per bracket ``:spot:[start spot]``, then one or more
``:spot:`` + ``SpotList`` FlatBuffers of at most ``records_per_message`` records, then ``:spot:[end spot]``.
Hikyuu ignores data outside a bracket, so brackets never interleave: one thread sends them all.

Never slowing anyone (docs/architecture.md, "A hub consumer"):

* the hub appends frames to this client's bounded outbox like any WebSocket's; when the publisher falls
  behind, the hub conflates them (latest tick per code, counted in ``conflated_updates``);
* the drain task only hands each frame's update list to the thread ``qmtgate-hikyuu-publisher`` through a
  bounded queue (``queue_bursts``), waiting (while the hub conflates) when it is full;
* that thread turns updates into Hikyuu's columns, encodes (numpy, ~ms per whole market) and sends;
  NNG's pub0 never blocks on a slow subscriber (its per-pipe queue drops instead).

Whole-market brackets from the hub's last-value cache: at start (the seeds of the subscription), when a
consumer connects (at most one a second), at ``open_time`` (09:30: Hikyuu's first minute bar) and every
``full_interval`` s inside ``full_windows``: a consumer that connects late has every code at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pynng
from prometheus_client import CollectorRegistry, Counter, Histogram

from qmtgate.codes import normalize_code
from qmtgate.config import HikyuuSettings
from qmtgate.hikyuu.encode import encode_spot_list, self_check
from qmtgate.hikyuu.records import HIKYUU_MARKETS, spot_columns
from qmtgate.hikyuu.schedule import FullSchedule
from qmtgate.hub.stream import TICK, StreamHub, market_of
from qmtgate.source.convert import date_of_ms

logger = logging.getLogger(__name__)

TOPIC = b":spot:"
START = TOPIC + b"[start spot]"
END = TOPIC + b"[end spot]"
#: messages NNG queues per subscriber before dropping (default 16: less than one whole-market bracket)
SEND_BUFFER = 1024
#: at most one whole-market bracket per this many seconds for consumers connecting
JOIN_DEBOUNCE_S = 1.0
ENCODE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
RECORD_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 4000, 6000, 10000)


@dataclass
class PublisherStats:
    brackets: int = 0
    full_brackets: int = 0
    messages: int = 0
    bytes: int = 0
    records: int = 0
    left_out: int = 0  # updates Hikyuu cannot place (no time, a market outside SH/SZ/BJ)
    queue_waits: int = 0  # the drain found the encoder queue full (the hub conflated meanwhile)
    send_errors: int = 0
    idle_brackets: int = 0  # not encoded: no subscriber was connected
    joins: int = 0  # whole-market brackets asked for by connecting subscribers (debounced)
    reconnects: int = 0
    encode_seconds: float = 0.0
    last_encode_seconds: float = 0.0
    last_bracket_records: int = 0
    subscribers: int = 0
    errors: list[str] = field(default_factory=list)


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "qmtgate_hikyuu_messages", "Hikyuu feed messages sent.", ["kind"], registry=registry
        )
        self.bytes = Counter(
            "qmtgate_hikyuu_bytes", "Hikyuu feed bytes sent (topic included).", registry=registry
        )
        self.brackets = Counter(
            "qmtgate_hikyuu_brackets",
            "Hikyuu brackets sent (live burst or whole market).",
            ["kind"],
            registry=registry,
        )
        self.records = Histogram(
            "qmtgate_hikyuu_records_per_bracket",
            "Spot records per bracket.",
            buckets=RECORD_BUCKETS,
            registry=registry,
        )
        self.encode = Histogram(
            "qmtgate_hikyuu_encode_seconds",
            "Time to turn one bracket's updates into SpotList buffers (columns and FlatBuffers).",
            buckets=ENCODE_BUCKETS,
            registry=registry,
        )
        self.conflated = Counter(
            "qmtgate_hikyuu_conflated_updates",
            "Updates the hub conflated away because the Hikyuu publisher was behind.",
            registry=registry,
        )
        self.idle = Counter(
            "qmtgate_hikyuu_idle_brackets",
            "Brackets not encoded because no subscriber was connected.",
            registry=registry,
        )
        self.left_out = Counter(
            "qmtgate_hikyuu_left_out",
            "Updates not sent (no time, market outside SH/SZ/BJ).",
            registry=registry,
        )


class HikyuuPublisher:
    """``start()`` / ``stop()`` on the gateway's loop; see the module doc."""

    def __init__(
        self,
        hub: StreamHub,
        source: Any,
        settings: HikyuuSettings,
        *,
        registry: CollectorRegistry | None = None,
        is_trading_day: Callable[[Any], Awaitable[bool]] | None = None,
        check_interval: float = 0.5,
    ) -> None:
        self.hub = hub
        self.source = source
        self.settings = settings
        self.is_trading_day = is_trading_day
        self.check_interval = check_interval
        self.stats = PublisherStats()
        self.metrics = _Metrics(registry if registry is not None else CollectorRegistry())
        self.addresses: list[str] = []  # as bound (a tcp port 0 resolved)
        self.schedule = FullSchedule(
            settings.open_time if settings.open_bracket else None, settings.full_interval, settings.windows()
        )
        self._socket: pynng.Pub0 | None = None
        self._queue: queue.Queue[tuple[str, Sequence[Any]] | None] = queue.Queue(settings.queue_bursts)
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._codes: list[str] = []
        self._markets: list[str] = []
        self._wanted: set[str] | None = None  # filter when codes were widened to their markets
        self._tasks: list[asyncio.Task[None]] = []
        self._skipped_seen = 0
        self._joined = asyncio.Event()  # a subscriber connected: it gets the whole market at once
        self._join_sent = float("-inf")

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        self_check()
        await self._resolve_target()
        sock = pynng.Pub0()
        try:
            sock.send_buffer_size = SEND_BUFFER
            for address in self.settings.addresses:
                try:
                    listener = sock.listen(address)
                except pynng.AddressInUse as e:
                    raise RuntimeError(
                        f"Hikyuu feed: {address} is in use (is Hikyuu's own collector, start_qmt.py, running? "
                        "stop it or set hikyuu.addresses)"
                    ) from e
                self.addresses.append(_bound(address, listener))
        except Exception:
            sock.close()
            raise
        self._socket = sock
        loop = asyncio.get_running_loop()

        def joined(_pipe: Any) -> None:  # on an NNG thread: only hand over
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._joined.set)

        sock.add_post_pipe_connect_cb(joined)
        logger.warning(
            "Hikyuu feed on %s is UNAUTHENTICATED: NNG has no keys, anyone who can reach %s reads the quotes%s",
            ", ".join(self.addresses),
            "these addresses",
            " (LAN exposure acknowledged: hikyuu.allow_lan)" if self.settings.allow_lan else "",
        )
        self._thread = threading.Thread(target=self._run, name="qmtgate-hikyuu-publisher", daemon=True)
        self._thread.start()
        try:
            await self._connect()
        except BaseException:
            await self.stop()
            raise
        self._tasks.append(asyncio.create_task(self._drain(), name="qmtgate-hikyuu-drain"))
        self._tasks.append(asyncio.create_task(self._clock(), name="qmtgate-hikyuu-clock"))
        logger.info(
            "Hikyuu feed: %s%s, whole-market brackets at %s and every %g s in %s",
            f"markets {self._markets} " if self._markets else "",
            f"{len(self._codes)} codes" if self._codes else "",
            self.settings.open_time if self.settings.open_bracket else "never",
            self.settings.full_interval,
            list(self.settings.full_windows),
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
        if self._thread is not None:
            await asyncio.to_thread(self._queue.put, None)
            await asyncio.to_thread(self._thread.join, 10)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def backlog(self) -> int:
        """Frames in the hub outbox plus brackets queued for or being sent by the thread (0: all sent)."""
        outbox = len(self._client.outbox) if self._client is not None else 0
        return outbox + self._queue.unfinished_tasks

    def info(self) -> dict[str, Any]:
        outbox = self._client.outbox if self._client is not None else None
        return {
            **self.stats.__dict__,
            "addresses": self.addresses,
            "queued": self._queue.qsize(),
            "conflated_updates": outbox.stats.updates_skipped if outbox is not None else 0,
        }

    # -- the hub side (event loop) ---------------------------------------------------------------------

    async def _resolve_target(self) -> None:
        s = self.settings
        codes = [normalize_code(c) for c in s.codes]
        for sector in s.sectors:
            members = await self.source.sector_members(sector)
            if not members:
                raise ValueError(f"hikyuu.sectors: {sector!r} has no members (unknown sector?)")
            codes.extend(members)
        codes = [c for c in dict.fromkeys(codes) if market_of(c) in HIKYUU_MARKETS]
        markets = list(s.markets)
        if codes and len(codes) > self.hub.config.max_codes_per_client:
            # more codes than one hub client may name: take their markets and filter here
            self._wanted = set(codes) if not markets else None
            markets = sorted(set(markets) | {market_of(c) for c in codes})
            codes = []
        self._codes, self._markets = codes, markets

    async def _connect(self) -> None:
        self._client = self.hub.connect()
        seeds = await self.hub.subscribe(self._client, TICK, self._codes, self._markets)
        if seeds:  # the subscription's current state: a whole-market bracket for whoever listens already
            await self._offer("full", self._filter(seeds))
            self.schedule.sent(self.source.now_ms())

    def _filter(self, updates: Sequence[Any]) -> Sequence[Any]:
        if self._wanted is None:
            return updates
        return [u for u in updates if u.code in self._wanted]

    def _matches(self, code: str) -> bool:
        if self._wanted is not None:
            return code in self._wanted
        return market_of(code) in self._markets or code in self._codes

    def full_market(self) -> list[Any]:
        """The latest tick of every subscribed code, from the hub's last-value cache."""
        matches = self._matches
        return [u for u in self.hub.lvc.latest(TICK) if matches(u.code)]

    async def send_full(self, kind: str = "full") -> int:
        """Queue a whole-market bracket now; returns its updates (0: the cache is empty, nothing sent)."""
        updates = self.full_market()
        if updates:
            await self._offer(kind, updates)
        return len(updates)

    async def _offer(self, kind: str, updates: Sequence[Any]) -> None:
        while True:
            try:
                self._queue.put_nowait((kind, updates))
                return
            except queue.Full:
                self.stats.queue_waits += 1
                await asyncio.sleep(0.005)  # the hub conflates our outbox meanwhile

    async def _drain(self) -> None:
        while True:
            client = self._client
            frame = await client.outbox.get()
            skipped = client.outbox.stats.updates_skipped
            if skipped > self._skipped_seen:
                self.metrics.conflated.inc(skipped - self._skipped_seen)
                self._skipped_seen = skipped
            if frame is None:  # the hub dropped us (too slow for too long): reconnect; a full bracket repairs
                logger.error(
                    "the hub closed the Hikyuu feed's stream: %s; resubscribing", client.outbox.closed_reason
                )
                self.stats.reconnects += 1
                await self.hub.disconnect(client)
                self._skipped_seen = 0
                await self._connect()
                continue
            if isinstance(frame, dict) or not frame.updates:  # control messages
                continue
            await self._offer("live", self._filter(frame.updates))

    async def _clock(self) -> None:
        trading: dict[Any, bool] = {}
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                now = self.source.now_ms()
                if self._joined.is_set() and time.monotonic() - self._join_sent >= JOIN_DEBOUNCE_S:
                    # a consumer connected (a strategy started mid-session): the whole market now, not at
                    # the next periodic bracket (the others get it too: the same values, harmless)
                    self._joined.clear()
                    self._join_sent = time.monotonic()
                    self.stats.joins += 1
                    if await self.send_full("join"):
                        self.schedule.sent(now)
                    continue
                kind = self.schedule.due(now)
                if kind is None:
                    continue
                day = date_of_ms(now)
                if self.is_trading_day is not None:
                    if day not in trading:
                        trading.clear()
                        trading[day] = bool(await self.is_trading_day(day))
                    if not trading[day]:
                        continue
                if await self.send_full(kind):
                    self.schedule.sent(now)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the live feed goes on; the next check tries again
                logger.warning("Hikyuu whole-market bracket failed: %s", e)

    # -- the encoder thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._bracket(*job)
            except Exception as e:  # one bad burst must not end the feed
                self.stats.send_errors += 1
                self.stats.errors = [*self.stats.errors[-9:], f"{type(e).__name__}: {e}"]
                logger.exception("Hikyuu feed: a bracket failed")
            finally:
                self._queue.task_done()

    def _bracket(self, kind: str, updates: Sequence[Any]) -> None:
        sock = self._socket
        if sock is None:
            return
        self.stats.subscribers = len(sock.pipes)
        if not self.stats.subscribers:  # nobody listens: nothing to encode (a new consumer waits for the
            self.stats.idle_brackets += 1  # next whole-market bracket either way)
            self.metrics.idle.inc()
            return
        began = time.perf_counter()
        cols, left_out = spot_columns(updates)
        step = self.settings.records_per_message
        buffers = [TOPIC + encode_spot_list(cols.slice(i, i + step)) for i in range(0, len(cols), step)]
        encode_s = time.perf_counter() - began
        if left_out:
            self.stats.left_out += left_out
            self.metrics.left_out.inc(left_out)
        if not buffers:
            return
        for message in (START, *buffers, END):
            sock.send(message)
            self.stats.bytes += len(message)
            self.metrics.bytes.inc(len(message))
        self.stats.messages += len(buffers) + 2
        self.metrics.messages.labels("start").inc()
        self.metrics.messages.labels("data").inc(len(buffers))
        self.metrics.messages.labels("end").inc()
        full = kind != "live"
        self.stats.brackets += 1
        self.stats.full_brackets += full
        self.stats.records += len(cols)
        self.stats.last_bracket_records = len(cols)
        self.stats.encode_seconds += encode_s
        self.stats.last_encode_seconds = encode_s
        self.metrics.brackets.labels("full" if full else "live").inc()
        self.metrics.records.observe(len(cols))
        self.metrics.encode.observe(encode_s)


def _bound(address: str, listener: Any) -> str:
    """The address as bound: ``tcp://host:0`` becomes the port the system chose."""
    if address.startswith("tcp") and address.rsplit(":", 1)[-1] == "0":
        port = str(listener.local_address).rsplit(":", 1)[-1]  # SockAddr.port is in network byte order
        return f"{address.rsplit(':', 1)[0]}:{port}"
    return address
