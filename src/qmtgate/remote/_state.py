"""The drop-in's current session (module-level, like xtquant's own connection)."""

from __future__ import annotations

import threading

from qmtgate.remote._session import RemoteSession

_lock = threading.Lock()
_current: RemoteSession | None = None


def bind(session: RemoteSession | None) -> RemoteSession | None:
    """Make ``session`` current; return the previous one."""
    global _current
    with _lock:
        previous, _current = _current, session
    return previous


def current() -> RemoteSession:
    session = _current
    if session is None:
        raise RuntimeError("qmtgate.remote is not connected: call qmtgate.remote.install(url) first")
    return session
