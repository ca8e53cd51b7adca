"""The one last-value cache: the latest update per (channel, code), and the latest raw tick per code.

Why one: the stream hub needs the latest :class:`~qmtgate.hub.ring.Update` per code to seed and resync
clients; REST snapshots need normalized rows; the xtquant drop-in's ``get_full_tick`` and the qmt-bridge
compat stream need xtquant's own dicts. All three are the same ticks. They used to be held twice (the
hub's ``lvc`` and a separate quote cache), fed through two inboxes with two locks and two pumps and
converted twice. Now the hub's pump (:meth:`~qmtgate.hub.stream.StreamHub.publish`, on the event loop)
writes each burst here once, right after converting it once (``TickColumns.build``):

* ``updates``: ``(channel, code) -> Update``; a tick update's row is made from its burst's columns on
  first use (:class:`~qmtgate.hub.ring.TickBurst`) and kept, so a snapshot reads the conversion the
  stream already did, never converts again;
* ``raw``: ``code -> xtquant tick dict`` as the SDK delivered it (:class:`~qmtgate.hub.raw_ticks.RawTicks`:
  the newest by reference, a C-speed dict update; packed into columns, and the dicts freed a slice at a
  time, once the burst's frames are out).

Every write happens inside one synchronous call on the loop, so a reader on the loop never sees half a
burst; :attr:`LastValueCache.version` moves with every tick burst, so an answer encoded from the cache
(``api.burst_answers``) is reused only while the cache still holds exactly what it showed.

Liveness: the whole-market feed (:mod:`qmtgate.hub.feed`) tells the cache which source connection it
subscribed under (:meth:`expect`); its pushes carry that connection number, and the cache is live once
data of the expected connection has been applied while the source is connected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from qmtgate.codes import classify
from qmtgate.hub.clients import Interest
from qmtgate.hub.raw_ticks import RawTicks
from qmtgate.hub.ring import Update

TICK = "tick"

Key = tuple[str, str]  # (channel, code)


@dataclass(frozen=True)
class CacheStats:
    live: bool
    codes: int
    pushes: int  # tick batches applied
    applied: int  # code updates applied
    conflated: int  # kept for the health schema: one cache applies every batch, nothing is conflated
    pending: int  # upstream batches waiting for the hub's pump
    first_push_ms: int | None
    last_push_ms: int | None
    connection: int | None  # the source connection the cached data belongs to

    def to_dict(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "codes": self.codes,
            "pushes": self.pushes,
            "applied": self.applied,
            "conflated": self.conflated,
            "pending": self.pending,
            "first_push_ms": self.first_push_ms,
            "last_push_ms": self.last_push_ms,
        }


#: How long raw batches the cache does not keep (bars; every batch of a hub without raw ticks) are held
#: after use before they are freed (see :func:`retire_later`; the cache frees its own while packing).
RETIRE_SECONDS = 1.0
#: ... and how many are freed at a time, with the loop's other work (and the process's other threads)
#: let in between: ~1-2 ms each.
RETIRE_SLICE = 500
#: The pause between two slices: the loop waits in its selector meanwhile, without the interpreter lock,
#: long enough for a thread that waits for it (the trading lane, the SDK's push thread) to wake and take
#: it. A pause of one loop pass is not: the loop takes the lock back first, and the waiter's
#: switch-interval clock (5 ms) starts over. (Not used between the slices of a burst's conversion: there
#: the simulator's publisher thread took the turns, and the frames went out 5-12 ms later at p50.)
RETIRE_PAUSE_S = 0.0002


def retire_later(objects: list[Any]) -> None:
    """Free ``objects`` (by emptying the list) a moment from now, on the running loop, a slice at a time.

    A whole-market burst from xtquant is ~5,400 dicts with their ladder lists, ~250,000 objects; whoever
    drops the last reference pays ~10-20 ms to free them. The cache and the hub's pump would drop them
    exactly when the next burst arrives, i.e. on the path of its frames. Deferred by
    :data:`RETIRE_SECONDS` (bursts come every 3 s) they are freed while the loop is idle; in slices of
    :data:`RETIRE_SLICE`, because freeing is one C call that never lets go of the interpreter lock: freed
    at once, it held every thread of the gateway (an order on its way through the trading lane too) for
    the whole 10-20 ms, past the interpreter's switch interval.
    """
    if not objects:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no running loop (a test applying by hand): free now
        objects.clear()
        return
    loop.call_later(RETIRE_SECONDS, _retire_slice, loop, objects)


def _retire_slice(loop: asyncio.AbstractEventLoop, objects: list[Any]) -> None:
    del objects[-RETIRE_SLICE:]
    if objects:
        loop.call_later(RETIRE_PAUSE_S, _retire_slice, loop, objects)


class LastValueCache:
    """Latest values, written by the hub's pump on the event loop, read on the loop."""

    def __init__(self, *, keep_raw: bool = True, pending: Callable[[], int] = lambda: 0) -> None:
        #: ``(channel, code) -> Update``: seeds, resyncs, staleness, Hikyuu's full brackets, REST rows
        self.updates: dict[Key, Update] = {}
        #: ``code -> xtquant tick dict`` (off for a hub nobody asks raw ticks of: ``qmtgate record``)
        self.keep_raw = keep_raw
        self._raw = RawTicks()
        self._packing: asyncio.TimerHandle | None = None
        self._by_market: dict[str, dict[str, None]] = {}  # tick codes per market, in arrival order
        self._known: set[str] = set()  # every tick code of _by_market
        self._pending = pending
        self._expected: int | None = None
        self._connection: int | None = None
        self._connected: Callable[[], bool] = lambda: True
        self.pushes = 0
        self.applied = 0
        self.first_push_ms: int | None = None
        self.last_push_ms: int | None = None
        #: moves with every tick burst written: an answer built under one version shows exactly that data
        self.version = 0

    # -- liveness --------------------------------------------------------------------------------------

    def expect(self, connection: int, connected: Callable[[], bool] | None = None) -> None:
        """A whole-market subscription was made on source connection ``connection``: the cache is live once
        a push of it has been applied (and while ``connected()``)."""
        self._expected = connection
        if connected is not None:
            self._connected = connected

    def is_live(self) -> bool:
        """True when the cache holds data of the current subscription and the source is connected."""
        return (
            self._expected is not None
            and self._connection == self._expected
            and bool(self.updates)
            and self._connected()
        )

    # -- writers (the hub's pump, event loop) ----------------------------------------------------------

    def put_ticks(
        self,
        codes: Sequence[str],
        items: Sequence[Mapping[str, Any]],
        updates: Sequence[Update],
        received: float | None,
        connection: int | None,
        raw: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """One tick burst: ``updates[i]`` is ``codes[i]``'s update made from the raw ``items[i]``; ``raw``:
        the SDK's own ``{code: tick}`` dict when it is exactly ``zip(codes, items)`` (saves building one).

        Dict and set operations at C speed: a whole-market burst is ~5,400 codes every 3 s on the same
        loop as the fan-out; only codes new to the cache are visited one by one."""
        self.updates.update(zip(zip(repeat(TICK), codes, strict=False), updates, strict=True))
        if not self._known.issuperset(codes):  # in push order: whole-market listings keep the source's order
            self._add_codes(codes)
        if self.keep_raw:
            self._put_raw(raw if raw is not None else dict(zip(codes, items, strict=True)))
        self.pushes += 1
        self.applied += len(codes)
        self.version += 1
        if received is not None:
            ms = int(received * 1000)
            self.last_push_ms = ms
            if self.first_push_ms is None:
                self.first_push_ms = ms
        if connection is not None and codes:
            self._connection = connection if self._connection is None else max(connection, self._connection)

    def _add_codes(self, codes: Iterable[str]) -> None:
        by_market, known = self._by_market, self._known
        for code in codes:
            if code not in known:
                known.add(code)
                by_market.setdefault(code.rpartition(".")[2], {})[code] = None

    def put(self, updates: Iterable[Update]) -> None:
        """Updates that own their rows (bars; ticks the column converter could not take)."""
        for u in updates:
            self.updates[(u.channel, u.code)] = u
            if u.channel == TICK:
                self.version += 1
                self._add_codes((u.code,))

    def put_raw(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        """Raw ticks of a batch that went through the row-by-row converter."""
        if self.keep_raw and data:
            self._put_raw(data)

    def _put_raw(self, batch: Mapping[str, Mapping[str, Any]]) -> None:
        """Keep ``batch``'s dicts; on a running loop, pack them once their frames are out (the replaced
        ones are freed by the same slices). Without one (a cache written by hand) they stay as they are."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._raw.put(batch, 0.0, track=False)
            return
        self._raw.put(batch, time.monotonic())
        if self._packing is None:
            self._schedule_packing(loop)

    def _schedule_packing(self, loop: asyncio.AbstractEventLoop) -> None:
        due = self._raw.next_due()
        if due is not None:
            self._packing = loop.call_later(max(0.0, due - time.monotonic()), self._pack_step, loop)

    def _pack_step(self, loop: asyncio.AbstractEventLoop) -> None:
        """One slice of packing; the next one after a pause in the selector (as :func:`_retire_slice`)."""
        self._packing = None
        now = time.monotonic()
        self._raw.pack_slice(now)
        if self._raw.due(now):
            self._packing = loop.call_later(RETIRE_PAUSE_S, self._pack_step, loop)
        else:
            self._schedule_packing(loop)

    def stop_packing(self) -> None:
        """Cancel the packing timer (the loop is closing); what was not packed stays as dicts."""
        if self._packing is not None:
            self._packing.cancel()
            self._packing = None

    def detach(self, updates: Sequence[Update]) -> None:
        """Updates left the replay ring: entries still pointing into their burst get a row of their own,
        so the cache does not keep a whole ~5,400-update burst alive for one rarely-trading code."""
        entries = self.updates
        get = entries.get
        for u in updates:
            key = (u.channel, u.code)
            if get(key) is u:
                entries[key] = Update(u.seq, u.channel, u.code, u.market, u.row)

    # -- readers (event loop) --------------------------------------------------------------------------

    def get(self, channel: str, code: str) -> Update | None:
        return self.updates.get((channel, code))

    def latest(self, channel: str = TICK) -> Iterator[Update]:
        """Every latest update of ``channel`` (a snapshot of the dict: safe across awaits)."""
        return (u for (ch, _code), u in list(self.updates.items()) if ch == channel)

    def seeds(self, channel: str, codes: Iterable[str], markets: Iterable[str]) -> list[Update]:
        """Latest updates of ``codes`` and of whole ``markets`` on ``channel``, in seq order."""
        codes, markets = set(codes), set(markets)
        found = [u for u in self.latest(channel) if u.code in codes or u.market in markets]
        return sorted(found, key=_seq)

    def matching(self, channel: str, interest: Interest) -> list[Update]:
        """Latest updates of ``channel`` that ``interest`` covers, in seq order (a resync's snapshot)."""
        return sorted((u for u in self.latest(channel) if interest.matches(u)), key=_seq)

    def raw_tick(self, code: str) -> Mapping[str, Any] | None:
        """The code's latest xtquant tick dict (do not modify it: while fresh it is the SDK's own object)."""
        return self._raw.get(code)

    def raw_value(self, code: str, key: str) -> Any:
        """One field of the code's latest xtquant tick (None without one), without making its dict."""
        return self._raw.value(code, key)

    def raw(self, codes: Iterable[str]) -> dict[str, Mapping[str, Any]]:
        """``{code: xtquant tick dict}`` for the ``codes`` with a tick, in their order."""
        return self._raw.many(codes)

    def has_raw(self, codes: Iterable[str]) -> set[str]:
        """Which of ``codes`` have a tick (no dicts made: a membership check)."""
        return self._raw.known(codes)

    def rows(self, codes: Iterable[str]) -> tuple[list[dict[str, Any]], list[str]]:
        """Normalized tick rows for ``codes`` (in order) and the codes the cache has no tick of.

        The rows are the stream's: made from the burst's columns on first use, once per burst however
        often they are read (past a sixteenth of a burst, all its rows in one column-wise pass). They are
        shared: do not modify them."""
        get = self.updates.get
        found: list[dict[str, Any]] = []
        missing: list[str] = []
        for code in codes:
            u = get((TICK, code))
            if u is None:
                missing.append(code)
            else:
                found.append(u.row)
        return found, missing

    def codes(self, markets: Sequence[str] | None = None, kinds: Sequence[str] | None = None) -> list[str]:
        """Cached tick codes of ``markets`` (all when None), filtered to instrument ``kinds`` (all when None)."""
        selected: list[str] = []
        for market in markets or sorted(self._by_market):
            selected.extend(self._by_market.get(market, ()))
        if kinds:
            wanted = set(kinds)
            selected = [code for code in selected if classify(code) in wanted]
        return selected

    def stats(self) -> CacheStats:
        return CacheStats(
            live=self.is_live(),
            codes=len(self._known),
            pushes=self.pushes,
            applied=self.applied,
            conflated=0,
            pending=self._pending(),
            first_push_ms=self.first_push_ms,
            last_push_ms=self.last_push_ms,
            connection=self._connection,
        )

    def __len__(self) -> int:
        return len(self.updates)

    def __contains__(self, key: object) -> bool:
        return key in self.updates


def _seq(u: Update) -> int:
    return u.seq
