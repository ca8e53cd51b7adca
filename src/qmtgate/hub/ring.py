"""A bounded replay ring of published updates, so a reconnecting client can resume from its last seq.

Every update the hub publishes gets a sequence number, monotonic within one gateway run (an
``epoch``). The ring keeps the most recent ``capacity`` updates; ``since(seq)`` returns everything after
``seq`` while it is still in the window, or None when the client fell out of it (it then gets a fresh
snapshot instead, never a silent gap).
"""

from __future__ import annotations

import itertools
import operator
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence, Set
from typing import Any

import numpy as np
import pyarrow as pa

from qmtgate.hub.packed import PackedColumns, unpacked
from qmtgate.source.convert import TickColumns
from qmtgate.source.convert import arrays as arrow

#: the newest tick bursts the ring keeps as built; older ones are packed (:meth:`TickBurst.pack`). Live
#: frames of a client that keeps up reference only these; a lagging client's older frames still work
#: (their rows and tables come from the packed columns).
HOT_BURSTS = 2


class Update:
    """One published change: the latest row of ``code`` on ``channel`` ('tick' or a bar period).

    Tick updates of one burst share a :class:`~qmtgate.source.convert.TickColumns` (``burst``); their
    ``row`` dicts are made on first use (see :class:`TickBurst`). Binary (Arrow) clients and the recorder
    never need them, so a whole-market burst reaches the wire without ~5,400 dicts being built first.
    """

    __slots__ = ("_row", "burst", "channel", "code", "index", "market", "seq")

    def __init__(
        self,
        seq: int,
        channel: str,
        code: str,
        market: str,
        row: dict[str, Any] | None = None,
        burst: TickBurst | None = None,
        index: int = -1,
    ) -> None:  # positional on the hot path: the hub makes ~5,400 per burst with map()
        if row is None and burst is None:
            raise ValueError("an update needs a row or a burst")
        self.seq = seq
        self.channel = channel
        self.code = code
        self.market = market
        self._row = row
        self.burst = burst
        self.index = index  # position in the burst

    @property
    def row(self) -> dict[str, Any]:
        if self._row is None:
            assert self.burst is not None
            self.burst.materialize(self)
        return self._row  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"Update(seq={self.seq}, channel={self.channel!r}, code={self.code!r})"


