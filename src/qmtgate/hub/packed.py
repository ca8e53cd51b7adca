"""A tick burst's columns compressed for the replay ring, and the few recently unpacked ones.

The replay ring keeps ~90 whole-market bursts (500,000 updates) so that a client can resume after a
reconnect. Kept as built, each burst costs ~2.3 MB (5,400 codes: ~1.3 MB of numpy columns, ~0.8 MB
of per-update objects, its Arrow table): ~230 MB for a full ring, most of the gateway's memory, for data
that is read only when a client resumes. Once a burst is older than the few that live frames still
reference (:data:`qmtgate.hub.ring.HOT_BURSTS`), the ring keeps it packed instead: each column
zstd-compressed (level 1; simulated whole market: 1.23 MB -> 0.35 MB, 4 ms to pack, 2.4 ms to unpack)
and no per-update objects (:class:`qmtgate.hub.ring.PackedSegment` makes them on demand).

A resume reads a packed burst through :func:`unpacked`, which keeps the last few unpacked bursts so
that the row-by-row and per-run readers of one replay unpack each burst once, not once per row.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from qmtgate.source.convert import TickColumns

_CODEC = pa.Codec("zstd", compression_level=1)
#: unpacked bursts kept for readers that come back for more rows of the same burst (a replay walks
#: its bursts in order, so a handful is plenty); a few MB at most
UNPACKED_KEPT = 4


@dataclass(frozen=True, slots=True)
class PackedArray:
    data: bytes
    dtype: np.dtype
    shape: tuple[int, ...]

    @classmethod
    def pack(cls, array: np.ndarray) -> PackedArray:
        contiguous = np.ascontiguousarray(array)
        return cls(_CODEC.compress(contiguous, asbytes=True), contiguous.dtype, contiguous.shape)

    def unpack(self) -> np.ndarray:
        size = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        buffer = _CODEC.decompress(self.data, decompressed_size=size)
        return np.frombuffer(buffer, dtype=self.dtype).reshape(self.shape)  # read-only: never written

    @property
    def nbytes(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True, eq=False)
class PackedColumns:
    """:class:`TickColumns` with every array compressed; :meth:`unpack` gives back equal columns."""

    codes: Sequence[str]
    values: dict[str, PackedArray]
    valid: dict[str, PackedArray | None]

    @classmethod
    def pack(cls, columns: TickColumns, codes: Sequence[str] | None = None) -> PackedColumns:
        """``codes``: an equal list to share instead of ``columns.codes`` (whole-market bursts repeat it)."""
        return cls(
            columns.codes if codes is None else codes,
            {name: PackedArray.pack(v) for name, v in columns.values.items()},
            {name: None if v is None else PackedArray.pack(v) for name, v in columns.valid.items()},
        )

    def unpack(self) -> TickColumns:
        return TickColumns(
            list(self.codes),
            {name: p.unpack() for name, p in self.values.items()},
            {name: None if p is None else p.unpack() for name, p in self.valid.items()},
        )

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.values.values()) + sum(
            p.nbytes for p in self.valid.values() if p is not None
        )


_unpacked: OrderedDict[PackedColumns, TickColumns] = OrderedDict()
_lock = threading.Lock()  # the recorder and the Hikyuu publisher read bursts from their own threads


def unpacked(packed: PackedColumns) -> TickColumns:
    """The columns of ``packed``, unpacked once while it stays among the last :data:`UNPACKED_KEPT`."""
    with _lock:
        columns = _unpacked.get(packed)
        if columns is not None:
            _unpacked.move_to_end(packed)
            return columns
    columns = packed.unpack()
    with _lock:
        _unpacked[packed] = columns
        while len(_unpacked) > UNPACKED_KEPT:
            _unpacked.popitem(last=False)
    return columns
