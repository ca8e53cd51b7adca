"""What has been downloaded into QMT's local store, per (code, base period).

xtdata reads (``get_market_data_ex``) only see local data: minute and tick history is empty until
``download_history_data2`` fetched it, and a daily series ends wherever the last download left it. So before
a read the gateway asks the ledger which session ranges are missing and downloads exactly those.

Coverage is kept in session *days* (Asia/Shanghai dates): ``lo`` (None = from the first available day)
to ``hi`` (the last complete session at download time). Each change bumps the key's ``version`` so that
caches built on an older state of the store can tell they are stale. The ledger lives in memory: after a
restart the first reads download again, incrementally.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

#: Period -> the stored base period xtdata builds it from (xtquant-api.md §3.1: download 1m for < 5m,
#: 5m for >= 5m minute periods, 1d for daily and longer).
DOWNLOAD_BASE: dict[str, str] = {
    "1m": "1m",
    "5m": "5m",
    "15m": "5m",
    "30m": "5m",
    "60m": "5m",
    "1h": "5m",
    "1d": "1d",
    "1w": "1d",
    "1mon": "1d",
    "1q": "1d",
    "1hy": "1d",
    "1y": "1d",
    "tick": "tick",
}

Range = tuple["dt.date | None", dt.date]


@dataclass(frozen=True)
class Coverage:
    lo: dt.date | None  # None: from the first day the source has
    hi: dt.date
    version: int


class DownloadLedger:
    """Thread-safe map (code, base period) -> :class:`Coverage`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._coverage: dict[tuple[str, str], Coverage] = {}
        self._version = 0

    def coverage(self, code: str, base: str) -> Coverage | None:
        with self._lock:
            return self._coverage.get((code, base))

    def version(self, code: str, base: str) -> int:
        with self._lock:
            entry = self._coverage.get((code, base))
            return entry.version if entry is not None else 0

    def missing(self, code: str, base: str, lo: dt.date | None, hi: dt.date) -> list[Range]:
        """Ranges to download so that ``[lo, hi]`` is covered (``lo=None``: from the first day)."""
        entry = self.coverage(code, base)
        if entry is None:
            return [(lo, hi)]
        gaps: list[Range] = []
        if entry.lo is not None and (lo is None or lo < entry.lo):
            gaps.append((lo, entry.lo))
        if hi > entry.hi:
            gaps.append((entry.hi, hi))
        return gaps

    def record(self, code: str, base: str, lo: dt.date | None, hi: dt.date) -> None:
        """Note that ``[lo, hi]`` was downloaded; ranges that touch the known coverage extend it."""
        with self._lock:
            self._version += 1
            entry = self._coverage.get((code, base))
            if entry is None or not _touches(entry, lo, hi):
                self._coverage[(code, base)] = Coverage(lo, hi, self._version)
                return
            new_lo = None if lo is None or entry.lo is None else min(lo, entry.lo)
            self._coverage[(code, base)] = Coverage(new_lo, max(hi, entry.hi), self._version)

    def clear(self) -> None:
        with self._lock:
            self._coverage.clear()
            self._version += 1


def _touches(entry: Coverage, lo: dt.date | None, hi: dt.date) -> bool:
    starts_before_end = lo is None or lo <= entry.hi
    ends_after_start = entry.lo is None or hi >= entry.lo
    return starts_before_end and ends_after_start
