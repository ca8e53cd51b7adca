"""Protective orders on disk: a ``protections`` table in the audit database (same file, same commit and
flush rules, ``trading.audit_sync``), written before the gateway answers or sends, so a restart forgets
none of them and knows which trigger it was in the middle of."""

from __future__ import annotations

import json
import time

from qmtgate.source.trading.audit import AuditTrail
from qmtgate.source.trading.protect_rules import Protection

_SCHEMA = """
CREATE TABLE IF NOT EXISTS protections (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
"""


class ProtectionStore:
    def __init__(self, audit: AuditTrail) -> None:
        self.audit = audit
        with audit.connection() as db:
            db.executescript(_SCHEMA)

    def save(self, p: Protection) -> None:
        """Insert or replace ``p`` (durable on return)."""
        p.updated_ms = int(time.time() * 1000)
        body = json.dumps(p.to_dict(), ensure_ascii=False, default=str, sort_keys=True)
        with self.audit.connection() as db:
            db.execute(
                "INSERT INTO protections (id, status, body, updated_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET status = excluded.status, body = excluded.body, "
                "updated_ms = excluded.updated_ms",
                (p.id, p.status, body, p.updated_ms),
            )

    def load(self) -> list[Protection]:
        """Every protection ever stored, oldest first."""
        with self.audit.connection() as db:
            rows = db.execute("SELECT body FROM protections ORDER BY rowid").fetchall()
        return [Protection.from_dict(json.loads(body)) for (body,) in rows]
