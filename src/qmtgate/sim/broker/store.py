"""Where a paper account lives between runs: one SQLite file (stdlib ``sqlite3``, WAL journal).

Same rule as recordings: a missing file is created only with ``create=True`` (``--create``), so a typo
in a path fails loudly instead of silently starting a fresh account. Each account is one JSON row
(cash, positions, today's orders and trades); past sessions' orders and trades move to history
tables at the day change, so a paper account can run for weeks.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from .model import Account

SCHEMA_VERSION = "1"


class AccountStoreMissing(FileNotFoundError):
    """The account file does not exist and ``create`` was not asked."""


class AccountStore:
    """SQLite persistence of the broker's accounts and counters (thread-safe)."""

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise AccountStoreMissing(
                    f"paper account file {self.path} does not exist; pass create=True (--create) to start one"
                )
            if not self.path.parent.is_dir():
                raise AccountStoreMissing(
                    f"cannot create {self.path}: directory {self.path.parent} does not exist"
                )
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS accounts (account_id TEXT PRIMARY KEY, state TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS order_history (day TEXT, account_id TEXT, order_id INTEGER, state TEXT);
            CREATE TABLE IF NOT EXISTS trade_history (day TEXT, account_id TEXT, traded_id TEXT, state TEXT);
            """
        )
        found = self.get_meta("schema_version")
        if found is None:
            self.set_meta({"schema_version": SCHEMA_VERSION})
        elif found != SCHEMA_VERSION:
            raise ValueError(
                f"{self.path}: paper account schema {found}, this qmtgate reads {SCHEMA_VERSION}"
            )

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: dict[str, Any]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()]
            )

    def load_accounts(self) -> dict[str, Account]:
        with self._lock:
            rows = self._db.execute("SELECT account_id, state FROM accounts").fetchall()
        return {aid: Account.from_json(json.loads(state)) for aid, state in rows}

    def save(self, accounts: list[Account], meta: dict[str, Any]) -> None:
        """Write accounts and counters in one transaction (all or nothing)."""
        rows = [(a.account_id, json.dumps(a.to_json(), ensure_ascii=False)) for a in accounts]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO accounts VALUES (?, ?)", rows)
                self._db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()]
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def archive_day(self, day: str, account: Account) -> None:
        """Move a finished session's orders and trades to the history tables."""
        from dataclasses import asdict

        with self._lock:
            self._db.executemany(
                "INSERT INTO order_history VALUES (?, ?, ?, ?)",
                [
                    (day, account.account_id, o.order_id, json.dumps(asdict(o), ensure_ascii=False))
                    for o in account.orders.values()
                ],
            )
            self._db.executemany(
                "INSERT INTO trade_history VALUES (?, ?, ?, ?)",
                [
                    (day, account.account_id, t.traded_id, json.dumps(asdict(t), ensure_ascii=False))
                    for t in account.trades
                ],
            )

    def history_counts(self) -> tuple[int, int]:
        with self._lock:
            o = self._db.execute("SELECT count(*) FROM order_history").fetchone()[0]
            t = self._db.execute("SELECT count(*) FROM trade_history").fetchone()[0]
        return int(o), int(t)

    def close(self) -> None:
        with self._lock:
            self._db.close()
