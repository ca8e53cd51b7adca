"""The streaming hub: upstream bursts in, sequenced updates out to every interested client.

Data flow (one way):

1. xtquant callbacks (on SDK threads) only append ``(channel, data, received_at)`` to an inbox and, if
   the pump is idle, schedule one wake-up on the event loop. They never block and never touch asyncio
   objects directly.
2. One pump task drains the inbox on the loop. Each callback batch is a *burst*: its rows are
   normalized, get consecutive ``seq`` numbers (monotonic within this gateway run, whose ``epoch`` is
   new at every start), update the last-value cache, go into the replay ring, and are handed to every
   client whose interest matches as ONE frame per burst.
3. Each client's sender task drains its own bounded outbox (see :mod:`qmtgate.hub.clients`).

Upstream subscriptions are refcounted (:mod:`qmtgate.hub.upstream`): ten clients on one code make one
xtquant subscription, released when the last client leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from qmtgate.hub.clients import ClientOutbox, Frame, Interest
from qmtgate.hub.ring import ReplayRing, TickBurst, Update
from qmtgate.hub.upstream import Key, UpstreamRegistry
from qmtgate.source.convert import TickColumns, bar_row, tick_row

logger = logging.getLogger(__name__)

TICK = "tick"
BAR_PERIODS = ("1m", "5m", "15m", "30m", "1h", "1d")
MARKETS = ("SH", "SZ", "BJ")


def market_of(code: str) -> str:
    return code.rsplit(".", 1)[-1]


@dataclass
class HubConfig:
    """Streaming limits. Units: frames, updates, seconds, codes."""

    ring_capacity: int = 500_000  # updates kept for resume (~90 s of the whole market)
    outbox_frames: int = 64  # frames queued per client before conflation (~3 minutes of bursts)
    max_lag_seconds: float = 30.0  # a client behind for longer is disconnected
    max_codes_per_client: int = 2_000  # explicit codes per connection (markets are unlimited)
    max_clients: int = 200


@dataclass
class ClientState:
    """One connected client as the hub sees it."""

    client_id: int
    outbox: ClientOutbox
    interests: dict[str, Interest] = field(default_factory=dict)
    keys: set[Key] = field(default_factory=set)
    paused: bool = False  # while a resume is being prepared: the ring holds what it misses

    def codes(self) -> int:
        return sum(i.size for i in self.interests.values())


class HubError(Exception):
    """A client request the hub refuses (limit reached, unsupported channel)."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class StreamHub:
    """Fan-out of live updates with sequence numbers, replay and refcounted upstream subscriptions."""

    def __init__(self, source: Any, config: HubConfig | None = None) -> None:
        self.source = source
        self.config = config or HubConfig()
        self.epoch = uuid.uuid4().hex[:12]
        self.seq = 0
        self.ring = ReplayRing(self.config.ring_capacity)
        self.lvc: dict[tuple[str, str], Update] = {}  # (channel, code) -> latest update
        self.clients: dict[int, ClientState] = {}
        self.registry = UpstreamRegistry(self._subscribe_upstream, self._unsubscribe_upstream)
        self._ids = itertools.count(1)
        self._inbox: deque[tuple[str, Mapping[str, Any], float]] = deque()
        self._inbox_lock = threading.Lock()
        #: upstream batches enqueued by callbacks / taken through publish(); the difference is the backlog
        self.batches_received = 0
        self.batches_published = 0
        self._wake_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.stats = {"bursts": 0, "updates": 0, "frames": 0, "dropped_clients": 0}
        #: delivery counters of clients that have left (metrics add the live clients' at scrape time)
        self._retired = {"frames_sent": 0, "updates_sent": 0, "conflations": 0, "updates_skipped": 0}
        #: markets whose ticks already arrive through an always-on whole-market feed (no upstream)
        self.covered_markets: set[str] = set()
        self._watch: asyncio.Task[None] | None = None
        self._source_state: tuple[bool, int] | None = None
        self.listeners: list[Callable[[list[Update]], None]] = []  # e.g. recorders, metrics
        self._markets: dict[str, str] = {}  # code -> market, memoized (a burst repeats ~5,400 codes)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._pump(), name="qmtgate-hub-pump")
        self._watch = asyncio.create_task(self._watch_source(), name="qmtgate-hub-source-watch")

    def tick_sink(self) -> Callable[[Mapping[str, Any]], None]:
        """A raw whole-quote callback for an always-on feed (called on the SDK thread)."""
        return self._pusher(TICK)

    async def _watch_source(self, interval: float = 0.5) -> None:
        """Tell clients when the source connects or drops; re-issue upstream subscriptions after a
        reconnect (QMT forgets them when it restarts)."""
        while True:
            await asyncio.sleep(interval)
            try:
                st = self.source.status()
                state = (bool(st.connected), int(getattr(st, "epoch", 0) or 0))
            except Exception:
                continue
            if state == self._source_state:
                continue
            previous, self._source_state = self._source_state, state
            if previous is None:
                continue
            message = {
                "type": "status",
                "source": {"connected": state[0], "epoch": state[1], "name": self.source.name},
            }
            for client in list(self.clients.values()):
                client.outbox.put_message(message)
            if state[0] and state[1] != previous[1]:
                failed = await self.registry.resubscribe_all()
                for key, error in failed:
                    logger.warning("resubscribing %s failed: %s", key, error)

    def broadcast(self, message: dict[str, Any]) -> None:
        """Queue a control message (e.g. a source status change) for every connected client."""
        for client in list(self.clients.values()):
            client.outbox.put_message(message)

    async def stop(self) -> None:
        for c in list(self.clients.values()):
            c.outbox.close("gateway shutting down")
        for task in (self._task, self._watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # ------------------------------------------------------------------ upstream

    def _pusher(self, channel: str) -> Callable[[Mapping[str, Any]], None]:
        """The callback handed to xtquant: enqueue and wake the pump, nothing else."""

        def push(data: Mapping[str, Any]) -> None:
            received = time.time()
            with self._inbox_lock:
                self._inbox.append((channel, data, received))
                self.batches_received += 1
                if self._wake_scheduled or self._loop is None:
                    return
                self._wake_scheduled = True
            self._loop.call_soon_threadsafe(self._wake.set)

        return push

    async def _subscribe_upstream(self, key: Key) -> int:
        channel, _kind, what = key
        if channel == TICK:
            return await self.source.subscribe_whole_quote([what], self._pusher(TICK))
        return await self.source.subscribe_quote(what, channel, self._pusher(channel))

    async def _unsubscribe_upstream(self, handle: int) -> None:
        await self.source.unsubscribe(handle)

    # ------------------------------------------------------------------ the pump

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            with self._inbox_lock:
                batch = list(self._inbox)
                self._inbox.clear()
                self._wake_scheduled = False
            for channel, data, received in batch:
                try:
                    self.publish(channel, data, received)
                except Exception:  # one bad batch must not kill the pump
                    logger.exception("dropping a malformed %s batch", channel)
                self.batches_published += 1
                await asyncio.sleep(0)

    def publish(self, channel: str, data: Mapping[str, Any], received: float | None = None) -> list[Update]:
        """Sequence one upstream burst, cache it, ring it and fan it out (on the event loop)."""
        updates: list[Update] = []
        if channel == TICK:
            codes: list[str] = list(data)
            items: list[Mapping[str, Any]] = list(data.values())
            if set(map(type, items)) != {dict} or not all(items):  # checked at C speed
                codes, items = [], []
                for code, tick in data.items():
                    item = tick[-1] if isinstance(tick, list) else tick  # subscribe_quote gives lists
                    if item:
                        codes.append(code)
                        items.append(item)
            try:
                burst: TickBurst | None = TickBurst(TickColumns.build(codes, items))
            except (TypeError, ValueError):  # not plain numbers: the scalar converter, row by row
                burst = None
            if burst is not None:
                seq0 = self.seq + 1
                markets = list(map(self._markets.get, codes))  # C speed; a new code is looked up below
                if None in markets:
                    markets = [m or self._market(c) for c, m in zip(codes, markets, strict=True)]
                n = len(codes)
                updates = list(  # map() with positional arguments: ~4x cheaper than a comprehension
                    map(
                        Update,
                        range(seq0, seq0 + n),
                        repeat(TICK),
                        codes,
                        markets,
                        repeat(None),
                        repeat(burst),
                        range(n),
                    )
                )
                self.seq += n
                burst.updates = updates
                self.lvc.update(zip(zip(repeat(TICK), codes, strict=False), updates, strict=True))
            else:
                for code, item in zip(codes, items, strict=True):
                    self.seq += 1
                    updates.append(Update(self.seq, TICK, code, market_of(code), tick_row(code, item)))
        else:
            for code, bars in data.items():
                for bar in bars if isinstance(bars, list) else [bars]:
                    prev = self.lvc.get((channel, code))
                    if (
                        prev is not None
                        and prev.row["ts"] is not None
                        and bar.get("time", 0) > prev.row["ts"]
                    ):
                        self.seq += 1  # the previous bar is complete: publish it as final once
                        done = {**prev.row, "forming": False}
                        updates.append(Update(self.seq, channel, code, market_of(code), done))
                    self.seq += 1
                    updates.append(
                        Update(self.seq, channel, code, market_of(code), bar_row(code, channel, bar, True))
                    )
        if not updates:
            return updates
        if updates[0].burst is None:  # a burst's updates are in the cache already
            self.lvc.update(((u.channel, u.code), u) for u in updates)
        self.ring.extend(updates)
        self.stats["bursts"] += 1
        self.stats["updates"] += len(updates)
        self._fanout(channel, updates, received)
        for fn in self.listeners:
            try:
                fn(updates)
            except Exception:
                logger.exception("hub listener failed")
        return updates

    def _market(self, code: str) -> str:
        market = self._markets.get(code)
        if market is None:
            market = self._markets[code] = market_of(code)
        return market

    def _fanout(self, channel: str, updates: list[Update], received: float | None) -> None:
        """Hand each interested client its part of one burst.

        Clients whose interest covers the whole burst share one Frame object, so the frame is encoded
        once per wire format (see ``api.stream_codec``) however many whole-market clients there are.
        """
        markets = {u.market for u in updates}
        shared: Frame | None = None
        for client in list(self.clients.values()):
            interest = client.interests.get(channel)
            if interest is None or interest.empty or client.paused:
                continue
            if markets <= interest.markets:
                if shared is None:
                    shared = Frame(channel, updates[0].seq, updates[-1].seq, updates)
                    if received is not None:
                        shared.ts_pub = received
                frame = shared
            else:
                chosen = [u for u in updates if interest.matches(u)]
                if not chosen:
                    continue
                frame = Frame(channel, chosen[0].seq, chosen[-1].seq, chosen)
                if received is not None:
                    frame.ts_pub = received
            client.outbox.put(frame)
            self.stats["frames"] += 1
            if client.outbox.closed_reason is not None:
                self.stats["dropped_clients"] += 1

    # ------------------------------------------------------------------ clients

    def connect(self) -> ClientState:
        if len(self.clients) >= self.config.max_clients:
            raise HubError(
                "too_many_connections",
                f"the gateway serves at most {self.config.max_clients} streaming clients",
            )
        state = ClientState(
            next(self._ids), ClientOutbox(self.config.outbox_frames, self.config.max_lag_seconds)
        )
        self.clients[state.client_id] = state
        return state

    async def disconnect(self, client: ClientState) -> None:
        if self.clients.pop(client.client_id, None) is not None:
            for name in self._retired:
                self._retired[name] += getattr(client.outbox.stats, name)
        for key in list(client.keys):
            await self.registry.release(key)
        client.keys.clear()

    async def subscribe(
        self, client: ClientState, channel: str, codes: Sequence[str], markets: Sequence[str]
    ) -> list[Update]:
        """Add interest (codes already validated by the caller). Returns the current values (LVC) of
        what was added, so the caller can seed the client."""
        if channel != TICK and channel not in BAR_PERIODS:
            raise HubError(
                "invalid_period", f"unsupported stream period {channel!r}", {"allowed": [TICK, *BAR_PERIODS]}
            )
        if channel != TICK and markets:
            raise HubError(
                "unsupported", "whole-market streams are available for ticks only", {"period": channel}
            )
        interest = client.interests.setdefault(channel, Interest())
        new_codes = [c for c in codes if c not in interest.codes]
        if client.codes() + len(new_codes) > self.config.max_codes_per_client:
            raise HubError(
                "too_many_codes",
                f"at most {self.config.max_codes_per_client} codes per connection",
                {"requested": len(new_codes), "subscribed": client.codes()},
            )
        keys: list[Key] = [
            (channel, "market", m)
            for m in markets
            if m not in interest.markets and m not in self.covered_markets
        ]
        keys += [(channel, "code", c) for c in new_codes if not self._covered(channel, c)]
        acquired: list[Key] = []
        try:
            for key in keys:
                if key not in client.keys:
                    await self.registry.acquire(key)
                    acquired.append(key)
        except Exception:
            for key in acquired:
                await self.registry.release(key)
            raise
        client.keys.update(acquired)
        interest.codes.update(new_codes)
        interest.markets.update(markets)
        seeds = [
            u
            for (ch, code), u in self.lvc.items()
            if ch == channel and (code in new_codes or u.market in markets)
        ]
        return sorted(seeds, key=lambda u: u.seq)

    def _covered(self, channel: str, code: str) -> bool:
        """A code's ticks already flow when its whole market is fed or held upstream."""
        if channel != TICK:
            return False
        market = market_of(code)
        return market in self.covered_markets or self.registry.refs((TICK, "market", market)) > 0

    async def unsubscribe(
        self, client: ClientState, channel: str, codes: Sequence[str], markets: Sequence[str]
    ) -> None:
        interest = client.interests.get(channel)
        if interest is None:
            return
        interest.codes.difference_update(codes)
        interest.markets.difference_update(markets)
        for key in [(channel, "code", c) for c in codes] + [(channel, "market", m) for m in markets]:
            if key in client.keys:
                client.keys.discard(key)
                await self.registry.release(key)

    def resume(self, client: ClientState, since: int, epoch: str) -> list[Frame] | None:
        """Frames of everything after ``since`` matching the client's interests, or None when the
        client must start from a snapshot (another epoch, or fell out of the replay window)."""
        if epoch != self.epoch:
            return None
        missed = self.ring.since(since)
        if missed is None:
            return None
        frames: list[Frame] = []
        by_channel: dict[str, list[Update]] = {}
        for u in missed:
            interest = client.interests.get(u.channel)
            if interest is not None and interest.matches(u):
                by_channel.setdefault(u.channel, []).append(u)
        for channel, ups in by_channel.items():
            frames.append(Frame(channel, ups[0].seq, ups[-1].seq, ups, replay=True))
        return frames

    def snapshot(self, client: ClientState) -> list[Frame]:
        """The current value of everything the client is interested in (one frame per channel)."""
        frames = []
        for channel, interest in client.interests.items():
            ups = sorted(
                (u for (ch, _c), u in self.lvc.items() if ch == channel and interest.matches(u)),
                key=lambda u: u.seq,
            )
            if ups:
                frames.append(Frame(channel, ups[0].seq, ups[-1].seq, ups, conflated=True, replay=True))
        return frames

    def delivery_totals(self) -> dict[str, int]:
        """Monotonic delivery counters over every client so far (for metrics), plus the hub's own."""
        totals = dict(self._retired)
        for client in self.clients.values():
            for name in totals:
                totals[name] += getattr(client.outbox.stats, name)
        totals.update(self.stats)
        return totals

    def upstream_subscriptions(self) -> dict[Key, int]:
        return self.registry.active()
