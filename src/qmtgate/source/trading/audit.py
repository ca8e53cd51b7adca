"""The trading audit trail: every request, answer, SDK push and refusal, appended to SQLite.

WAL mode with ``synchronous=FULL``: a row is on disk when :meth:`AuditTrail.append` returns, and the
service appends *before* it answers, so a crash (even ``kill -9``) never loses a record a client saw the
answer of. The idempotency ledger (client_order_id -> outcome) lives in the same file so a retry after a
restart still finds the first outcome. stdlib ``sqlite3`` only; one connection guarded by a lock.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    updated_ms INTEGER NOT NULL
);
"""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


class AuditTrail:
    """Append-only audit rows and the idempotency ledger in one SQLite file (created if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # re-entrant: appends inside transaction()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

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

    def claim(self, client_order_id: str, request: dict[str, Any], outcome: dict[str, Any]) -> dict | None:
        """Record ``client_order_id`` as taken; returns the existing entry (request, outcome) if it was."""
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO orders (client_order_id, request, outcome, updated_ms) VALUES (?, ?, ?, ?)",
                    (client_order_id, _dumps(request), _dumps(outcome), int(time.time() * 1000)),
                )
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

    def outcome(self, client_order_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT outcome FROM orders WHERE client_order_id = ?", (client_order_id,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def entry(self, client_order_id: str) -> dict[str, Any] | None:
        """The first request and the current outcome recorded for ``client_order_id``."""
        with self._lock:
            row = self._db.execute(
                "SELECT request, outcome FROM orders WHERE client_order_id = ?", (client_order_id,)
            ).fetchone()
        return {"request": json.loads(row[0]), "outcome": json.loads(row[1])} if row else None

    def outcomes(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT client_order_id, outcome FROM orders").fetchall()
        return {coid: json.loads(o) for coid, o in rows}

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The database connection, under the trail's lock: for tables kept beside the trail (the
        protective orders), so their writes share its durability (WAL, synchronous=FULL)."""
        with self._lock:
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()
