"""A bounded replay ring of published updates, so a reconnecting client can resume from its last seq.

Every update the hub publishes gets a sequence number, monotonic within one gateway run (an
``epoch``). The ring keeps the most recent ``capacity`` updates; ``since(seq)`` returns everything after
``seq`` while it is still in the window, or None when the client fell out of it (it then gets a fresh
snapshot instead, never a silent gap).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
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
            self.burst.materialize(self.index)
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

    __slots__ = ("asked", "columns", "complete", "updates")

    BULK_SHARE = 1 / 16  # BJ's ~270 codes of a ~5,400-code burst stay row by row

    def __init__(self, columns: TickColumns) -> None:
        self.columns = columns
        self.updates: list[Update] = []
        self.asked = 0
        self.complete = False

    def materialize(self, index: int | None = None) -> None:
        """Build row ``index`` (None: every row) of the burst and store it on its update."""
        if self.complete:
            return
        self.asked += 1
        if index is not None and self.asked <= self.BULK_SHARE * len(self.updates):
            self.updates[index]._row = self.columns.row(index)
            return
        for u, row in zip(self.updates, self.columns.rows(), strict=True):
            if u._row is None:
                u._row = row
        self.complete = True


def burst_table(updates: Sequence[Update]) -> pa.Table | None:
    """The updates as an Arrow table straight from their burst's columns (no row dicts), or None when
    they do not all come from one tick burst (bar updates, a conflated frame mixing bursts).

    Columns as :meth:`TickColumns.table`; a subset of a burst (one market, a watch list, the
    recorder's codes) is taken by position, in the updates' order."""
    burst = updates[0].burst if updates else None
    if burst is None:
        return None
    if updates is burst.updates:
        return burst.columns.table()
    if any(u.burst is not burst for u in updates):
        return None
    return burst.columns.table().take(pa.array([u.index for u in updates], pa.int64()))


class ReplayRing:
    """The last ``capacity`` updates in seq order (append-only, O(1) eviction)."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("ring capacity must be positive")
        self.capacity = capacity
        self._items: deque[Update] = deque(maxlen=capacity)

    def extend(self, updates: Iterable[Update]) -> None:
        self._items.extend(updates)

    @property
    def first_seq(self) -> int | None:
        return self._items[0].seq if self._items else None

    @property
    def last_seq(self) -> int | None:
        return self._items[-1].seq if self._items else None

    def __len__(self) -> int:
        return len(self._items)

    def since(self, seq: int) -> list[Update] | None:
        """Updates with ``seq`` greater than the given one; None if some of them were evicted."""
        if not self._items:
            return [] if seq >= 0 else None
        first = self._items[0].seq
        last = self._items[-1].seq
        if seq >= last:
            return []
        if seq < first - 1:
            return None
        # seqs are contiguous within the ring: index arithmetic, no search
        start = seq - first + 1
        return [self._items[k] for k in range(start, len(self._items))]
