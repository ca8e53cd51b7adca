"""A tick burst's columns compressed for the replay ring, and the few recently unpacked ones.

The replay ring keeps ~100 whole-market bursts (500,000 updates) so that a client can resume after a
reconnect. Kept as built, each burst costs ~2.3 MB (5,400 codes: ~1.3 MB of numpy columns, ~0.8 MB
of per-update objects, its Arrow table): ~230 MB for a full ring, most of the gateway's memory, for data
that is read only when a client resumes. Once a burst is older than the few that live frames still
reference (:data:`qmtgate.hub.ring.HOT_BURSTS`), the ring keeps it packed instead: each column
zstd-compressed (level 3) after exact integer forms (:class:`PackedArray`): the simulated whole market's
1.33 MB of columns become ~0.19 MB (float64 bytes as they are: 0.32 MB; level 1: 0.37 MB; byte-shuffled:
larger), a few ms to pack or unpack,
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

_CODEC = pa.Codec("zstd", compression_level=3)
#: unpacked bursts kept for readers that come back for more rows of the same burst (a replay walks
#: its bursts in order, so a handful is plenty); a few MB at most
UNPACKED_KEPT = 4


#: prices are kept as integer thousandths when that is exact (A-share prices have 2 decimals, funds 3)
_MILLI = 1000.0
_NARROW = (np.int8, np.int16, np.int32)


def _narrowest(ints: np.ndarray) -> np.ndarray:
    """``ints`` in the smallest signed integer type that holds them (volumes, trades, price offsets)."""
    if ints.size:
        lo, hi = int(ints.min()), int(ints.max())
        for dtype in _NARROW:
            info = np.iinfo(dtype)
            if info.min <= lo and hi <= info.max:
                return ints.astype(dtype)
    return ints


def as_milli(array: np.ndarray) -> np.ndarray | None:
    """``array`` (float64) as integer thousandths if that round-trips bit for bit (``ints / 1000`` gives
    every value back), else None: NaN, infinities, sentinels and finer prices stay floats."""
    if array.dtype != np.float64 or not array.size:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.rint(array * _MILLI)
        if not np.isfinite(scaled).all() or np.abs(scaled).max() >= 2**53:
            return None
        if not np.array_equal(scaled / _MILLI, array) or np.signbit(array[array == 0]).any():
            return None  # not exact, or a -0.0 that integers would give back as 0.0
    return scaled.astype(np.int64)


@dataclass(frozen=True, slots=True)
class PackedArray:
    """One column compressed. Integer columns are narrowed first and prices that are exact thousandths
    are kept as integers (ladders and open/high/low as offsets from the last price): ~40% smaller than
    compressing the float64 bytes, and unpacking gives the very same values and dtype."""

    data: bytes
    dtype: np.dtype  # the column's own dtype, given back by unpack
    shape: tuple[int, ...]
    stored: np.dtype  # the dtype of the compressed bytes
    milli: bool = False  # stored as integer thousandths (float64 columns)
    offset: bool = False  # ... minus the reference column's thousandths (see PackedColumns)

    @classmethod
    def pack(cls, array: np.ndarray, reference: np.ndarray | None = None) -> PackedArray:
        """``reference``: the last price in thousandths, subtracted from a price column that is exact
        thousandths too (a ladder's prices and the day's open/high/low sit a few ticks from it)."""
        contiguous = np.ascontiguousarray(array)
        stored, milli, offset = contiguous, False, False
        if contiguous.dtype.kind == "i":
            stored = _narrowest(contiguous)
        elif (ints := as_milli(contiguous)) is not None:
            milli = True
            if reference is not None:
                ints = ints - (reference[:, None] if ints.ndim == 2 else reference)
                offset = True
            stored = _narrowest(ints)
        stored = np.ascontiguousarray(stored)
        data = _CODEC.compress(stored, asbytes=True)
        return cls(data, contiguous.dtype, contiguous.shape, stored.dtype, milli, offset)

    def unpack(self, reference: np.ndarray | None = None) -> np.ndarray:
        """The column as packed (read-only). ``reference``: the same one :meth:`pack` was given."""
        size = int(np.prod(self.shape, dtype=np.int64)) * self.stored.itemsize
        buffer = _CODEC.decompress(self.data, decompressed_size=size)
        stored = np.frombuffer(buffer, dtype=self.stored).reshape(self.shape)
        if not self.milli:
            if self.stored == self.dtype:
                return stored  # read-only: never written
            return stored.astype(self.dtype)
        ints = stored.astype(np.int64)
        if self.offset:
            if reference is None:
                raise ValueError("this column was packed as offsets from a reference column")
            ints += reference[:, None] if ints.ndim == 2 else reference
        return ints / _MILLI

    @property
    def nbytes(self) -> int:
        return len(self.data)


#: the column the other prices are stored relative to, when it is exact thousandths itself
REFERENCE = "last_price"
_OFFSET_COLUMNS = frozenset({"open", "high", "low", "bid_price", "ask_price"})


@dataclass(frozen=True, slots=True, eq=False)
class PackedColumns:
    """:class:`TickColumns` with every array compressed; :meth:`unpack` gives back equal columns."""

    codes: Sequence[str]
    values: dict[str, PackedArray]
    valid: dict[str, PackedArray | None]

    @classmethod
    def pack(cls, columns: TickColumns, codes: Sequence[str] | None = None) -> PackedColumns:
        """``codes``: an equal list to share instead of ``columns.codes`` (whole-market bursts repeat it)."""
        last = columns.values.get(REFERENCE)
        reference = as_milli(last) if last is not None else None
        values = {
            name: PackedArray.pack(v, reference if name in _OFFSET_COLUMNS else None)
            for name, v in columns.values.items()
        }
        return cls(
            columns.codes if codes is None else codes,
            values,
            {name: None if v is None else PackedArray.pack(v) for name, v in columns.valid.items()},
        )

    def unpack(self) -> TickColumns:
        reference: np.ndarray | None = None
        last = self.values.get(REFERENCE)
        if last is not None and last.milli:
            reference = np.rint(last.unpack() * _MILLI).astype(np.int64)
        return TickColumns(
            list(self.codes),
            {name: p.unpack(reference) for name, p in self.values.items()},
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
