"""Database safety (no file without --create, schema version checked) and Parquet export."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from qmtgate.cli import app
from qmtgate.record.export import export_parquet
from qmtgate.record.schema import DatabaseMissing, RecordingError, SchemaMismatch, open_database
from qmtgate.record.writer import RecordWriter

from .conftest import DAY, Recorded


def test_writing_to_a_missing_database_fails_and_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "typo.duckdb"
    with pytest.raises(DatabaseMissing, match=str(target)) as err:
        RecordWriter(target)
    assert "--create" in str(err.value)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_record_command_refuses_a_missing_database(tmp_path: Path) -> None:
    target = tmp_path / "missing.duckdb"
    result = CliRunner().invoke(app, ["record", "--db", str(target), "--codes", "600000.SH"])
    assert result.exit_code == 2
    assert f"recording database {target} does not exist" in result.output
    assert "--create" in result.output
    assert list(tmp_path.iterdir()) == []


def test_create_makes_a_versioned_database_and_reopening_checks_it(tmp_path: Path) -> None:
    target = tmp_path / "new.duckdb"
    open_database(target, create=True).close()
    assert target.is_file()
    open_database(target).close()  # exists now: no --create needed
    with duckdb.connect(str(target)) as con:
        con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'").fetchall()
    with pytest.raises(SchemaMismatch, match="version 999"):
        open_database(target)


def test_a_foreign_duckdb_file_is_not_taken_for_a_recording(tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE t (x INTEGER)").fetchall()
    with pytest.raises(SchemaMismatch, match="not a qmtgate recording"):
        open_database(other)
    with pytest.raises(RecordingError, match="does not exist"):
        open_database(tmp_path / "nothing.duckdb", read_only=True)
    assert not (tmp_path / "nothing.duckdb").exists()


def test_export_writes_hive_partitions_per_date(recorded: Recorded, tmp_path: Path) -> None:
    out = tmp_path / "parquet"
    counts = export_parquet(recorded.path, out, [DAY])
    assert (out / "ticks" / "date=2025-06-12").is_dir() and (out / "bars" / "date=2025-06-12").is_dir()
    assert not (out / "ticks" / "date=2025-06-11").exists(), "only the asked day"
    ticks = ds.dataset(out / "ticks", partitioning="hive").to_table()
    bars = ds.dataset(out / "bars", partitioning="hive").to_table()
    assert ticks.num_rows == counts["ticks"] > 0 and bars.num_rows == counts["bars"] == 241 * len(
        recorded.codes
    )
    assert {"code", "ts", "last_price", "volume", "bid_price", "date"} <= set(ticks.column_names)
    with pytest.raises(RecordingError, match="--overwrite"):
        export_parquet(recorded.path, out, [DAY])
    result = CliRunner().invoke(app, ["export", "--db", str(recorded.path), "--out", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "ticks" / "date=2025-06-11").is_dir()