class TickBurst:
    """The updates of one upstream tick burst and its columns (rows built lazily, once).

    A client of a few codes (one market's 270 BJ codes, a watch list) asks for a few rows of each
    ~5,400-code burst: those are built one by one. Once a burst has been asked for more than
    :attr:`BULK_SHARE` of its rows (a JSON whole-market client, the recorder), the rest are built in
    one column-wise pass, which is ~3x cheaper per row. Rows never asked for are never built,
    so the replay ring holds columns, not ~5,400 dicts per burst.
    """

    __slots__ = (
        "__weakref__",
        "_by_market",
        "_columns",
        "_markets",
        "_positions",
        "asked",
        "channel",
        "code_markets",
        "complete",
        "first_seq",
        "released",
        "updates",
    )

    BULK_SHARE = 1 / 16  # BJ's ~270 codes of a ~5,400-code burst stay row by row

    def __init__(self, columns: TickColumns) -> None:
        self._columns: TickColumns | PackedColumns = columns
        self.updates: list[Update] = []
        #: what :meth:`pack` needs to make the updates again: the channel, the first seq and each code's
        #: market (set with :meth:`attach`)
        self.channel = "tick"
        self.first_seq = -1
        self.code_markets: Sequence[str] = ()
        self.asked = 0
        self.complete = False
        self.released = False
        self._by_market: dict[str, list[Update]] | None = None
        self._markets: set[str] | None = None
        self._positions: dict[str, int] | None = None

    def attach(
        self, updates: list[Update], channel: str, first_seq: int, code_markets: Sequence[str]
    ) -> None:
        """The burst's updates (seqs ``first_seq`` onwards, one per code in order) and each code's market."""
        self.updates = updates
        self.channel = channel
        self.first_seq = first_seq
        self.code_markets = code_markets

    @property
    def columns(self) -> TickColumns:
        columns = self._columns
        return columns if isinstance(columns, TickColumns) else unpacked(columns)

    @property
    def packed(self) -> bool:
        return isinstance(self._columns, PackedColumns)

    def pack(self, codes: Sequence[str] | None = None, code_markets: Sequence[str] | None = None) -> None:
        """Keep the columns compressed and drop the per-update objects (the ring's cold bursts): the
        updates are made again on demand (:meth:`all_updates`, :class:`PackedSegment`). Updates still held
        elsewhere (a lagging client's frames) keep working: their rows and tables come from the packed
        columns. ``codes``, ``code_markets``: equal lists to share (a whole market repeats them every burst)."""
        if self.packed or not self.updates or self.first_seq < 0:
            return
        columns = self._columns
        assert isinstance(columns, TickColumns)
        self._columns = PackedColumns.pack(columns, codes)
        if code_markets is not None:
            self.code_markets = code_markets
        self.updates = []
        self._by_market = None
        self._positions = None
        self.complete = False  # the updates made from now on have no rows yet
        self.released = True  # rows are built one by one from now on (see materialize)

    def all_updates(self) -> list[Update]:
        """Every update of the burst: the published ones, or for a packed burst equal new ones."""
        if not self.packed:
            return self.updates
        seq0, channel, markets = self.first_seq, self.channel, self.code_markets
        codes = self._columns.codes
        n = len(codes)
        return list(
            map(Update, range(seq0, seq0 + n), itertools.repeat(channel), codes, markets,
                itertools.repeat(None), itertools.repeat(self), range(n))
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self._columns.codes)

    def by_market(self, everything: list[Update] | None = None) -> dict[str, list[Update]]:
        """The burst's updates per market, in seq order (built once, shared by every client that asks;
        for a packed burst built per call from ``everything``, its :meth:`all_updates`: only a resume asks)."""
        if self._by_market is not None:
            return self._by_market
        groups: dict[str, list[Update]] = {}
        for u in self.all_updates() if everything is None else everything:
            group = groups.get(u.market)
            if group is None:
                group = groups[u.market] = []
            group.append(u)
        if not self.packed:
            self._by_market = groups
        return groups

    def select(self, codes: Set[str], markets: Set[str]) -> Sequence[Update]:
        """The updates of ``codes`` or of whole ``markets``, in seq order: what one client wants of this
        burst, at the cost of its answer (a market's list is built once and shared; a code is one dict
        lookup). The result may be a shared list: do not modify it."""
        everything = self.all_updates()
        groups = self.by_market(everything)
        if markets and all(m in markets for m in groups):
            return everything
        parts = [groups[m] for m in markets if m in groups]
        if codes:
            positions = self._positions
            if positions is None:
                positions = {u.code: u.index for u in everything}
                if not self.packed:
                    self._positions = positions
            get = positions.get
            extra = sorted(
                (
                    everything[i]
                    for i in map(get, codes)
                    if i is not None and everything[i].market not in markets
                ),
                key=_seq,
            )
            if extra:
                parts.append(extra)
        if len(parts) <= 1:
            return parts[0] if parts else []
        return sorted(itertools.chain.from_iterable(parts), key=_seq)

    def materialize(self, update: Update) -> None:
        """Build ``update``'s row; past :attr:`BULK_SHARE` of the burst, every row in one pass."""
        if self.complete:
            return
        self.asked += 1
        if self.released or self.asked <= self.BULK_SHARE * len(self.updates):
            update._row = self.columns.row(update.index)
            return
        for u, row in zip(self.updates, self.columns.rows(), strict=True):
            if u._row is None:
                u._row = row
        self.complete = True

    def release(self) -> None:
        """The burst has left the replay ring: drop its references to its updates.

        An update refers to its burst and the burst to its updates: a reference cycle, which only the
        cyclic GC frees. With a whole market every 3 s and full collections rare (the gateway raises
        the GC thresholds and freezes its start-up objects), dead bursts of several MB each used to pile
        up between collections and set the process's memory high-water mark. Released, a burst is freed
        by reference counting as soon as the last update still held elsewhere (a frame being sent, a
        cache entry) lets go; those updates keep working (rows are then built one by one)."""
        self.released = True
        self.updates = []
        self._by_market = None
        self._positions = None


