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
from collections.abc import Callable, Iterable, Sequence, Set
from typing import Any

import pyarrow as pa

from qmtgate.source.convert import TickColumns


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
        "_markets",
        "_positions",
        "asked",
        "columns",
        "complete",
        "released",
        "updates",
    )

    BULK_SHARE = 1 / 16  # BJ's ~270 codes of a ~5,400-code burst stay row by row

    def __init__(self, columns: TickColumns) -> None:
        self.columns = columns
        self.updates: list[Update] = []
        self.asked = 0
        self.complete = False
        self.released = False
        self._by_market: dict[str, list[Update]] | None = None
        self._markets: set[str] | None = None
        self._positions: dict[str, int] | None = None

    def by_market(self) -> dict[str, list[Update]]:
        """The burst's updates per market, in seq order (built once, shared by every client that asks)."""
        if self._by_market is None:
            groups: dict[str, list[Update]] = {}
            for u in self.updates:
                group = groups.get(u.market)
                if group is None:
                    group = groups[u.market] = []
                group.append(u)
            self._by_market = groups
        return self._by_market

    def select(self, codes: Set[str], markets: Set[str]) -> Sequence[Update]:
        """The updates of ``codes`` or of whole ``markets``, in seq order: what one client wants of this
        burst, at the cost of its answer (a market's list is built once and shared; a code is one dict
        lookup). The result may be a shared list: do not modify it."""
        groups = self.by_market()
        if markets and all(m in markets for m in groups):
            return self.updates
        parts = [groups[m] for m in markets if m in groups]
        if codes:
            if self._positions is None:
                self._positions = {u.code: u.index for u in self.updates}
            get = self._positions.get
            extra = sorted(
                (
                    self.updates[i]
                    for i in map(get, codes)
                    if i is not None and self.updates[i].market not in markets
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
            parts.append(owner.columns.table().take(pa.array([u.index for u in run], pa.int64())))
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


def _burst_of(u: Update) -> TickBurst | None:
    return u.burst


class ReplayRing:
    """The last ``capacity`` updates in seq order, kept as the segments they were published in.

    A segment is one publish (a tick burst's updates, or one batch of bar updates). Keeping them whole
    lets a resume select by burst and market (:meth:`TickBurst.select`) instead of testing every one of
    up to ``capacity`` updates in Python on the event loop, and lets the hub learn which updates leave the
    window (``on_evict``) so the last-value cache can let go of old bursts.
    """

    def __init__(self, capacity: int, on_evict: Callable[[Sequence[Update]], None] | None = None) -> None:
        if capacity <= 0:
            raise ValueError("ring capacity must be positive")
        self.capacity = capacity
        self.on_evict = on_evict
        self._segments: deque[Sequence[Update]] = deque()
        self._size = 0

    def extend(self, updates: Iterable[Update]) -> None:
        """Append one published segment (its seqs continue the ring's); evict the oldest beyond capacity."""
        segment = updates if isinstance(updates, list) else list(updates)
        if not segment:
            return
        self._segments.append(segment)
        self._size += len(segment)
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
