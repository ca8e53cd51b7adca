"""Where a paper account lives between runs: one SQLite file (stdlib ``sqlite3``, WAL journal).

Same rule as recordings: a missing file is created only with ``create=True`` (``--create``), so a typo
in a path fails loudly instead of silently starting a fresh account. Rows: one per account (cash and
counters), per position, per order and per trade of the current session (JSON each), so a change
rewrites only what it touched; at the day change a session's orders and trades move to history
tables, so a paper account can run for weeks.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from .model import Account, Order, Position, Trade

SCHEMA_VERSION = "1"
_BOOKS = ("positions", "orders", "trades")  # stored in their own tables


class AccountStoreMissing(FileNotFoundError):
    """The account file does not exist and ``create`` was not asked."""


def _dumps(obj: Any) -> str:
    return json.dumps(asdict(obj), ensure_ascii=False)


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
            CREATE TABLE IF NOT EXISTS positions (
                account_id TEXT, stock_code TEXT, state TEXT NOT NULL, PRIMARY KEY (account_id, stock_code));
            CREATE TABLE IF NOT EXISTS orders (
                account_id TEXT, order_id INTEGER, state TEXT NOT NULL, PRIMARY KEY (account_id, order_id));
            CREATE TABLE IF NOT EXISTS trades (
                account_id TEXT, traded_id TEXT, state TEXT NOT NULL, PRIMARY KEY (account_id, traded_id));
            CREATE TABLE IF NOT EXISTS order_history (day TEXT, account_id TEXT, order_id INTEGER, state TEXT);
            CREATE TABLE IF NOT EXISTS trade_history (day TEXT, account_id TEXT, traded_id TEXT, state TEXT);
            """
        )
        found = self.get_meta("schema_version")
        if found is None:
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        elif found != SCHEMA_VERSION:
            raise ValueError(
                f"{self.path}: paper account schema {found}, this qmtgate reads {SCHEMA_VERSION}"
            )

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def load_accounts(self) -> dict[str, Account]:
        with self._lock:
            accounts = {
                aid: Account(**json.loads(state))
                for aid, state in self._db.execute("SELECT account_id, state FROM accounts")
            }
            for aid, state in self._db.execute("SELECT account_id, state FROM positions"):
                p = Position(**json.loads(state))
                accounts[aid].positions[p.stock_code] = p
            for aid, state in self._db.execute("SELECT account_id, state FROM orders ORDER BY order_id"):
                o = Order(**json.loads(state))
                accounts[aid].orders[o.order_id] = o
            for aid, state in self._db.execute("SELECT account_id, state FROM trades ORDER BY rowid"):
                accounts[aid].trades.append(Trade(**json.loads(state)))
        return accounts

    def save(
        self,
        accounts: list[Account],
        orders: list[Order],
        positions: list[tuple[str, Position | str]],
        trades: list[Trade],
        meta: dict[str, Any],
    ) -> None:
        """Write what changed, in one transaction (all or nothing). ``positions`` are (account_id,
        Position) to write or (account_id, stock_code) to delete."""
        scalars = [
            (
                a.account_id,
                json.dumps({f.name: getattr(a, f.name) for f in fields(a) if f.name not in _BOOKS}),
            )
            for a in accounts
        ]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO accounts VALUES (?, ?)", scalars)
                self._db.executemany(
                    "INSERT OR REPLACE INTO orders VALUES (?, ?, ?)",
                    [(o.account_id, o.order_id, _dumps(o)) for o in orders],
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO trades VALUES (?, ?, ?)",
                    [(t.account_id, t.traded_id, _dumps(t)) for t in trades],
                )
                for aid, p in positions:
                    if isinstance(p, Position):
                        self._db.execute(
                            "INSERT OR REPLACE INTO positions VALUES (?, ?, ?)",
                            (aid, p.stock_code, _dumps(p)),
                        )
                    else:
                        self._db.execute(
                            "DELETE FROM positions WHERE account_id = ? AND stock_code = ?", (aid, p)
                        )
                self._db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()]
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def archive_day(self, day: str, account: Account) -> None:
        """Move a finished session's orders and trades to the history tables."""
        aid = account.account_id
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO order_history VALUES (?, ?, ?, ?)",
                    [(day, aid, o.order_id, _dumps(o)) for o in account.orders.values()],
                )
                self._db.executemany(
                    "INSERT INTO trade_history VALUES (?, ?, ?, ?)",
                    [(day, aid, t.traded_id, _dumps(t)) for t in account.trades],
                )
                self._db.execute("DELETE FROM orders WHERE account_id = ?", (aid,))
                self._db.execute("DELETE FROM trades WHERE account_id = ?", (aid,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def history_counts(self) -> tuple[int, int]:
        with self._lock:
            o = self._db.execute("SELECT count(*) FROM order_history").fetchone()[0]
            t = self._db.execute("SELECT count(*) FROM trade_history").fetchone()[0]
        return int(o), int(t)

    def close(self) -> None:
        with self._lock:
            self._db.close()
