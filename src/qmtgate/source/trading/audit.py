"""The trading audit trail: every request, answer, SDK push and refusal, appended to SQLite.

Every write is committed before :meth:`AuditTrail.append` returns, and the service writes *before* it
answers or sends, so a crash of the gateway (even ``kill -9``) never loses a record a client saw the
answer of. How far a commit goes is ``sync`` (``trading.audit_sync``):

* ``"normal"`` (default): WAL with ``synchronous=NORMAL``. A commit is handed to the operating system
  before it returns (it survives any crash of the gateway process at once) and :class:`WalFlusher`
  forces the WAL to the disk within ``flush_interval`` seconds of any write, off the order path. A power
  cut or OS crash can lose at most that window; the service rebuilds the idempotency claims of that
  window from QMT's own orders at start (the client_order_id travels as ``order_remark``). Costs tens of
  microseconds per commit instead of an fsync.
* ``"full"``: ``synchronous=FULL``, one fsync per commit (two per order). Power-cut proof per row; adds
  the disk's fsync latency (0.1-5 ms on the machines measured) to every order.

The idempotency ledger (client_order_id -> outcome) lives in the same file so a retry after a restart
still finds the first outcome. stdlib ``sqlite3`` only; one connection guarded by a lock.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson

logger = logging.getLogger(__name__)

AuditSync = Literal["normal", "full"]

CST = dt.timezone(dt.timedelta(hours=8))
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    request_id TEXT,
    key_id TEXT,
    client_order_id TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_coid ON audit(client_order_id);
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    outcome TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    market_day TEXT
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
"""


