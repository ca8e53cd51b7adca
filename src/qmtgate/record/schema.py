"""The recording database: its tables, its schema version, and the rule that it is never created by mistake.

One DuckDB file holds one recording (any number of days). Writing needs the file to exist already;
creating one needs an explicit ``create=True`` (``--create`` on the command line), so a typo in a path
can never start a fresh, empty recording beside the real one. The schema version is stored in ``meta``
and checked on every open: a file written by another layout is refused with a message naming both
versions, instead of being half-read or silently migrated.

Units are those of the normalized API (docs/streaming.md): prices in yuan, ``volume`` in shares,
``amount`` in yuan, ``ts`` epoch milliseconds UTC, ``date`` the Asia/Shanghai trading date.

Ticks carry no primary key on purpose: an index over (code, ts) of a whole-market day (~17 M rows) would
hold gigabytes of memory. Duplicates are refused by the writer instead (an anti-join against the rows
already stored in the batch's time range), which is what makes restarts idempotent.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qmtgate.source.convert import SNAPSHOT_FIELDS

if TYPE_CHECKING:  # DuckDB (~27 MB resident) loads with the first recording opened, not with the gateway
    import duckdb

#: Bump when a table changes; a file with another version is refused on open.
SCHEMA_VERSION = 1

TICK_COLUMNS: tuple[str, ...] = ("date", "code", "ts", "seq", *SNAPSHOT_FIELDS)
BAR_COLUMNS: tuple[str, ...] = (
    "date",
    "code",
    "period",
    "ts",
    "open",
    "high",
    "low",
    "close",
    "pre_close",
    "volume",
    "amount",
)

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS ticks (
    date DATE NOT NULL,            -- trading date, Asia/Shanghai
    code VARCHAR NOT NULL,         -- 600000.SH
    ts BIGINT NOT NULL,            -- snapshot time, epoch ms UTC
    seq BIGINT NOT NULL,           -- arrival order within the recording (replay order at equal ts)
    last_price DOUBLE,             -- yuan
    open DOUBLE,
    high DOUBLE,
    low DOUBLE,
    pre_close DOUBLE,
    volume BIGINT,                 -- cumulative shares today
    amount DOUBLE,                 -- cumulative yuan today
    trades BIGINT,
    phase INTEGER,
    bid_price DOUBLE[],
    bid_volume BIGINT[],           -- shares
    ask_price DOUBLE[],
    ask_volume BIGINT[]
);
CREATE TABLE IF NOT EXISTS bars (
    date DATE NOT NULL,
    code VARCHAR NOT NULL,
    period VARCHAR NOT NULL,       -- '1m'
    ts BIGINT NOT NULL,            -- bar END time, epoch ms UTC (09:31 = the 09:30-09:31 minute)
    open DOUBLE,
    high DOUBLE,
    low DOUBLE,
    close DOUBLE,
    pre_close DOUBLE,              -- close of the previous bar (the day's pre-close for the first)
    volume BIGINT,                 -- shares
    amount DOUBLE                  -- yuan
);
"""

#: Tables added after schema version 1 shipped; created on every writable open (an older file gains them,
#: nothing existing changes, so the version stays 1). Readers treat a missing one as empty.
_DDL_ADDED = """
CREATE TABLE IF NOT EXISTS coverage (
    date DATE NOT NULL,            -- trading date, Asia/Shanghai
    scope VARCHAR NOT NULL,        -- 'SH' (a whole market) or a code ('600000.SH')
    lo BIGINT NOT NULL,            -- every tick of the scope with lo <= ts <= hi is stored (epoch ms UTC)
    hi BIGINT NOT NULL,
    kind VARCHAR NOT NULL,         -- 'live' (recorded from the stream) or 'fill' (from the tick history)
    run VARCHAR NOT NULL           -- the recorder start (or fill) that wrote the span
);
CREATE TABLE IF NOT EXISTS ref_instruments (date DATE NOT NULL, code VARCHAR NOT NULL, detail VARCHAR);
CREATE TABLE IF NOT EXISTS ref_sectors (date DATE NOT NULL, sector VARCHAR NOT NULL, code VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS ref_calendar (market VARCHAR NOT NULL, day DATE NOT NULL);
"""


class RecordingError(Exception):
    """A recording database cannot be used as asked; the message says why and names the file."""


class DatabaseMissing(RecordingError):
    """Writing was asked for a file that does not exist, without ``create``."""


class SchemaMismatch(RecordingError):
    """The file holds another schema version (or is not a qmtgate recording)."""


def open_database(
    path: str | Path, *, create: bool = False, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open (or, only with ``create=True``, create) a recording and check its schema version.

    A missing file without ``create`` raises :class:`DatabaseMissing` before DuckDB is asked anything,
    so no file appears. ``read_only`` opens never create and never write (readers, replay, export).
    """
    path = Path(path)
    if not path.exists():
        if read_only or not create:
            hint = "" if read_only else "; pass --create to start a new recording there"
            raise DatabaseMissing(f"recording database {path} does not exist{hint}")
        if not path.parent.is_dir():
            raise DatabaseMissing(f"cannot create {path}: directory {path.parent} does not exist")
        import duckdb

        con = duckdb.connect(str(path))
        try:
            con.execute(_DDL).fetchall()
            con.execute(_DDL_ADDED).fetchall()
            con.execute(
                "INSERT INTO meta VALUES ('schema_version', ?), ('created_at', ?)",
                [str(SCHEMA_VERSION), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")],
            ).fetchall()
        except Exception:
            con.close()
            raise
        return con
    if path.is_dir():
        raise RecordingError(f"{path} is a directory, not a recording database")
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as e:
        raise RecordingError(f"cannot open recording database {path}: {e}") from e
    try:
        check_version(con, path)
        if not read_only:
            con.execute(_DDL_ADDED).fetchall()
    except Exception:
        con.close()
        raise
    return con


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the recording has table ``name`` (a file written before it was added, opened read-only,
    has not)."""
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'",
        [name],
    ).fetchall()
    return bool(rows[0][0])


def check_version(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    import duckdb

    try:
        rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        row = rows[0] if rows else None
    except duckdb.CatalogException:
        row = None
    if row is None:
        raise SchemaMismatch(f"{path} is not a qmtgate recording (no schema version stored)")
    if row[0] != str(SCHEMA_VERSION):
        raise SchemaMismatch(
            f"{path} has recording schema version {row[0]}, this qmtgate reads version {SCHEMA_VERSION}"
        )


def fetch_arrow(result: duckdb.DuckDBPyConnection) -> Any:
    """The executed query's rows as an Arrow table (DuckDB 1.x ``fetch_arrow_table``, 2.x ``to_arrow_table``)."""
    method = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 2.x: "extra copy" advice; parameters need execute()
        return method()