def _seq(u: Update) -> int:
    return u.seq


_market = operator.attrgetter("market")


def markets_of(updates: Sequence[Update]) -> set[str]:
    """The markets ``updates`` touch. For a whole burst it is computed once and shared by everyone who
    asks on the tick path (the fan-out, the activity and staleness listeners): do not modify it."""
    burst = updates[0].burst if updates else None
    if burst is None or updates is not burst.updates:
        return set(map(_market, updates))
    if burst._markets is None:
        burst._markets = set(map(_market, updates))
    return burst._markets


def burst_table(updates: Sequence[Update]) -> pa.Table | None:
    """The updates as an Arrow table straight from their bursts' columns (no row dicts), or None when
    some do not come from a tick burst (bar updates, rows detached from their burst).

    Columns as :meth:`TickColumns.table`; a subset of a burst (one market, a watch list, the
    recorder's codes) is taken by position, in the updates' order; updates from several bursts (a
    replay, a conflated frame) are taken burst by burst and concatenated."""
    burst = updates[0].burst if updates else None
    if burst is None:
        return None
    if updates is burst.updates:
        return burst.columns.table()
    parts: list[pa.Table] = []
    for owner, group in itertools.groupby(updates, key=_burst_of):  # runs of one burst
        if owner is None:
            return None
        run = list(group)
        if len(run) == len(owner.updates):  # a burst's codes are unique: the run is all of it
            parts.append(owner.columns.table())
        else:
            parts.append(
                owner.columns.table().take(
                    arrow.numeric(np.fromiter((u.index for u in run), np.int64, len(run)))
                )
            )
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


def _burst_of(u: Update) -> TickBurst | None:
    return u.burst


class PackedSegment(Sequence[Update]):
    """The ring's entry for a packed burst's updates ``start:stop``: updates made on demand, equal (seq,
    code, market, burst position) to the ones published, so a resume reads it like any segment."""

    __slots__ = ("burst", "start", "stop")

    def __init__(self, burst: TickBurst, start: int = 0, stop: int | None = None) -> None:
        self.burst = burst
        self.start = start
        self.stop = len(burst) if stop is None else stop

    def __len__(self) -> int:
        return self.stop - self.start

    def _make(self, i: int) -> Update:
        b = self.burst
        return Update(b.first_seq + i, b.channel, b._columns.codes[i], b.code_markets[i], None, b, i)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                raise ValueError("a packed segment slices with step 1 only")
            return PackedSegment(self.burst, self.start + start, self.start + max(start, stop))
        n = len(self)
        if key < 0:
            key += n
        if not 0 <= key < n:
            raise IndexError(key)
        return self._make(self.start + key)

    def __iter__(self) -> Iterator[Update]:
        everything = self.burst.all_updates()
        return iter(everything[self.start : self.stop])


