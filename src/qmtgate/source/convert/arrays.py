"""Arrow arrays from numpy arrays and strings, and back, without loading pandas.

``pa.array`` (for any input, a numpy array or a list alike), ``pa.scalar`` and ``Array.to_numpy`` make
pyarrow import pandas to check whether it was handed a pandas object: 33 MB of private memory and ~20 MB
of mapped code with pandas 3, in a gateway that only streams quotes and never makes a DataFrame. The
stream's per-burst columns (numbers, books, codes) are plain fixed-width numpy arrays and ASCII codes, so
they are handed to Arrow as buffers (``Array.from_buffers``), which checks nothing and copies nothing
but the validity bitmap. Anything else (nulls in strings, nested input, non-primitive types) goes through
``pa.array`` as before: these helpers never change a value, only how the array is made
(tests/source/test_arrays.py compares them with ``pa.array`` and ``to_numpy`` on arbitrary input).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

#: fixed-width Arrow types and the numpy dtype of their data buffer
_NUMPY_OF: dict[pa.DataType, np.dtype] = {
    t: np.dtype(d)
    for t, d in (
        (pa.int8(), np.int8),
        (pa.int16(), np.int16),
        (pa.int32(), np.int32),
        (pa.int64(), np.int64),
        (pa.uint8(), np.uint8),
        (pa.uint16(), np.uint16),
        (pa.uint32(), np.uint32),
        (pa.uint64(), np.uint64),
        (pa.float32(), np.float32),
        (pa.float64(), np.float64),
    )
}
_ARROW_OF = {d: t for t, d in _NUMPY_OF.items()}


def _validity(mask: np.ndarray | None) -> tuple[pa.Buffer | None, int]:
    """Arrow's validity bitmap (LSB first, 1 = valid) of a numpy null ``mask`` (True = null)."""
    if mask is None:
        return None, 0
    nulls = int(np.count_nonzero(mask))
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(~np.asarray(mask, dtype=bool).reshape(-1), bitorder="little")), nulls


def numeric(values: np.ndarray, kind: pa.DataType | None = None, mask: np.ndarray | None = None) -> pa.Array:
    """``pa.array(values, kind, mask=mask)`` for a 1-d numeric numpy array (``kind`` defaults to the
    array's own type; values are cast to it as numpy's ``astype`` would, as ``pa.array`` does for a safe
    cast). A cast that could lose a value, booleans and other kinds go to ``pa.array``, whose checks
    apply."""
    values = np.asarray(values)
    kind = kind if kind is not None else _ARROW_OF.get(values.dtype)
    dtype = _NUMPY_OF.get(kind) if kind is not None else None
    if dtype is None or values.ndim != 1 or not _exact_cast(values, dtype):
        return pa.array(values, kind, mask=mask)
    data = np.ascontiguousarray(values, dtype=dtype)
    validity, nulls = _validity(mask)
    return pa.Array.from_buffers(kind, len(data), [validity, pa.py_buffer(data)], null_count=nulls)


def _exact_cast(values: np.ndarray, dst: np.dtype) -> bool:
    """Whether every value of ``values`` is the same value in ``dst`` (integers narrowed only when all
    of them fit, as pyarrow's safe cast requires; anything else is left to pyarrow)."""
    src = values.dtype
    if src == dst:
        return True
    if src.kind not in "iuf":
        return False
    if dst.kind == "f":  # integers narrower than the float, and narrower floats, are exact
        return src.itemsize < dst.itemsize
    if np.can_cast(src, dst, casting="safe"):
        return True
    if src.kind in "iu" and dst.kind in "iu":
        info = np.iinfo(dst)
        return not values.size or (int(values.min()) >= info.min and int(values.max()) <= info.max)
    return False


def strings(values: Sequence[str]) -> pa.Array:
    """``pa.array(values, pa.string())`` for a sequence of str (no None)."""
    if not all(type(v) is str for v in values):
        return pa.array(list(values), pa.string())
    encoded = [v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    if offsets[-1] >= 2**31:
        return pa.array(list(values), pa.string())
    return pa.Array.from_buffers(
        pa.string(),
        len(encoded),
        [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))],
    )


def to_numpy(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``array.to_numpy(zero_copy_only=False)``: a view of the data buffer for a fixed-width array without
    nulls (the common case on the stream); otherwise pyarrow's own conversion. Treat as read-only."""
    if isinstance(array, pa.ChunkedArray):
        if array.num_chunks != 1:
            return array.to_numpy()
        array = array.chunk(0)
    dtype = _NUMPY_OF.get(array.type)
    if dtype is None or array.null_count:
        return array.to_numpy(zero_copy_only=False)
    data = array.buffers()[1]
    if data is None:  # an empty array may have no data buffer
        return np.empty(0, dtype=dtype)
    return np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)
