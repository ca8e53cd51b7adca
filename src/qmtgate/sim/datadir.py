"""The simulator's data directory, shared by every process on the machine as QMT's datadir is.

Why: real QMT keeps downloaded history in its data directory, read by every xtquant process on the PC;
a simulator that kept it per process made a spawned worker see 0 bars where its parent saw 241.
Downloads (which sessions of which code/period are "local"), user sector edits and the clock's anchor
live here as small JSON documents.

Location: ``install(data_dir=...)``, else the ``QMTGATE_SIM_DATA_DIR`` environment variable, else the
per-user data directory (``platformdirs.user_data_dir("qmtgate")/sim``). Writers and readers hold a
``filelock`` lock (works on Windows) and writes go to a temporary file moved into place, so concurrent
processes never see half a document.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

ENV_VAR = "QMTGATE_SIM_DATA_DIR"


def resolve(path: str | os.PathLike[str] | None = None) -> Path:
    """The data directory to use (created if missing)."""
    if path is None:
        path = os.environ.get(ENV_VAR) or None
    if path is None:
        import platformdirs

        path = Path(platformdirs.user_data_dir("qmtgate", appauthor=False)) / "sim"
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out


class JsonDoc:
    """One JSON document in the data directory, read and updated under an inter-process lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(str(path) + ".lock", timeout=30)
        self._cache: tuple[tuple[int, int, int], Any] | None = None

    def _stamp(self) -> tuple[int, int, int] | None:
        """Identity of the file's current version: os.replace gives every write a new file (inode /
        NTFS file index), so equal stamps mean the same content even within one mtime tick."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def read(self, default: Any) -> Any:
        """The document (``default`` if absent); re-read only when the file changed."""
        stamp = self._stamp()
        if stamp is None:
            return default
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        with self._lock:
            stamp = self._stamp()
            if stamp is None:
                return default
            value = json.loads(self.path.read_text(encoding="utf-8"))
        self._cache = (stamp, value)
        return value

    def update(self, change: Any, default: Any) -> Any:
        """Apply ``change(document) -> document`` atomically across processes; returns the result."""
        with self._lock:
            current = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else default
            new = change(current)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(json.dumps(new, ensure_ascii=False, separators=(",", ":")))
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        self._cache = None
        return new
