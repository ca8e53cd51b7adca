"""Wire formats for WebSocket data frames: JSON text (the default) or Arrow IPC (negotiated).

A whole-market burst is ~5,400 rows. As JSON it is ~1.9 MB and costs a Python client ~40 ms to parse
into dicts, which is what limits a machine that runs many full-market consumers (bench/RESULTS.md). As
an Arrow IPC stream with zstd-compressed buffers (lz4 or none on request) it is ~4x smaller and decodes without creating a
Python object per value, straight into a DataFrame. MessagePack was measured too and does not help:
1.78 MB and slower to parse than orjson, so it is not offered.

Every encoding of a frame is produced once and cached on the frame object; the hub hands one shared
frame to every whole-market client, so 50 such clients cost one encode per burst, not 50.

Arrow frames carry the JSON message's header fields (``type``, ``channel``, ``epoch``, ``seq_from``,
``seq_to``, ``conflated``, ``replay``, ``gw_ts``) as JSON in the schema metadata key ``qmtgate.frame``;
the columns are ``seq`` plus the row fields (``time`` as ``timestamp[ms, tz=Asia/Shanghai]``; the
5-level book columns as ``fixed_size_list<…>[5]`` when every row has 5 levels, as xtquant's always do:
without per-row offsets a whole-market lz4 frame is ~12 % smaller, which every client's socket and
decoder feel).
"""

from __future__ import annotations

import enum
import itertools
import operator
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from qmtgate.api.encoding import TabularFormat, arrow_bytes, with_local_time
from qmtgate.hub.clients import Frame, frame_payload
from qmtgate.hub.ring import burst_table
from qmtgate.source.convert import SNAPSHOT_ARROW_TYPES
from qmtgate.source.convert import arrays as arrow

FRAME_META_KEY = b"qmtgate.frame"

#: decoding a frame on the calling thread: a frame is < 2 MB, and handing its buffers to Arrow's pool
#: costs more than it saves when several consumers share the CPU (measured, 5 processes decoding lz4
#: frames at once: 1.1 ms per frame single-threaded against 1.6 ms with the pool, 20 % less CPU)
READ_OPTIONS = pa.ipc.IpcReadOptions(use_threads=False)

BAR_ARROW_TYPES: dict[str, pa.DataType] = {
    "code": pa.string(),
    "period": pa.string(),
    "ts": pa.int64(),
    "open": pa.float64(),
    "high": pa.float64(),
    "low": pa.float64(),
    "close": pa.float64(),
    "volume": pa.int64(),
    "amount": pa.float64(),
    "pre_close": pa.float64(),
    "forming": pa.bool_(),
}


class WireEncoding(str, enum.Enum):
    """How data frames travel. Control messages (hello, subscribed, status, error) are always JSON text."""

    JSON = "json"
    ARROW = "arrow"
    COLUMNS = "columns"  # JSON text, one array per field instead of one object per row (see _columns)


#: zstd level of stream frames: a frame is encoded once and decoded by every client, so a little more
#: encode time buys smaller frames that every client decodes faster (a whole-market burst: 414 against
#: 462 KB, decode 0.86 against 1.05 ms per client, encode 2.7 against 2.2 ms once; level 1 is pyarrow's
#: default, which REST answers, encoded per request, keep).
ZSTD_FRAME_LEVEL = 3


class ArrowCompression(str, enum.Enum):
    """How an Arrow frame's buffers are compressed (negotiated per connection; zstd by default).

    A whole-market burst, measured (bench/RESULTS.md): zstd (level 3) ~0.41 MB, encode ~2.7 ms once per
    burst, decode ~0.9 ms per client; lz4 ~0.75 MB, ~3 ms, ~0.8 ms; none ~1.6 MB, ~0.5 ms, ~0.1 ms. zstd suits a LAN
    shared with other traffic; lz4 or none suit consumers on the gateway's host or a fast link, where
    the client's CPU, not the wire, sets the delay."""

    ZSTD = "zstd"
    LZ4 = "lz4"
    NONE = "none"


def encode(
    frame: Frame, epoch: str, encoding: WireEncoding, compression: ArrowCompression = ArrowCompression.ZSTD
) -> str | bytes:
    """The frame in ``encoding``: a ``str`` for a text message, ``bytes`` for a binary one (cached, so
    clients that share a frame and a wire format share one encode)."""
    cache: dict[tuple[WireEncoding, ArrowCompression | None], str | bytes] | None = getattr(
        frame, "_wire", None
    )
    if cache is None:
        cache = {}
        frame._wire = cache  # type: ignore[attr-defined]
    key = (encoding, compression if encoding is WireEncoding.ARROW else None)
    out = cache.get(key)
    if out is None:
        if encoding is WireEncoding.JSON:
            out = _json(frame, epoch)
        elif encoding is WireEncoding.COLUMNS:
            out = _columns(frame, epoch)
        else:
            out = _arrow(frame, epoch, compression)
        cache[key] = out
    return out


def header(frame: Frame, epoch: str) -> dict[str, Any]:
    """The frame's message fields without its items."""
    body = frame_payload(frame, epoch, rows=[])
    body.pop("items")
    return body


def _json(frame: Frame, epoch: str) -> str:
    return orjson.dumps(frame_payload(frame, epoch), option=orjson.OPT_SERIALIZE_NUMPY).decode()