_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _dumps(value: Any) -> str:
    """A row's JSON text: orjson (a few microseconds per row on the order path); the stdlib for what
    orjson refuses (integers past 64 bits), with the same sorted keys and ``str`` for unknown types."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


#: Seconds between two checkpoints of the audit WAL at most (made by :class:`WalFlusher`, off the order path).
CHECKPOINT_INTERVAL = 1.0


class WalFlusher:
    """Keeps the audit database's write-ahead log durable and short, on its own thread, off the order path.

    * ``fsync`` (``audit_sync = normal``): with ``synchronous=NORMAL`` SQLite leaves committed WAL frames
      in the OS cache until a checkpoint. ``os.fsync`` on the ``-wal`` file makes every frame committed so
      far durable (recovery replays the frames whose commit record is on disk), within ``interval``
      seconds of any write (:meth:`mark`). It takes no SQLite lock, so it never delays a commit.
    * checkpoints (both modes): the trail turns SQLite's automatic checkpoint off
      (``wal_autocheckpoint=0``), which would otherwise land on whichever commit crossed 1,000 pages — an
      order's — with two fsyncs. Instead this thread runs a ``PASSIVE`` checkpoint on its own connection
      at most once per ``checkpoint_interval`` after a write: it copies committed frames into the
      database without waiting for (or blocking) a writer, and the WAL restarts from its beginning at a
      later commit once everything is copied."""

    def __init__(
        self,
        wal: Path,
        interval: float,
        *,
        fsync: bool = True,
        database: Path | None = None,
        checkpoint_interval: float = CHECKPOINT_INTERVAL,
    ) -> None:
        self.wal = wal
        self.interval = interval
        self.fsync = fsync
        self.checkpoint_interval = checkpoint_interval
        self.flushes = 0
        self.last_flush_s = 0.0  # how long the last fsync took
        self.checkpoints = 0
        self.last_checkpoint_s = 0.0  # how long the last checkpoint took
        self._next_checkpoint = 0.0  # monotonic time before which no checkpoint runs
        self._unchecked = False  # written since the last checkpoint
        self._db = (
            sqlite3.connect(str(database), check_same_thread=False, isolation_level=None)
            if database is not None
            else None
        )
        self._db_lock = threading.Lock()
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qmtgate-audit-flush", daemon=True)
        self._thread.start()

    def mark(self) -> None:
        self._unchecked = True
        self._dirty.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._dirty.wait(timeout=1.0):
                if self._unchecked:  # writes whose checkpoint was not due yet
                    self.checkpoint()
                continue
            self._stop.wait(self.interval)  # gather the writes of one interval into one fsync
            self._dirty.clear()
            if self.fsync:
                self.flush()
            self.checkpoint()

    def checkpoint(self, force: bool = False) -> None:
        """A PASSIVE checkpoint, unless one ran less than ``checkpoint_interval`` ago (``force``: now)."""
        if self._db is None or (not force and time.monotonic() < self._next_checkpoint):
            return
        started = time.perf_counter()
        self._unchecked = False
        with self._db_lock:
            if self._db is None:
                return
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error:
                logger.exception("audit: checkpoint of %s failed (retried later)", self.wal)
                self._unchecked = True
                return
        self.checkpoints += 1
        self.last_checkpoint_s = time.perf_counter() - started
        self._next_checkpoint = time.monotonic() + self.checkpoint_interval

    def flush(self) -> None:
        started = time.perf_counter()
        try:
            # "r+b": Windows flushes (FlushFileBuffers) only a handle opened for writing; nothing is written
            fd = os.open(self.wal, os.O_RDWR | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:  # no WAL yet (or checkpointed away on close): nothing to make durable
            return
        try:
            os.fsync(fd)
        except OSError:
            logger.exception(
                "audit: fsync of %s failed; rows since the last flush are only in the OS cache", self.wal
            )
        finally:
            os.close(fd)
        self.flushes += 1
        self.last_flush_s = time.perf_counter() - started

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        self._thread.join(timeout=5)
        with self._db_lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()


def stored_state(path: str | Path, key: str) -> dict[str, Any] | None:
    """The value kept under ``key`` in the audit file at ``path``, read-only (nothing created, safe beside
    a running gateway): None when the file, its ``state`` table or the key is missing."""
    file = Path(path).absolute()
    if not file.is_file():
        return None
    try:
        db = sqlite3.connect(file.as_uri() + "?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        finally:
            db.close()
        return json.loads(row[0]) if row else None
    except (sqlite3.Error, ValueError):  # no state table (a trail from before it), not a database, bad JSON
        return None


class AuditTrail:
    """Append-only audit rows and the idempotency ledger in one SQLite file (created if missing).

    ``sync`` and ``flush_interval``: see the module docstring (``trading.audit_sync``,
    ``trading.audit_flush_ms``)."""

    def __init__(self, path: str | Path, sync: AuditSync = "normal", flush_interval: float = 0.05) -> None:
        if sync not in ("normal", "full"):
            raise ValueError(f"audit sync must be 'normal' or 'full', not {sync!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sync = sync
        self._lock = threading.RLock()  # re-entrant: appends inside transaction()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL" if sync == "full" else "PRAGMA synchronous=NORMAL")
        # no checkpoint on a commit (an order's): the flusher checkpoints, at most once per second
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        #: whether the file had the ``state`` table before (older trails did not): a reader of a state
        #: kept there may then have to derive it once from the rows (see :meth:`last_row`)
        self.had_state = bool(
            self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'state'").fetchall()
        )
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(orders)").fetchall()}
        if "market_day" not in columns:  # a trail from before claims knew their market day
            self._db.execute("ALTER TABLE orders ADD COLUMN market_day TEXT")
        self._flusher = WalFlusher(
            Path(str(self.path) + "-wal"), flush_interval, fsync=sync == "normal", database=self.path
        )

    def _written(self) -> None:
        self._flusher.mark()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one commit (one fsync): everything inside is durable together on exit."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._written()

    def append(
        self,
        kind: str,
        payload: Any,
        *,
        request_id: str | None = None,
        key_id: str | None = None,
        client_order_id: str | None = None,
    ) -> None:
        """Write one row and commit it (durable on return)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO audit (ts_ms, kind, request_id, key_id, client_order_id, payload) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (int(time.time() * 1000), kind, request_id, key_id, client_order_id, _dumps(payload)),
            )
            self._written()

    def rows(
        self, client_order_id: str | None = None, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """Rows in write order, optionally of one client_order_id and/or within [since_ms, until_ms)."""
        sql = "SELECT id, ts_ms, kind, request_id, key_id, client_order_id, payload FROM audit"
        where, args_list = [], []
        if client_order_id is not None:
            where.append("client_order_id = ?")
            args_list.append(client_order_id)
        if since_ms is not None:
            where.append("ts_ms >= ?")
            args_list.append(since_ms)
        if until_ms is not None:
            where.append("ts_ms < ?")
            args_list.append(until_ms)
        if where:
            sql += " WHERE " + " AND ".join(where)
        args = tuple(args_list)
        with self._lock:
            cur = self._db.execute(sql + " ORDER BY id", args)
            names = [c[0] for c in cur.description]
            out = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        for row in out:
            row["payload"] = json.loads(row["payload"])
        return out

    def export_day(self, day: dt.date, fmt: str = "jsonl") -> str:
        """One China-time day of rows as JSON lines or CSV (``qmtgate trading audit``)."""
        start = dt.datetime(day.year, day.month, day.day, tzinfo=CST)
        rows = self.rows(
            since_ms=int(start.timestamp() * 1000),
            until_ms=int((start + dt.timedelta(days=1)).timestamp() * 1000),
        )
        if fmt == "csv":
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(["id", "ts_ms", "kind", "request_id", "key_id", "client_order_id", "payload"])
            for row in rows:
                writer.writerow([*list(row.values())[:-1], _dumps(row["payload"])])
            return out.getvalue()
        return "".join(_dumps(row) + "\n" for row in rows)

    # ------------------------------------------------------------------ idempotency ledger

    def claim(
        self,
        client_order_id: str,
        request: dict[str, Any],
        outcome: dict[str, Any],
        market_day: str | None = None,
    ) -> dict | None:
        """Record ``client_order_id`` as taken (on ``market_day``, ``YYYY-MM-DD``); returns the existing
        entry (request, outcome) if it was."""
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO orders (client_order_id, request, outcome, updated_ms, market_day) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (client_order_id, _dumps(request), _dumps(outcome), int(time.time() * 1000), market_day),
                )
                self._written()
                return None
            except sqlite3.IntegrityError:
                row = self._db.execute(
                    "SELECT request, outcome FROM orders WHERE client_order_id = ?", (client_order_id,)
                ).fetchone()
        return {"request": json.loads(row[0]), "outcome": json.loads(row[1])}

    def set_outcome(self, client_order_id: str, outcome: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE orders SET outcome = ?, updated_ms = ? WHERE client_order_id = ?",
                (_dumps(outcome), int(time.time() * 1000), client_order_id),
            )
            self._written()

    def outcome(self, client_order_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT outcome FROM orders WHERE client_order_id = ?", (client_order_id,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def entry(self, client_order_id: str) -> dict[str, Any] | None:
        """The first request, the current outcome and the market day of the claim (``YYYY-MM-DD``; None
        for a claim recorded before claims kept it) of ``client_order_id``."""
        with self._lock:
            row = self._db.execute(
                "SELECT request, outcome, market_day FROM orders WHERE client_order_id = ?",
                (client_order_id,),
            ).fetchone()
        if not row:
            return None
        return {"request": json.loads(row[0]), "outcome": json.loads(row[1]), "market_day": row[2]}

    # ------------------------------------------------------------------ gateway state

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        """Keep ``value`` under ``key`` (durable on return, or with the enclosing transaction): state the
        gateway must find again after a restart, such as the kill switch."""
        with self._lock:
            self._db.execute(
                "INSERT INTO state (key, value, updated_ms) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
                (key, _dumps(value), int(time.time() * 1000)),
            )
            self._written()

    def state(self, key: str) -> dict[str, Any] | None:
        """The value last kept under ``key`` (None: never)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def last_row(self, kinds: tuple[str, ...]) -> dict[str, Any] | None:
        """The newest row of one of ``kinds`` (a scan of the table: for a one-time migration only)."""
        marks = ", ".join("?" * len(kinds))
        with self._lock:
            cur = self._db.execute(
                "SELECT id, ts_ms, kind, request_id, key_id, client_order_id, payload FROM audit "
                f"WHERE kind IN ({marks}) ORDER BY id DESC LIMIT 1",
                kinds,
            )
            names = [c[0] for c in cur.description]
            row = cur.fetchone()
        if row is None:
            return None
        out = dict(zip(names, row, strict=True))
        out["payload"] = json.loads(out["payload"])
        return out

    def outcomes(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT client_order_id, outcome FROM orders").fetchall()
        return {coid: json.loads(o) for coid, o in rows}

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The database connection, under the trail's lock: for tables kept beside the trail (the
        protective orders), so their writes share its durability (the same commit and flush rules)."""
        with self._lock:
            yield self._db
            self._written()

    def flush_stats(self) -> dict[str, Any]:
        """For metrics: the sync mode, fsyncs made by the flusher, and how long the last one took."""
        f = self._flusher
        return {
            "sync": self.sync,
            "flushes": f.flushes,
            "last_flush_s": f.last_flush_s,
            "checkpoints": f.checkpoints,
            "last_checkpoint_s": f.last_checkpoint_s,
        }

    def close(self) -> None:
        self._flusher.stop()  # its connection closed first: the trail's close is the last and checkpoints
        with self._lock:
            if self.sync == "normal":
                self._flusher.flush()  # whatever close() leaves in the WAL is on disk
            self._db.close()
