"""The state behind the simulated ``xtdata`` module: the market, its faults, the "local data" store,
the live session and its publisher, and the subscription registry.

The real SDK keeps this state in a native client object per process; here it lives in one
:class:`SimEnv`, bound by :func:`qmtgate.sim.install` (or created with defaults on first use).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..clock import MarketClock
from ..datadir import JsonDoc
from ..faults import FaultInjector
from ..live import CodeSessions, LiveSession, Publisher, Subscription
from ..market import MarketTime, SimMarket

#: Minute-type periods share the base they are built from in QMT's local store.
BASE_PERIOD = {
    "1m": "1m",
    "5m": "5m",
    "15m": "5m",
    "30m": "5m",
    "60m": "1h",
    "1h": "1h",
    "1d": "1d",
    "1w": "1d",
    "1mon": "1d",
    "1q": "1d",
    "1hy": "1d",
    "1y": "1d",
    "tick": "tick",
}
#: Which downloaded bases can serve a base (finer minute data builds coarser minute bars).
SERVES = {"1m": ("1m",), "5m": ("5m", "1m"), "1h": ("1h", "5m", "1m"), "1d": ("1d",), "tick": ("tick",)}


class LocalStore:
    """What has been "downloaded" into QMT's local cache: (code, base period) -> set of session indices.

    Daily data is present for every instrument from the start (as a QMT client that has run its
    after-close download); minute and tick history need ``download_history_data*`` first, as on real QMT.
    """

    def __init__(self, market: SimMarket, daily_preloaded: bool = True, data_dir: Path | None = None) -> None:
        self.m = market
        self.daily_preloaded = daily_preloaded
        self._have: dict[tuple[str, str], set[int]] = {}
        self._lock = threading.Lock()
        #: With a data directory, downloads are kept in ``seed-<seed>/downloads.json`` there, shared
        #: by every process using it ("code|base" -> [[first, last], ...] session-index ranges).
        self._doc: JsonDoc | None = None
        if data_dir is not None:
            folder = Path(data_dir) / f"seed-{market.seed}"
            folder.mkdir(parents=True, exist_ok=True)
            self._doc = JsonDoc(folder / "downloads.json")

    def add(self, code: str, base: str, days: range | list[int]) -> None:
        self.add_many([(code, base, days)])

    def add_many(self, entries: list[tuple[str, str, range | list[int]]]) -> None:
        """Record downloads; with a data directory, one locked read-merge-write for the whole batch
        (download_history_data2 flushes in batches: one write per code would be quadratic)."""
        self.remember(entries)
        self.persist(entries)

    def remember(self, entries: list[tuple[str, str, range | list[int]]]) -> None:
        """This process sees the downloads at once."""
        with self._lock:
            for code, base, days in entries:
                self._have.setdefault((code, base), set()).update(days)

    def persist(self, entries: list[tuple[str, str, range | list[int]]]) -> None:
        """Other processes see them once written to the data directory."""
        if self._doc is None or not entries:
            return

        def merge(doc: dict) -> dict:
            for code, base, days in entries:
                key = f"{code}|{base}"
                doc[key] = _ranges(set(_expand(doc.get(key, []))) | set(days))
            return doc

        self._doc.update(merge, {})

    def _shared(self, code: str, base: str) -> set[int]:
        if self._doc is None:
            return set()
        return set(_expand(self._doc.read({}).get(f"{code}|{base}", [])))

    def days(self, code: str, period: str) -> set[int] | None:
        """Session indices with local data for ``period``; None means "all" (preloaded daily)."""
        base = BASE_PERIOD.get(period)
        if base is None:
            return set()
        if base == "1d" and self.daily_preloaded:
            return None
        with self._lock:
            out: set[int] = set()
            for b in SERVES[base]:
                out |= self._have.get((code, b), set())
        for b in SERVES[base]:
            out |= self._shared(code, b)
        return out


def _ranges(days: set[int]) -> list[list[int]]:
    """Sorted session indices as [first, last] runs (a year of minute downloads is one pair)."""
    out: list[list[int]] = []
    for d in sorted(days):
        if out and d == out[-1][1] + 1:
            out[-1][1] = d
        else:
            out.append([d, d])
    return out


def _expand(runs: list[list[int]]) -> list[int]:
    return [d for first, last in runs for d in range(first, last + 1)]


class UserSectors:
    """Sectors the user creates (create_sector/add_sector/...), kept in ``sectors.json`` of the data
    directory (or in memory without one) so every process sees the same edits, as QMT's datadir."""

    def __init__(self, data_dir: Path | None) -> None:
        self._doc = JsonDoc(Path(data_dir) / "sectors.json") if data_dir is not None else None
        self._mem: dict = {"sectors": {}, "folders": {}}
        self._lock = threading.Lock()

    def _read(self) -> dict:
        return self._doc.read({"sectors": {}, "folders": {}}) if self._doc else self._mem

    def _update(self, change: Callable[[dict], dict]) -> dict:
        if self._doc is not None:
            return self._doc.update(change, {"sectors": {}, "folders": {}})
        with self._lock:
            self._mem = change(self._mem)
            return self._mem

    def names(self) -> list[str]:
        return list(self._read()["sectors"])

    def members(self, name: str) -> list[str] | None:
        entry = self._read()["sectors"].get(name)
        return None if entry is None else list(entry["stocks"])

    def info(self, name: str) -> dict | list:
        doc = self._read()
        if name:
            entry = doc["sectors"].get(name)
            return {} if entry is None else {"sector": name, "parent": entry["parent"]}
        return [{"sector": k, "parent": v["parent"]} for k, v in doc["sectors"].items()]

    def create(self, parent: str, name: str, overwrite: bool, folder: bool) -> str:
        """Create a sector or folder; without ``overwrite`` an existing name gets a numbered one
        (the real SDK answers with the name it created)."""
        result: list[str] = []

        def change(doc: dict) -> dict:
            kind = "folders" if folder else "sectors"
            final = name
            if not overwrite:
                k = 1
                while final in doc[kind]:
                    final = f"{name}{k}"
                    k += 1
            doc[kind][final] = {"parent": parent, "stocks": []} if not folder else {"parent": parent}
            result.append(final)
            return doc

        self._update(change)
        return result[0]

    def add(self, name: str, stocks: list[str]) -> None:
        def change(doc: dict) -> dict:
            entry = doc["sectors"].setdefault(name, {"parent": "", "stocks": []})
            entry["stocks"] += [c for c in stocks if c not in entry["stocks"]]
            return doc

        self._update(change)

    def remove_stocks(self, name: str, stocks: list[str]) -> bool:
        found: list[bool] = []

        def change(doc: dict) -> dict:
            entry = doc["sectors"].get(name)
            found.append(entry is not None)
            if entry is not None:
                entry["stocks"] = [c for c in entry["stocks"] if c not in stocks]
            return doc

        self._update(change)
        return found[0]

    def remove(self, name: str) -> None:
        def change(doc: dict) -> dict:
            doc["sectors"].pop(name, None)
            doc["folders"].pop(name, None)
            return doc

        self._update(change)

    def reset(self, name: str, stocks: list[str]) -> bool:
        found: list[bool] = []

        def change(doc: dict) -> dict:
            entry = doc["sectors"].get(name)
            found.append(entry is not None)
            if entry is not None:
                entry["stocks"] = list(dict.fromkeys(stocks))
            return doc

        self._update(change)
        return found[0]