class ReplayRing:
    """The last ``capacity`` updates in seq order, kept as the segments they were published in.

    A segment is one publish (a tick burst's updates, or one batch of bar updates). Keeping them whole
    lets a resume select by burst and market (:meth:`TickBurst.select`) instead of testing every one of
    up to ``capacity`` updates in Python on the event loop, and lets the hub learn which updates leave the
    window (``on_evict``) so the last-value cache can let go of old bursts.
    """

    def __init__(
        self,
        capacity: int,
        on_evict: Callable[[Sequence[Update]], None] | None = None,
        on_pack: Callable[[Sequence[Update]], None] | None = None,
        hot_bursts: int = HOT_BURSTS,
    ) -> None:
        if capacity <= 0:
            raise ValueError("ring capacity must be positive")
        self.capacity = capacity
        self.on_evict = on_evict
        self.on_pack = on_pack
        self.hot_bursts = hot_bursts
        self._segments: deque[Sequence[Update]] = deque()
        self._size = 0
        self._tick_segments: deque[list[Update]] = deque()  # whole tick bursts not packed yet, oldest first
        #: the last packed burst's codes and markets, shared by the next ones with equal lists
        self._last_codes: list[str] = []
        self._last_markets: list[str] = []

    def extend(self, updates: Iterable[Update], *, tidy: bool = True) -> None:
        """Append one published segment (its seqs continue the ring's), then :meth:`tidy` unless told not
        to: the hub appends a burst before fanning it out and tidies after the clients' sends have begun,
        since packing and evicting concern older bursts (~5 ms of a whole-market burst's path)."""
        segment = updates if isinstance(updates, list) else list(updates)
        if not segment:
            return
        self._segments.append(segment)
        self._size += len(segment)
        burst = segment[0].burst
        if burst is not None and segment is burst.updates and burst.first_seq >= 0:
            self._tick_segments.append(segment)
        if tidy:
            self.tidy()

    def tidy(self) -> None:
        """Pack the tick bursts no longer among the newest :data:`HOT_BURSTS`; evict the oldest updates
        beyond capacity. Until then the ring holds a little more than it must (never less)."""
        while len(self._tick_segments) > self.hot_bursts:
            self._pack(self._tick_segments.popleft())
        while self._size > self.capacity:
            oldest = self._segments[0]
            excess = self._size - self.capacity
            if excess >= len(oldest):
                gone = self._segments.popleft()
            else:  # keep the newer part of the oldest segment
                gone, self._segments[0] = oldest[:excess], oldest[excess:]
            self._size -= len(gone)
            if self.on_evict is not None:
                self.on_evict(gone)

    def _pack(self, segment: list[Update]) -> None:
        """Replace a whole tick burst's segment by its packed form, if it is still in the ring whole."""
        for i in range(len(self._segments) - 1, -1, -1):  # it is near the newest end
            if self._segments[i] is segment:
                break
        else:
            return  # evicted (or cut) meanwhile: nothing to keep
        burst = segment[0].burst
        assert burst is not None
        if self.on_pack is not None:
            self.on_pack(segment)
        codes, markets = burst._columns.codes, burst.code_markets
        if codes != self._last_codes:
            self._last_codes = list(codes)
        if markets != self._last_markets:
            self._last_markets = list(markets)
        burst.pack(self._last_codes, self._last_markets)
        self._segments[i] = PackedSegment(burst)

    @property
    def first_seq(self) -> int | None:
        return self._segments[0][0].seq if self._segments else None

    @property
    def last_seq(self) -> int | None:
        return self._segments[-1][-1].seq if self._segments else None

    def __len__(self) -> int:
        return self._size

    def segments_since(self, seq: int) -> list[Sequence[Update]] | None:
        """The segments holding the updates after ``seq`` (the first one cut at ``seq``), oldest first;
        None if some of those updates were evicted. Costs the number of segments returned."""
        if not self._segments:
            return [] if seq >= 0 else None
        first, last = self.first_seq, self.last_seq
        assert first is not None and last is not None
        if seq >= last:
            return []
        if seq < first - 1:
            return None
        out: list[Sequence[Update]] = []
        for segment in reversed(self._segments):  # a resume is usually recent: walk from the newest
            if segment[0].seq > seq:
                out.append(segment)
                continue
            out.append(segment[seq - segment[0].seq + 1 :])  # seqs are contiguous within a segment
            break
        out.reverse()
        return [s for s in out if s]

    def since(self, seq: int) -> list[Update] | None:
        """Updates with ``seq`` greater than the given one; None if some of them were evicted."""
        segments = self.segments_since(seq)
        if segments is None:
            return None
        return list(itertools.chain.from_iterable(segments))
