"""Content negotiation for tabular answers: JSON (default), Arrow IPC stream, or CSV.

Bulk market data as JSON records is ~6x larger and ~20x slower to produce than Arrow IPC with zstd
(lessons.md), so every tabular route offers Arrow by ``Accept: application/vnd.apache.arrow.stream``;
JSON stays the default because it is what a browser or ``curl`` expects. ``?format=json|arrow|csv``
overrides the header for clients that cannot set one.

Every answer states its source: in the JSON body (``"source"``), in the Arrow schema metadata
(``qmtgate.source``), and in the ``X-QMTGate-Source`` header for all formats.

Time: tables carry ``ts`` (epoch ms UTC); the encoder adds ``time`` right after it, exchange-local: an
Arrow ``timestamp[ms, tz=Asia/Shanghai]`` (pandas gets tz-aware datetimes), an ISO 8601 string with
``+08:00`` in JSON and CSV. The conversion is a fixed +8 h offset, so no time-zone database is needed
(pyarrow's tz functions need one on Windows).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
from starlette.responses import Response

from qmtgate.api.responses import dumps
from qmtgate.errors import BadRequest, NotAcceptable
from qmtgate.source.convert import local_iso, rows_table

if TYPE_CHECKING:  # pandas is imported by the first DataFrame answer (as xtquant imports it), not at start
    import pandas as pd

ARROW_STREAM = "application/vnd.apache.arrow.stream"
CSV = "text/csv"
JSON = "application/json"
SOURCE_HEADER = "X-QMTGate-Source"
LOCAL_TZ = "Asia/Shanghai"


class TabularFormat(str, enum.Enum):
    JSON = "json"
    ARROW = "arrow"
    CSV = "csv"


class JsonOrient(str, enum.Enum):
    RECORDS = "records"  # "data": [{"col": v, ...}, ...]
    COLUMNS = "columns"  # "data": {"col": [v, ...], ...}


MEDIA_TYPES: dict[TabularFormat, str] = {
    TabularFormat.JSON: JSON,
    TabularFormat.ARROW: ARROW_STREAM,
    TabularFormat.CSV: CSV,
}

_ACCEPT_MAP: dict[str, TabularFormat] = {
    JSON: TabularFormat.JSON,
    "application/*": TabularFormat.JSON,
    "*/*": TabularFormat.JSON,
    ARROW_STREAM: TabularFormat.ARROW,
    CSV: TabularFormat.CSV,
    "text/*": TabularFormat.CSV,
}


def negotiate(accept: str | None, format: str | None = None) -> TabularFormat:
    """Pick the answer format from ``?format=`` (wins) or the ``Accept`` header (q-values honoured).

    A missing or empty ``Accept`` means JSON. An ``Accept`` that names nothing we can produce raises
    :class:`NotAcceptable` (406) rather than silently sending JSON to a client that cannot read it.
    """
    if format:
        try:
            return TabularFormat(format.strip().lower())
        except ValueError:
            allowed = [f.value for f in TabularFormat]
            raise BadRequest(
                f"invalid format {format!r}; expected one of {', '.join(allowed)}",
                {"format": format, "allowed": allowed},
            ) from None
    if not accept or not accept.strip():
        return TabularFormat.JSON
    candidates: list[tuple[tuple[float, int, int], TabularFormat]] = []
    for position, item in enumerate(accept.split(",")):
        media, q = _parse_media_range(item)
        fmt = _ACCEPT_MAP.get(media)
        if fmt is not None and q > 0:
            # Highest q wins; at equal q an exact type beats a wildcard, then the earlier entry wins.
            candidates.append(((q, 0 if "*" in media else 1, -position), fmt))
    if not candidates:
        raise NotAcceptable(
            f"cannot produce any of {accept!r}; use {JSON}, {ARROW_STREAM} or {CSV}",
            {"accept": accept, "available": list(MEDIA_TYPES.values())},
        )
    return max(candidates, key=lambda candidate: candidate[0])[1]


def _parse_media_range(item: str) -> tuple[str, float]:
    parts = [part.strip() for part in item.split(";")]
    media = parts[0].lower()
    q = 1.0
    for param in parts[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
    return media, q


#: Answers of at least this many rows are built and encoded on a worker thread (see :func:`off_loop`).
OFF_LOOP_ROWS = 2_000


async def off_loop(rows: int, build: Callable[[], Response]) -> Response:
    """``build()`` inline for a small answer, else on a worker thread.

    Why: encoding a large answer (hundreds of thousands of bars as JSON) held the event loop for seconds,
    and every other client (WebSocket frames, liveness, one-code snapshots) waited behind it. On a thread
    the loop still gets the interpreter every switch interval (5 ms), so others see milliseconds, not
    seconds. Small answers stay inline: a thread hop costs more than encoding them.
    """
    if rows < OFF_LOOP_ROWS:
        return build()
    return await asyncio.get_running_loop().run_in_executor(_encoder(), build)


_ENCODER: ThreadPoolExecutor | None = None


def _encoder() -> ThreadPoolExecutor:
    """One encoding thread for the process: large answers queue behind each other rather than run side by
    side, so the event loop competes for the interpreter with one busy thread, not one per request (four
    concurrent 200,000-row JSON answers on four threads stalled the loop for up to a second)."""
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qmtgate-encode")
    return _ENCODER


def to_table(data: pd.DataFrame | pa.Table) -> pa.Table:
    """Convert to an Arrow table; a meaningful pandas index becomes a leading column, NaN becomes null."""
    if isinstance(data, pa.Table):
        return data
    import pandas as pd

    if not isinstance(data.index, pd.RangeIndex):
        data = data.reset_index(names=data.index.name or "index")
    return pa.Table.from_pandas(data, preserve_index=False)


def tabular_response(
    data: pd.DataFrame | pa.Table,
    *,
    fmt: TabularFormat,
    source: str,
    orient: JsonOrient = JsonOrient.RECORDS,
    meta: Mapping[str, Any] | None = None,
    compression: str | None = "zstd",
    status_code: int = 200,
) -> Response:
    """Encode one table in the negotiated format.

    JSON body: ``{"source": ..., **meta, "count": n, "data": [...] | {...}}``. Arrow: one IPC stream with
    ``qmtgate.source`` and ``qmtgate.meta`` (JSON) in the schema metadata, zstd-compressed buffers when the
    codec is available. CSV: a header row, nested cells (bid/ask ladders) as JSON text.
    """
    table = with_local_time(to_table(data), fmt)
    headers = {SOURCE_HEADER: source, "Vary": "Accept"}
    if fmt is TabularFormat.ARROW:
        body = arrow_bytes(table, source, meta, compression)
        return Response(body, status_code=status_code, media_type=ARROW_STREAM, headers=headers)
    if fmt is TabularFormat.CSV:
        return Response(_csv_bytes(table), status_code=status_code, media_type=CSV, headers=headers)
    if orient is JsonOrient.RECORDS and table.num_rows > RECORDS_CHUNK:
        envelope = dumps({"source": source, **(meta or {}), "count": table.num_rows, "data": []})
        body = envelope[:-3] + records_json(table) + b"}"  # "data" is the last key: ...,"data":[]}
        return Response(body, status_code=status_code, media_type=JSON, headers=headers)
    rows: Any = records(table) if orient is JsonOrient.RECORDS else table.to_pydict()
    body_dict = {"source": source, **(meta or {}), "count": table.num_rows, "data": rows}
    return Response(dumps(body_dict), status_code=status_code, media_type=JSON, headers=headers)


#: Rows turned into dicts at a time when encoding a large JSON answer.
RECORDS_CHUNK = 5_000


def records_json(table: pa.Table) -> bytes:
    """``dumps(records(table))``, a chunk of rows at a time.

    Why: one dict per row for a 200,000-row answer is 200,000 GC-tracked objects alive at once; the
    quiet collector (ops/gc_tuning.py) then ran young collections over them on the event loop, 60-290 ms
    each, while the answer was encoded on its thread. A chunk at a time keeps the live count small.
    """
    parts = []
    for offset in range(0, table.num_rows, RECORDS_CHUNK):
        part = dumps(records(table.slice(offset, RECORDS_CHUNK)))
        if len(part) > 2:
            parts.append(part[1:-1])
    return b"[" + b",".join(parts) + b"]"


def rows_response(
    rows: list[dict[str, Any]],
    columns: list[str],
    *,
    fmt: TabularFormat,
    source: str,
    meta: Mapping[str, Any] | None = None,
) -> Response:
    """Encode prebuilt JSON-ready rows (e.g. the quote cache's); only ``columns`` are sent, in that order."""
    if fmt is not TabularFormat.JSON:
        return tabular_response(rows_table(rows, columns), fmt=fmt, source=source, meta=meta)
    if rows and list(rows[0]) != columns:
        rows = [{name: row.get(name) for name in columns} for row in rows]
    body = {"source": source, **(meta or {}), "count": len(rows), "data": rows}
    headers = {SOURCE_HEADER: source, "Vary": "Accept"}
    return Response(dumps(body), media_type=JSON, headers=headers)


def with_local_time(table: pa.Table, fmt: TabularFormat) -> pa.Table:
    """Insert ``time`` (exchange-local) after ``ts`` when the table has ``ts`` and no ``time`` yet."""
    names = table.column_names
    if "ts" not in names or "time" in names:
        return table
    ts = table.column("ts")
    if fmt is TabularFormat.ARROW:
        column: Any = ts.cast(pa.int64()).cast(pa.timestamp("ms", tz=LOCAL_TZ))
    else:
        column = pa.array(local_iso(ts.to_numpy(zero_copy_only=False)), pa.string())
    return table.add_column(names.index("ts") + 1, "time", column)


def records(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as dicts, NaN as None; column-wise conversion is several times faster than ``to_pylist``."""
    names = table.column_names
    columns = [_column_values(table.column(name)) for name in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _column_values(column: pa.ChunkedArray) -> list[Any]:
    kind = column.type
    if pa.types.is_floating(kind):
        values = column.to_numpy(zero_copy_only=False)
        out = values.tolist()
        if column.null_count or (values != values).any():
            import math

            return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in out]
        return out
    if pa.types.is_integer(kind) and not column.null_count:
        return column.to_numpy().tolist()
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
    return column.to_pylist()


def arrow_bytes(
    table: pa.Table,
    source: str | None,
    meta: Mapping[str, Any] | None,
    compression: str | None,
    level: int | None = None,
) -> bytes:
    """An Arrow IPC stream of ``table`` with qmtgate's metadata and compressed buffers (``level``: the
    codec's compression level, its default when None)."""
    metadata = dict(table.schema.metadata or {})
    if source is not None:
        metadata[b"qmtgate.source"] = source.encode()
    if meta:
        metadata[b"qmtgate.meta"] = dumps(dict(meta))
    table = table.replace_schema_metadata(metadata)
    codec: str | pa.Codec | None = compression if compression and pa.Codec.is_available(compression) else None
    if codec is not None and level is not None:
        codec = pa.Codec(codec, compression_level=level)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=codec)) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _csv_bytes(table: pa.Table) -> bytes:
    columns = []
    for column, field in zip(table.columns, table.schema, strict=True):
        if pa.types.is_dictionary(field.type):
            column = column.cast(field.type.value_type)
        if pa.types.is_nested(field.type):
            texts = [None if value is None else orjson.dumps(value).decode() for value in column.to_pylist()]
            column = pa.array(texts, type=pa.string())
        columns.append(column)
    flat = pa.table(columns, names=table.column_names)
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(flat, sink)
    return sink.getvalue().to_pybytes()