class SimEnv:
    """Everything one simulated QMT instance holds."""

    def __init__(
        self,
        market: SimMarket | None = None,
        *,
        seed: int = 0,
        clock: MarketClock | None = None,
        daily_preloaded: bool = True,
        download_seconds_per_code: float = 0.002,
        data_dir: Path | None = None,
    ) -> None:
        self.market = market or SimMarket(seed=seed, clock=clock)
        if data_dir is not None:
            self.market.use_data_dir(data_dir)
        self.faults = FaultInjector()
        #: The shared data directory (None: this instance keeps its state in memory only).
        self.data_dir = data_dir
        self.store = LocalStore(self.market, daily_preloaded, data_dir)
        self.user_sectors = UserSectors(data_dir)
        self.session = LiveSession(self.market)
        self.code_sessions = CodeSessions(self.market)
        self.download_seconds_per_code = download_seconds_per_code
        self.sector_data_downloaded = False
        self._seq = itertools.count(1)
        self._lock = threading.RLock()
        self.status_callback: Callable[[dict], None] | None = None
        self.connected = False
        self.publisher = Publisher(self.market, self.session, self.faults, self._bar_payload)
        self.faults.add_listener(self._on_fault_status)

    # ------------------------------------------------------------------ time & session

    def now(self) -> MarketTime:
        return self.market.time()

    def sync(self) -> MarketTime:
        """Bring the live session to the clock and return the time it reached.

        The slots it passes are pushed to the subscriptions (through the publisher) as they would be
        by a running QMT: a snapshot query between two publisher wake-ups must not swallow the pushes
        of the slots it moved past. This was a real bug: a ``get_full_tick`` right after the clock
        moved left subscribers without the updates of those slots. While the publisher thread is busy
        running, the query wakes it and waits briefly for it (Publisher.catch_up), then reads what was
        delivered, as QMT's client answers from what it has received.
        """
        if self.publisher.stepping_here:  # a query from inside a push: the session is where it must be
            return self.now()
        if self.publisher.running:
            t = self.now()
            self.publisher.catch_up(t)
            if self.session.day >= 0:  # else nothing was ever delivered: step once, below
                return t
        return self.publisher.step()

    #: Snapshot queries of at most this many codes are answered per code (:class:`CodeSessions`) while
    #: nothing needs the whole-market session yet (no subscription, today's session not built). Per code,
    #: a cold process pays ~1 ms a code (1,000 codes ~0.85 s) where the whole market's day costs ~5-8 s
    #: (bench/sim_first_query.py); with a warm day cache both answer in tens of milliseconds.
    LAZY_MAX_CODES = 1000

    def latest_ticks(self, want: np.ndarray) -> tuple[list[int], list[dict]]:
        """The latest snapshot of each instrument in ``want`` (sorted indices) that has one today:
        (instruments, tick dicts), ascending. A few codes in a process that has not built today's
        whole market are answered per code; else the whole-market session answers (and pushes the
        slots it passes to the subscriptions, see :meth:`sync`)."""
        t = self.now()
        if (
            len(want) <= self.LAZY_MAX_CODES
            and t.day_index >= 0
            and self.session.day != t.day_index
            and not self.publisher.subscriptions()
        ):
            return self.code_sessions.ticks(want, t)
        self.code_sessions.clear()
        self.sync()
        rows = self.session.rows_with_data(want)
        if not len(rows):
            return [], []
        return rows.tolist(), self.session.tick_dicts(rows)

    # ------------------------------------------------------------------ subscriptions

    def next_seq(self) -> int:
        return next(self._seq)

    def subscribe(self, sub: Subscription) -> int:
        self.publisher.add(sub)
        return sub.sub_id

    def unsubscribe(self, seq: int) -> bool:
        return self.publisher.remove(seq)

    def subscribed_rows(self) -> np.ndarray:
        """Instruments covered by any live subscription (today's data is visible for them)."""
        mask = np.zeros(len(self.market.universe), bool)
        for sub in self.publisher.subscriptions():
            mask |= sub.rows
        return mask

    def _bar_payload(self, sub: Subscription, slot: int) -> dict | None:
        from .xtdata import _bar_push  # K-line pushes are built by the facade, in xtquant's shape

        return _bar_push(sub, slot)

    # ------------------------------------------------------------------ connection status

    def _on_fault_status(self, status: str) -> None:
        if status == "disconnected":
            self.connected = False
        cb = self.status_callback
        if cb is not None:
            try:
                cb({"address": "127.0.0.1:58610", "status": status})
            except Exception:  # as the SDK's wrapper: a broken user callback is printed, not raised
                import traceback

                print("subscribe callback error:")
                traceback.print_exc()

    def close(self) -> None:
        self.publisher.stop()
        broker = getattr(self, "broker", None)  # the paper broker behind xttrader, if one was used
        if broker is not None:
            broker.close()


_ENV: SimEnv | None = None
_ENV_LOCK = threading.Lock()


def bind(env: SimEnv | None) -> None:
    """Make ``env`` the instance the simulated ``xtdata`` module talks to (None: forget it)."""
    global _ENV
    with _ENV_LOCK:
        old = _ENV
        _ENV = env
    if old is not None and old is not env:
        old.close()


def current() -> SimEnv:
    """The bound environment, created with defaults (seed 0, live clock) on first use."""
    global _ENV
    with _ENV_LOCK:
        if _ENV is None:
            _ENV = SimEnv()
        return _ENV
