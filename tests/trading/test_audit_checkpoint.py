"""The audit WAL is checkpointed by the background flusher (``wal_autocheckpoint=0``: never on an
order's commit), at most once per second, and rows survive a crash whether they were checkpointed into
the database file or were still only in the WAL."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from qmtgate.source.trading.audit import AuditTrail

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def rows_in_main_file(path: Path, tmp: Path) -> int:
    """Rows of the database file alone (without its WAL): what checkpoints have copied there."""
    copy = tmp / "main-only.sqlite"
    shutil.copyfile(path, copy)
    db = sqlite3.connect(str(copy))
    try:
        return db.execute("SELECT count(*) FROM audit").fetchone()[0]
    finally:
        db.close()


@pytest.mark.parametrize("sync", ["normal", "full"])
def test_the_flusher_checkpoints_the_wal_at_most_once_per_second(tmp_path: Path, sync: str) -> None:
    path = tmp_path / "a.sqlite"
    trail = AuditTrail(path, sync=sync, flush_interval=0.01)  # type: ignore[arg-type]
    try:
        with trail.connection() as db:
            assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # never on a commit
        trail.append("request.place", {"n": 0})
        wait_for(lambda: trail.flush_stats()["checkpoints"] >= 1)
        assert rows_in_main_file(path, tmp_path) == 1  # the checkpoint copied the row into the file
        first = trail.flush_stats()["checkpoints"]
        started = time.monotonic()
        for i in range(1, 200):  # writes for ~0.5 s: at most one more checkpoint in that time
            trail.append("request.place", {"n": i})
            time.sleep(0.0025)
        elapsed = time.monotonic() - started
        assert trail.flush_stats()["checkpoints"] - first <= int(elapsed) + 1
        wait_for(lambda: rows_in_main_file(path, tmp_path) == 200)  # the last writes' checkpoint comes
        assert trail.flush_stats()["last_checkpoint_s"] > 0
    finally:
        trail.close()


CRASH = textwrap.dedent(
    """
    import os, sys, time
    from qmtgate.source.trading.audit import AuditTrail
    trail = AuditTrail(sys.argv[1], sync="normal", flush_interval=0.01)
    for i in range(300):
        trail.append("request.place", {"n": i})
    deadline = time.monotonic() + 10
    while trail.flush_stats()["checkpoints"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    for i in range(300, 310):  # committed, then the process dies before any checkpoint of them
        with trail.transaction():
            trail.append("request.place", {"n": i})
            trail.claim(f"c{i}", {"n": i}, {"status": "sending"})
    print(trail.flush_stats()["checkpoints"], flush=True)
    os._exit(9)  # no close, no final checkpoint: as kill -9
    """
)


def test_rows_survive_a_crash_checkpointed_or_not(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    done = subprocess.run(
        [sys.executable, "-c", CRASH, str(path)],
        env={"PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 9, done.stderr
    assert int(done.stdout.strip()) >= 1  # a checkpoint ran before the crash
    assert 1 <= rows_in_main_file(path, tmp_path) < 310  # some rows checkpointed, the last only in the WAL
    trail = AuditTrail(path)
    try:
        assert [r["payload"]["n"] for r in trail.rows()] == list(range(310))
        assert trail.outcome("c309") == {"status": "sending"}
    finally:
        trail.close()
