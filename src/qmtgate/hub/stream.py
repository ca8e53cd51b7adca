"""The streaming hub: upstream bursts in, sequenced updates out to every interested client.

Data flow (one way):

1. xtquant callbacks (on SDK threads) only append ``(channel, data, received_at)`` to an inbox and, if
   the pump is idle, schedule one wake-up on the event loop. They never block and never touch asyncio
   objects directly.
2. One pump task drains the inbox on the loop. Each callback batch is a *burst*: it is converted once
   (column-wise), its updates get consecutive ``seq`` numbers (monotonic within this gateway run, whose
   ``epoch`` is new at every start), update the one last-value cache (:mod:`qmtgate.hub.lvc`, which REST
   snapshots, the fast lane and client seeds all read), go into the replay ring, and are handed to every
   client whose interest matches as ONE frame per burst. A whole market is converted in slices of
   :data:`CONVERT_SLICE` codes with the loop free in between (orders and requests that arrive meanwhile
   wait for one slice); the burst is then applied at once, so no reader ever sees half of it.
3. Each client's sender task drains its own bounded outbox (see :mod:`qmtgate.hub.clients`).

Upstream subscriptions are refcounted (:mod:`qmtgate.hub.upstream`): ten clients on one code make one
xtquant subscription, released when the last client leaves.

By concern: this module ingests (the inbox, the pump, ``publish``: convert once, sequence, cache, ring)
and owns the hub's state and its public API; the per-client types are in :mod:`qmtgate.hub.session`,
handing a burst to the clients in :mod:`qmtgate.hub.fanout`, a client's way back (resume from the ring,
snapshot from the cache) in :mod:`qmtgate.hub.replay`, the last values in :mod:`qmtgate.hub.lvc`.
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
from itertools import repeat
from typing import Any

from qmtgate.hub.clients import ClientOutbox, Frame, Interest
from qmtgate.hub.fanout import fan_out
from qmtgate.hub.lvc import LastValueCache, retire_later
from qmtgate.hub.replay import resume_frames, snapshot_frames
from qmtgate.hub.ring import PackedSegment, ReplayRing, TickBurst, Update
from qmtgate.hub.session import ClientState, HubConfig, HubError
from qmtgate.hub.upstream import Key, UpstreamRegistry
from qmtgate.source.convert import TickColumns, bar_row, tick_row
from qmtgate.source.events import SourceEvent, SourceEventKind

logger = logging.getLogger(__name__)


TICK = "tick"
BAR_PERIODS = ("1m", "5m", "15m", "30m", "1h", "1d")
MARKETS = ("SH", "SZ", "BJ")
#: raw tick entries (one code's quote in one batch) waiting for the pump beyond which the oldest tick
#: batches are merged (latest tick per code). A loop starved of CPU falls behind the source; without a
#: bound it would hold every raw burst it has not published (~10 MB of xtquant dicts per whole-market
#: burst of ~5,500 codes) until the process runs out of memory. The bound counts entries, not batches, so
#: a fast feed of small batches (a few subscribed codes, a replay at speed) is never merged: only what
#: would cost memory is. 110,000 entries is 20 whole-market bursts, a minute behind.
MAX_PENDING_TICKS = 110_000
#: seconds after a publish at which the replay ring packs and evicts its older bursts (off the burst's path;
#: until then it holds a little more than its capacity, never less)
RING_TIDY_DELAY = 0.05
#: codes converted per slice of a whole-market burst: the pump yields to the loop between slices, so an
#: order or a request that arrives meanwhile waits for one slice (~2 ms), not the whole market (~10 ms)
CONVERT_SLICE = 1000
#: seeds, resumes and snapshots kept for the clients that ask the same before the next publish (a
#: reconnect storm's askers fall into a few groups: the same interest, the same resume point)
SHARED_REPLIES = 8


#: a burst of plain tick dicts split and converted: (codes, tick dicts, their columns)
Converted = tuple[list[str], list[Mapping[str, Any]], TickColumns]


def _plain_ticks(data: Mapping[str, Any]) -> tuple[list[str], list[Mapping[str, Any]]] | None:
    """``data``'s codes and tick dicts when every value is a non-empty dict (a whole-quote push: the form
    the cache stores and the column converter takes), checked at C speed; None otherwise
    (``subscribe_quote`` gives lists, and a code may come empty)."""
    items = list(data.values())
    if set(map(type, items)) != {dict} or not all(items):
        return None
    return list(data), items


def market_of(code: str) -> str:
    return code.rsplit(".", 1)[-1]


class StreamHub:
    """Fan-out of live updates with sequence numbers, replay and refcounted upstream subscriptions."""

    def __init__(self, source: Any, config: HubConfig | None = None, *, keep_raw: bool = True) -> None:
        self.source = source
        self.config = config or HubConfig()
        self.epoch = uuid.uuid4().hex[:12]
        self.seq = 0
        self._replies: dict[tuple[Any, ...], Any] = {}  # seeds, resumes, snapshots shared: see _shared
        self.ring = ReplayRing(self.config.ring_capacity, on_evict=self._evicted, on_pack=self._packing)
        self._tidy_scheduled = False
        self._inbox: deque[tuple[str, Mapping[str, Any], float, int | None]] = deque()
        #: the one last-value cache; ``keep_raw``: also xtquant's raw tick dicts (REST, the drop-in)
        self.lvc = LastValueCache(keep_raw=keep_raw, pending=lambda: len(self._inbox))
        self.clients: dict[int, ClientState] = {}
        self.registry = UpstreamRegistry(self._subscribe_upstream, self._unsubscribe_upstream)
        self._ids = itertools.count(1)
        self._inbox_lock = threading.Lock()
        self._pending_ticks = 0  # tick entries in the inbox (under the inbox lock)
        #: upstream batches enqueued by callbacks / taken through publish(); the difference is the backlog
        self.batches_received = 0
        self.batches_published = 0
        self._wake_scheduled = False
        self._pumping = False  # the pump is between the batches of one wake-up
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.stats = {"bursts": 0, "updates": 0, "frames": 0, "dropped_clients": 0, "merged_batches": 0}
        #: delivery counters of clients that have left (metrics add the live clients' at scrape time)
        self._retired = {"frames_sent": 0, "updates_sent": 0, "conflations": 0, "updates_skipped": 0}
        #: markets whose ticks already arrive through an always-on whole-market feed (no upstream)
        self.covered_markets: set[str] = set()
        self._unlisten: Callable[[], None] | None = None
        self._resubscribing: set[asyncio.Task[None]] = set()
        #: stale markets as the supervisor last announced them, and since when (epoch ms)
        self.stale_markets: tuple[str, ...] = ()
        self._stale_since_ms: int | None = None
        self.listeners: list[Callable[[list[Update]], None]] = []  # e.g. recorders, metrics
        self._markets: dict[str, str] = {}  # code -> market, memoized (a burst repeats ~5,400 codes)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._pump(), name="qmtgate-hub-pump")
        events = getattr(self.source, "events", None)  # a remote gateway's feed has none
        if events is not None:
            self._unlisten = events.subscribe(self._on_source_event)

    def tick_sink(self, connection: int | None = None) -> Callable[[Mapping[str, Any]], None]:
        """A raw whole-quote callback for an always-on feed (called on the SDK thread); its batches are
        tagged with the source ``connection`` they were subscribed on (the cache's liveness)."""
        return self._pusher(TICK, connection)

    # ------------------------------------------------------------------ source events

    def _on_source_event(self, event: SourceEvent) -> None:
        """A source event (on the loop): tell every client, and after a new connection number re-issue
        the upstream subscriptions (QMT forgets them when it restarts)."""
        if event.kind is SourceEventKind.STALE and event.stale != self.stale_markets:
            self.stale_markets = event.stale
            self._stale_since_ms = int(event.at * 1000)
        self.broadcast(self.status_message(event))
        if event.renews:
            task = asyncio.create_task(self._resubscribe_all(), name="qmtgate-hub-resubscribe")
            self._resubscribing.add(task)
            task.add_done_callback(self._resubscribing.discard)

    async def _resubscribe_all(self) -> None:
        for key, error in await self.registry.resubscribe_all():
            logger.warning("resubscribing %s failed: %s", key, error)

    def status_message(self, event: SourceEvent) -> dict[str, Any]:
        """THE client ``status`` message (docs/streaming.md), one shape for every source event:
        ``event`` (what happened), ``source`` (its state after it; ``epoch`` is the source's connection
        number), ``stale`` (the markets without data in trading hours, empty when none, and since when)
        and ``prev_seq``: the last seq the hub published before the event (updates numbered above it
        arrived after it)."""
        return {
            "type": "status",
            "event": event.kind.value,
            "source": {"connected": event.connected, "epoch": event.connection, "name": event.source},
            "stale": {"markets": list(self.stale_markets), "since_ms": self._stale_since_ms},
            "prev_seq": self.seq,
            "message": event.message,
        }

    def quiet(self, slow_after: float = 1.0) -> bool:
        """Nothing of a burst is on its way: no upstream batch waits for the pump and every client has
        written what it was given. Clients busy for longer than ``slow_after`` seconds are slow ones
        (being conflated, or on a congested link) and do not count: waiting for them would mean never
        being quiet. Used to schedule garbage collections between bursts (``ops.gc_tuning``)."""
        if self._inbox or self._wake_scheduled or self._pumping:
            return False
        limit = time.monotonic() - slow_after
        for client in self.clients.values():
            since = client.outbox.busy_since
            if since is not None and since > limit:
                return False
        return True

    def broadcast(self, message: dict[str, Any]) -> None:
        """Queue a control message (e.g. :meth:`status_message`) for every connected client."""
        for client in list(self.clients.values()):
            client.outbox.put_message(message)

    async def stop(self) -> None:
        self._loop = None  # late SDK callbacks only append from now on
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        for c in list(self.clients.values()):
            c.outbox.close("gateway shutting down")
        self.lvc.stop_packing()
        for task in (self._task, *self._resubscribing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # ------------------------------------------------------------------ upstream

    def _pusher(self, channel: str, connection: int | None = None) -> Callable[[Mapping[str, Any]], None]:
        """The callback handed to xtquant: enqueue and wake the pump, nothing else."""

        def push(data: Mapping[str, Any]) -> None:
            received = time.time()
            with self._inbox_lock:
                self._inbox.append((channel, data, received, connection))
                self.batches_received += 1
                if channel == TICK:
                    self._pending_ticks += len(data)
                    while self._pending_ticks > MAX_PENDING_TICKS and self._merge_oldest_ticks():
                        pass
                loop = self._loop
                if self._wake_scheduled or loop is None:
                    return
                self._wake_scheduled = True
            with contextlib.suppress(RuntimeError):  # the loop closed under a late SDK callback
                loop.call_soon_threadsafe(self._wake.set)

        return push

    def _merge_oldest_ticks(self) -> bool:
        """The inbox is past :data:`MAX_PENDING_TICKS` (the loop has fallen behind the source): fold the
        oldest waiting tick batch into the next one of the same connection, the later tick of a code
        winning, as a whole-quote feed that pushes the latest snapshot per code does itself. False when
        there is nothing to merge. Caller holds the inbox lock."""
        inbox = self._inbox
        pair = next(
            (
                (i, j)
                for i in range(len(inbox))
                if inbox[i][0] == TICK
                for j in range(i + 1, len(inbox))
                if inbox[j][0] == TICK and inbox[j][3] == inbox[i][3]
            ),
            None,
        )
        if pair is None:
            return False
        first, j = pair
        older = inbox[first][1]
        _ch, newer, received, conn = inbox[j]
        merged = dict(older)
        merged.update(newer)
        inbox[j] = (TICK, merged, received, conn)
        del inbox[first]
        self._pending_ticks += len(merged) - len(older) - len(newer)
        self.stats["merged_batches"] += 1
        if self.stats["merged_batches"] in (1, 10, 100) or not self.stats["merged_batches"] % 1000:
            logger.warning(
                "the hub is %d batches behind the source: merged the oldest tick batches (%d so far)",
                len(inbox),
                self.stats["merged_batches"],
            )
        return True

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
                self._pending_ticks = 0
                self._wake_scheduled = False
            self._pumping = True
            for i in range(len(batch)):  # by index: no loop variable keeps the last batch alive
                channel, data, received, connection = batch[i]
                converted = await self._sliced_columns(data) if channel == TICK else None
                self._publish_entry(channel, data, received, connection, converted)
                # No local keeps the burst's dicts past this point: the cache packs them and frees them
                # before the next burst (held here, they would wait for it and double the peak).
                data = converted = None
                self.batches_published += 1
                await asyncio.sleep(0)
            self._pumping = False
            # The raw batches are freed later, not when the next burst wakes the pump; tick batches the cache
            # keeps are its to free (it packs their dicts and frees them a slice at a time): dropped here,
            # their dicts only lose a reference.
            keep = self.lvc.keep_raw
            retire_later([entry for entry in batch if not (keep and entry[0] == TICK)])
            del batch

    async def _sliced_columns(self, data: Mapping[str, Any]) -> Converted | None:
        """A large tick burst's codes, tick dicts and columns, converted :data:`CONVERT_SLICE` codes at a
        time with the loop free in between (the conversion reads no hub state; the burst is applied at
        once afterwards, so readers never see half of it). None: a small burst, or one the scalar path
        must take."""
        plain = _plain_ticks(data) if len(data) > CONVERT_SLICE else None
        if plain is None:  # small, or subscribe_quote's lists: publish decides
            return None
        codes, items = plain
        parts = []
        try:
            for start in range(0, len(codes), CONVERT_SLICE):
                if parts:
                    await asyncio.sleep(0)
                end = start + CONVERT_SLICE
                parts.append(TickColumns.build(codes[start:end], items[start:end]))
        except (TypeError, ValueError):  # not plain numbers: publish converts row by row
            return None
        return codes, items, TickColumns.concat(parts)

    def _publish_entry(
        self,
        channel: str,
        data: Mapping[str, Any],
        received: float,
        connection: int | None,
        converted: Converted | None = None,
    ) -> None:
        try:
            self.publish(channel, data, received, connection, converted)
        except Exception:  # one bad batch must not kill the pump
            logger.exception("dropping a malformed %s batch", channel)

    def publish(
        self,
        channel: str,
        data: Mapping[str, Any],
        received: float | None = None,
        connection: int | None = None,
        converted: Converted | None = None,
    ) -> list[Update]:
        """Sequence one upstream burst, cache it, ring it and fan it out (on the event loop).

        ``connection``: the source connection the batch's subscription was made on (whole-market feed).
        ``converted``: ``data``, a burst of plain tick dicts, already split and converted by the pump
        (:meth:`_sliced_columns`)."""
        updates: list[Update] = []
        if channel == TICK:
            ticks = _plain_ticks(data) if converted is None else converted[:2]
            columns = None if converted is None else converted[2]
            plain: Mapping[str, Any] | None = data  # {code: tick dict} as the cache stores it
            if ticks is not None:
                codes, items = ticks
            else:
                plain = None
                codes, items = [], []
                for code, tick in data.items():
                    item = tick[-1] if isinstance(tick, list) else tick  # subscribe_quote gives lists
                    if item:
                        codes.append(code)
                        items.append(item)
            try:
                if columns is None:
                    columns = TickColumns.build(codes, items)
                burst: TickBurst | None = TickBurst(columns)
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
                burst.attach(updates, TICK, seq0, markets)
            else:
                for code, item in zip(codes, items, strict=True):
                    self.seq += 1
                    updates.append(Update(self.seq, TICK, code, market_of(code), tick_row(code, item)))
            self.lvc.put_ticks(codes, items, updates, received, connection, plain)
        else:
            for code, bars in data.items():
                for bar in bars if isinstance(bars, list) else [bars]:
                    prev = self.lvc.get(channel, code)
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
        if channel != TICK:  # ticks are in the cache already
            self.lvc.put(updates)
        self.ring.extend(updates, tidy=False)
        self.stats["bursts"] += 1
        self.stats["updates"] += len(updates)
        self._fanout(channel, updates, received)
        self._tidy_ring_later()
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

    def _tidy_ring_later(self) -> None:
        """Pack and evict the ring's older bursts once this burst has left: :data:`RING_TIDY_DELAY` after
        it, when the clients' senders and the publishers' task hops (each queued behind whatever is on
        the loop then: a NATS batch reached its socket 10-15 ms after it was encoded while this ran
        right behind the senders) are done."""
        if self._tidy_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published outside a loop (tests, tools)
            self.ring.tidy()
            return
        self._tidy_scheduled = True
        loop.call_later(RING_TIDY_DELAY, self._tidy_ring)

    def _tidy_ring(self) -> None:
        self._tidy_scheduled = False
        self.ring.tidy()

    def _fanout(self, channel: str, updates: list[Update], received: float | None) -> None:
        """Hand each interested client its part of one burst (:func:`qmtgate.hub.fanout.fan_out`)."""
        frames, dropped = fan_out(self.clients.values(), channel, updates, received)
        self.stats["frames"] += frames
        self.stats["dropped_clients"] += dropped

    def _packing(self, updates: Sequence[Update]) -> None:
        """A tick burst is about to be packed (it left the ring's newest few): cache entries still pointing
        into it get a row of their own now, so snapshots never read a packed burst."""
        self.lvc.detach(updates)

    def _evicted(self, updates: Sequence[Update]) -> None:
        """Updates left the replay ring: cache entries still pointing into their burst get a row of their
        own, so the cache does not keep a whole ~5,400-update burst (its columns, Arrow table and
        updates) alive for one rarely-trading code, long after the ring dropped it. A burst that has
        left entirely is released (:meth:`TickBurst.release`), so reference counting frees it."""
        if isinstance(updates, PackedSegment):  # its cache entries were detached when it was packed
            if updates.stop == len(updates.burst):  # all of it has left
                updates.burst.release()
            return
        if not updates or updates[0].burst is None:
            return  # bar updates own their rows
        self.lvc.detach(updates)
        last = updates[-1]
        burst = last.burst
        if burst is not None and burst.updates and burst.updates[-1] is last:  # all of it has left
            burst.release()

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
        client.outbox.discard()
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
        return self.lvc.seeds(channel, new_codes, markets)

    def deliver_seeds(self, client: ClientState, channel: str, seeds: list[Update]) -> None:
        """Queue a new subscription's current values (what :meth:`subscribe` returned) as one snapshot
        frame, shared (:meth:`_shared`) with the clients given the same updates: a reconnect storm of
        whole-market clients encodes its seeds once per wire format."""
        if seeds:
            frames = self._shared(
                client,
                ("seeds", channel, tuple(u.seq for u in seeds)),  # seqs name the updates within an epoch
                lambda: [Frame(channel, seeds[0].seq, seeds[-1].seq, seeds, conflated=True, replay=True)],
            )
            self.deliver(client, frames)

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
        client must start from a snapshot (another epoch, or fell out of the replay window); see
        :func:`qmtgate.hub.replay.resume_frames`."""
        if epoch != self.epoch or since > self.seq:  # a seq never published: start from a snapshot
            return None
        return self._shared(
            client, ("resume", since), lambda: resume_frames(self.ring, client, since, self.config)
        )

    def deliver(self, client: ClientState, frames: Sequence[Frame], since: int | None = None) -> None:
        """Queue frames made for this client alone (seeds, a replay, a snapshot) in order, each with its
        ``prev_seq``. ``since``: a resume's starting point; the client holds everything before it, so the
        replay (and what follows) continues from there on every channel."""
        sent_to = client.sent_to
        if since is not None:
            for channel in client.interests:
                if sent_to.get(channel, since - 1) < since:
                    sent_to[channel] = since
        for frame in frames:
            frame.prev_seq = sent_to.get(frame.channel)
            client.queue(frame)

    def snapshot(self, client: ClientState) -> list[Frame]:
        """The current value of everything the client is interested in (one frame per channel)."""
        return self._shared(client, ("snapshot",), lambda: snapshot_frames(self.lvc, client))

    def _shared(self, client: ClientState, what: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """``make()``'s frames for ``client``, shared with every client that asks the same (``what``) with
        the same interests and the same history before the next publish.

        After a restart or a network blip every client reconnects at once and subscribes (seeds), asks
        for a snapshot (a resync) or resumes; the same answer built and encoded once per client cost the
        loop ~15-35 ms per whole-market client. Shared frames are encoded once per wire format (``api.stream_codec``),
        and :meth:`deliver` gives each client the same ``prev_seq`` chain, as their histories are equal."""
        interests = tuple(
            sorted((ch, frozenset(i.codes), frozenset(i.markets)) for ch, i in client.interests.items())
        )
        key = (self.epoch, self.seq, what, interests, tuple(sorted(client.sent_to.items())))
        memo = self._replies
        if key in memo:
            return memo[key]
        out = memo[key] = make()
        while len(memo) > SHARED_REPLIES:
            del memo[next(iter(memo))]
        return out

    # ------------------------------------------------------------------ for supervisors (public API)

    def add_listener(self, fn: Callable[[list[Update]], None]) -> None:
        """Call ``fn(updates)`` for every published batch, on the loop, inside ``publish``: it must be
        quick and must not block."""
        self.listeners.append(fn)

    def remove_listener(self, fn: Callable[[list[Update]], None]) -> None:
        with contextlib.suppress(ValueError):
            self.listeners.remove(fn)

    def subscribed_markets(self) -> set[str]:
        """Markets whose ticks should be flowing: the whole-market feed's and whole markets held upstream."""
        markets = set(self.covered_markets)
        markets.update(what for (_channel, kind, what) in self.registry.active() if kind == "market")
        return markets

    def streamed_codes(self, limit: int) -> list[tuple[str, str]]:
        """``(channel, code)`` of the codes clients subscribed to one by one (at most ``limit``)."""
        watched: dict[tuple[str, str], None] = {}
        for client in list(self.clients.values()):
            for channel, interest in client.interests.items():
                for code in interest.codes:
                    watched[(channel, code)] = None
                    if len(watched) >= limit:
                        return list(watched)
        return list(watched)

    async def retry_failed_upstream(self) -> int:
        """Re-issue the upstream subscriptions whose last resubscribe failed; returns how many were tried."""
        failed = self.registry.failed()
        if failed:
            for key, error in await self.registry.resubscribe(failed):
                logger.warning("resubscribing %s failed again: %s", key, error)
        return len(failed)

    async def renew_codes(self, codes: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """Renew the upstream subscriptions of ``(channel, code)`` that went silent (cancel, subscribe
        again); returns those that had one of their own (a code covered by a market's has none)."""
        held = [(channel, code) for channel, code in codes if self.registry.refs((channel, "code", code)) > 0]
        if held:
            keys: list[Key] = [(channel, "code", code) for channel, code in held]
            for key, error in await self.registry.resubscribe(keys, cancel_old=True):
                logger.warning("renewing %s failed: %s", key, error)
        return held

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
