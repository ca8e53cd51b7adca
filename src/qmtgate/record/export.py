"""``qmtgate export``: a recording as date-partitioned Parquet (hive style ``date=YYYY-MM-DD``).

Layout: ``OUT/ticks/date=2025-06-12/data_0.parquet`` and ``OUT/bars/date=2025-06-12/...``, zstd
compressed, readable by pandas/pyarrow/polars/DuckDB/Spark as one dataset each
(``pyarrow.dataset.dataset(OUT / "ticks", partitioning="hive")``). The ``date`` column lives in the
directory names, as hive partitioning does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from qmtgate.record.schema import RecordingError, open_database

TABLES = ("ticks", "bars")


def export_parquet(
    db: str | Path, out: str | Path, days: Sequence[dt.date] = (), *, overwrite: bool = False
) -> dict[str, int]:
    """Write every table (only ``days`` if given) under ``out``; returns rows written per table.

    An existing partition is refused unless ``overwrite`` (then that day's files are replaced)."""
    out = Path(out)
    con = open_database(db, read_only=True)
    try:
        written: dict[str, int] = {}
        for table in TABLES:
            where, params = "", []
            if days:
                where = "WHERE list_contains(?, date)"
                params = [list(days)]
            present = [
                r[0] for r in con.execute(f"SELECT DISTINCT date FROM {table} {where}", params).fetchall()
            ]
            target = out / table
            existing = [d for d in present if (target / f"date={d.isoformat()}").exists()]
            if existing and not overwrite:
                raise RecordingError(
                    f"{target} already holds {', '.join(d.isoformat() for d in existing)}; "
                    "pass --overwrite to replace those days"
                )
            count = con.execute(f"SELECT count(*) FROM {table} {where}", params).fetchall()[0]
            written[table] = int(count[0]) if count else 0
            if not present:
                continue
            target.mkdir(parents=True, exist_ok=True)
            order = "code, ts, seq" if table == "ticks" else "code, period, ts"
            con.execute(
                f"COPY (SELECT * FROM {table} {where} ORDER BY date, {order}) TO '{_sql_path(target)}' "
                "(FORMAT PARQUET, COMPRESSION ZSTD, PARTITION_BY (date), OVERWRITE_OR_IGNORE)",
                params,
            ).fetchall()
        return written
    finally:
        con.close()


def _sql_path(path: Path) -> str:
    # forward slashes work on Windows too; quotes are doubled for the SQL literal
    return path.resolve().as_posix().replace("'", "''")