def frame_table(frame: Frame) -> pa.Table:
    """The frame's rows as an Arrow table with the documented types (``seq`` first)."""
    types = SNAPSHOT_ARROW_TYPES if frame.channel == "tick" else BAR_ARROW_TYPES
    updates = frame.updates
    first, last = (updates[0].seq, updates[-1].seq) if updates else (0, -1)
    if last - first + 1 == len(updates):  # a frame's seqs increase: here they are every seq in between
        seqs = arrow.numeric(np.arange(first, last + 1, dtype=np.int64))
    else:
        seqs = arrow.numeric(np.fromiter((u.seq for u in updates), np.int64, len(updates)))
    table = burst_table(updates)
    if table is not None:  # one burst's ticks (all or a few codes): straight from its columns
        return _fixed_ladders(with_local_time(table.add_column(0, "seq", seqs), TabularFormat.ARROW))
    rows = [u.row for u in updates]
    columns: dict[str, pa.Array] = {"seq": seqs}
    for name, kind in types.items():
        if name == "time":
            continue
        values = list(map(operator.itemgetter(name), rows))
        columns[name] = _ladder(values, kind) if pa.types.is_list(kind) else pa.array(values, kind)
    return _fixed_ladders(with_local_time(pa.table(columns), TabularFormat.ARROW))


LADDER_DEPTH = 5


def _fixed_ladders(table: pa.Table) -> pa.Table:
    """Book columns as fixed-size lists of :data:`LADDER_DEPTH` (a column with a row of another depth
    stays a list)."""
    for i, field in enumerate(table.schema):
        if not pa.types.is_list(field.type):
            continue
        try:
            column = table.column(i).cast(pa.list_(field.type.value_type, LADDER_DEPTH))
        except pa.ArrowInvalid:
            continue
        table = table.set_column(i, field.with_type(column.type), column)
    return table


def _ladder(values: list[list[Any]], kind: pa.ListType) -> pa.Array:
    """5-level book columns: one flat array and fixed offsets (several times faster than nested lists)."""
    n = len(values)
    if set(map(len, values)) != {5}:
        return pa.array(values, kind)
    flat = pa.array(list(itertools.chain.from_iterable(values)), kind.value_type)
    offsets = pa.array(np.arange(0, 5 * n + 1, 5, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, flat, type=kind)


def _frame_table(frame: Frame) -> pa.Table:
    """:func:`frame_table`, built once per frame: Arrow and columnar JSON clients of one frame share it."""
    table: pa.Table | None = getattr(frame, "_table", None)
    if table is None:
        table = frame._table = frame_table(frame)  # type: ignore[attr-defined]
    return table


def _columns(frame: Frame, epoch: str) -> str:
    """The frame as columnar JSON: ``columns`` maps each field to one array of ``n`` values (``seq``,
    ``code``, ``ts``, ... in the row format's units, ``null`` where the row has ``None``); a book column
    named in ``depth`` is flat, ``depth`` values per row (level 1 first), otherwise one list per row.
    ``time`` is left out: it is ``ts`` in Asia/Shanghai, which a client derives in one vectorised step.

    Why: parsing a whole-market row frame costs a Python client ~22 ms, mostly the ~5,000 row dicts and
    the ~20,000 five-level lists; the same values as flat arrays parse in ~4 ms (bench/RESULTS.md,
    "Lean JSON frames"). Numeric columns go to orjson as numpy arrays (no Python object per value)."""
    table = _frame_table(frame)
    columns: dict[str, Any] = {}
    depth: dict[str, int] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name == "time":
            continue
        array = column.combine_chunks()
        if pa.types.is_fixed_size_list(array.type) and array.null_count == 0:
            depth[name] = array.type.list_size
            array = array.flatten()
        columns[name] = _json_values(array)
    body = header(frame, epoch)
    body["n"] = table.num_rows
    body["depth"] = depth
    body["columns"] = columns
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _json_values(array: pa.Array) -> Any:
    """One column as orjson takes it: a numpy array when that is exact (numbers without nulls, or floats,
    whose nulls are NaN there and ``null`` in orjson's output), else Python values."""
    kind = array.type
    if pa.types.is_floating(kind) or (
        array.null_count == 0 and (pa.types.is_integer(kind) or pa.types.is_boolean(kind))
    ):
        return arrow.to_numpy(array)
    return array.to_pylist()


def _arrow(frame: Frame, epoch: str, compression: ArrowCompression) -> bytes:
    table = _frame_table(frame)
    meta = {FRAME_META_KEY: orjson.dumps(header(frame, epoch))}
    codec = None if compression is ArrowCompression.NONE else compression.value
    level = ZSTD_FRAME_LEVEL if compression is ArrowCompression.ZSTD else None
    return arrow_bytes(
        table.replace_schema_metadata(meta), source=None, meta=None, compression=codec, level=level
    )


def decode_arrow(data: bytes) -> tuple[dict[str, Any], pa.Table]:
    """Client side: an Arrow data frame -> (header, table). Used by tests and the Python client."""
    reader = pa.ipc.open_stream(pa.py_buffer(data), options=READ_OPTIONS)
    table = reader.read_all()
    meta = table.schema.metadata or {}
    return orjson.loads(meta[FRAME_META_KEY]), table
