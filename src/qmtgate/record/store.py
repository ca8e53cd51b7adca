"""Reading a recording: 1m bars and ticks as Arrow tables, for the API and for export.

Readers never write. In the gateway that also records, they use cursors of the writer's own connection
(DuckDB allows one read-write opener per file; cursors of it read concurrently and see committed
rows); otherwise they open the file read-only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from qmtgate.record.schema import fetch_arrow, open_database
from qmtgate.source.convert import SNAPSHOT_FIELDS

BAR_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "pre_close", "volume", "amount")
TICK_FIELDS: tuple[str, ...] = SNAPSHOT_FIELDS
RECORDED_PERIODS: tuple[str, ...] = ("1m",)


class RecordingReader:
    """Queries over one recording; every call takes a fresh cursor, so calls may run in any thread."""

    def __init__(
        self, path: Path, cursor: Callable[[], Any], close: Callable[[], None] | None = None
    ) -> None:
        self.path = path
        self._cursor = cursor
        self._close = close

    @classmethod
    def open(cls, path: str | Path) -> RecordingReader:
        con = open_database(path, read_only=True)
        return cls(Path(path), con.cursor, con.close)

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def cursor(self) -> Any:
        """A cursor of the recording (read only in this reader's use)."""
        return self._cursor()

    def completeness(self, day: dt.date | None = None) -> list[dict[str, Any]]:
        """What each recorded day (or ``day``) is known to miss (:func:`..completeness.report`)."""
        from qmtgate.record.completeness import report

        return report(self._cursor(), day)

    def days(self) -> pa.Table:
        """Recorded sessions: date, ticks, codes, first and last tick time, 1m bars."""
        return fetch_arrow(
            self._cursor().execute(
                "SELECT t.date, t.ticks, t.codes, t.first_ts, t.last_ts, coalesce(b.bars, 0) AS bars FROM "
                "(SELECT date, count(*) AS ticks, count(DISTINCT code) AS codes, min(ts) AS first_ts, "
                "max(ts) AS last_ts FROM ticks GROUP BY date) t LEFT JOIN "
                "(SELECT date, count(*) AS bars FROM bars WHERE period = '1m' GROUP BY date) b USING (date) "
                "ORDER BY t.date"
            )
        )

    def bars(
        self,
        codes: Sequence[str],
        period: str = "1m",
        lo_ms: int | None = None,
        hi_ms: int | None = None,
        count: int | None = None,
        fields: Sequence[str] = BAR_FIELDS,
    ) -> pa.Table:
        """Bars per code, oldest first: ``code, ts, *fields`` (shares, yuan, epoch ms UTC)."""
        return self._select("bars", ["period = ?"], [period], codes, lo_ms, hi_ms, count, fields, "ts")

    def ticks(
        self,
        codes: Sequence[str],
        lo_ms: int | None = None,
        hi_ms: int | None = None,
        count: int | None = None,
        fields: Sequence[str] = TICK_FIELDS,
    ) -> pa.Table:
        return self._select("ticks", [], [], codes, lo_ms, hi_ms, count, fields, "ts, seq")

    def day_ticks(self, day: dt.date) -> pa.Table:
        return fetch_arrow(
            self._cursor().execute("SELECT * FROM ticks WHERE date = ? ORDER BY ts, seq", [day])
        )

    def _select(
        self,
        table: str,
        where: list[str],
        params: list[Any],
        codes: Sequence[str],
        lo_ms: int | None,
        hi_ms: int | None,
        count: int | None,
        fields: Sequence[str],
        order: str,
    ) -> pa.Table:
        where = [*where, "list_contains(?, code)"]
        params = [*params, list(codes)]
        if lo_ms is not None:
            where.append("ts >= ?")
            params.append(lo_ms)
        if hi_ms is not None:
            where.append("ts <= ?")
            params.append(hi_ms)
        columns = ", ".join(["code", "ts", *fields])
        sql = (
            f"SELECT {columns}, {order.split(',')[-1].strip()} AS _o FROM {table} WHERE {' AND '.join(where)}"
        )
        if count is not None:
            sql = (
                f"SELECT * EXCLUDE (_rn) FROM (SELECT *, row_number() OVER (PARTITION BY code ORDER BY ts DESC, _o DESC) "
                f"AS _rn FROM ({sql})) WHERE _rn <= {int(count)}"
            )
        sql = f"SELECT {columns} FROM ({sql}) ORDER BY list_position(?, code), ts, _o"
        return fetch_arrow(self._cursor().execute(sql, [*params, list(codes)]))
