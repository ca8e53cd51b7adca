"""Last-value quote cache fed by one whole-market subscription.

Why: a whole-market snapshot must not cost a ``get_full_tick`` per request (thousands of codes, on the one
xtdata thread). One ``subscribe_whole_quote(['SH', 'SZ', 'BJ'])`` delivers the full snapshot first and then
the codes that changed, and the cache keeps the latest value per code, both raw (xtquant's dict, for the
compat routes and the xtquant drop-in) and as a prebuilt normalized row (so answering is just encoding).

Threading: xtquant calls :meth:`QuoteCache.push` on its own threads. ``push`` only merges the batch into a
pending dict under a lock (conflating to the latest value per code, so the backlog is bounded by the number
of instruments) and wakes the pump. The pump (:meth:`QuoteCache.run`, one task on the event loop) swaps the
pending dict out and applies it in chunks, yielding to the loop between chunks so a 5,000-code push never
stalls other requests. Readers on the loop never see a half-applied row.

The streaming issue extends this with sequence numbers and fan-out to clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qmtgate.codes import classify
from qmtgate.source.convert import tick_rows


@dataclass(frozen=True)
class CacheStats:
    live: bool
    codes: int
    pushes: int
    applied: int  # code updates applied
    conflated: int  # updates replaced by a newer one before the pump applied them
    pending: int
    first_push_ms: int | None
    last_push_ms: int | None
    epoch: int | None  # source connection epoch the cached data belongs to

    def to_dict(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "codes": self.codes,
            "pushes": self.pushes,
            "applied": self.applied,
            "conflated": self.conflated,
            "pending": self.pending,
            "first_push_ms": self.first_push_ms,
            "last_push_ms": self.last_push_ms,
        }


#: How long a burst's raw ticks are kept after use before they are freed (see :func:`retire_later`).
RETIRE_SECONDS = 1.0


def retire_later(objects: list[Any]) -> None:
    """Free ``objects`` (by clearing the list) a moment from now, on the running loop.

    A whole-market burst from xtquant is ~5,400 dicts with their ladder lists, ~250,000 objects; whoever
    drops the last reference pays ~10-20 ms of the event loop to free them. The quote cache and the
    stream's pump would drop them exactly when the next burst arrives, i.e. on the path of its frames.
    Deferred by :data:`RETIRE_SECONDS` (bursts come every 3 s) they are freed while the loop is idle.
    """
    if not objects:
        return
    try:
        asyncio.get_running_loop().call_later(RETIRE_SECONDS, objects.clear)
    except RuntimeError:  # no running loop (a test applying by hand): free now
        objects.clear()


RowsBuilder = Callable[[Sequence[str], Sequence[Mapping[str, Any]]], list[dict[str, Any]]]


class QuoteCache:
    """Latest tick per code; ``push`` from any thread, read on the event loop."""

    def __init__(
        self,
        *,
        apply_chunk: int = 1000,
        rows_builder: RowsBuilder = tick_rows,
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._apply_chunk = apply_chunk
        #: awaited before each apply: the gateway passes the stream hub's ``settled``, so a burst reaches
        #: the cache after its frames are on their way (~8 ms of the loop less between the clients'
        #: sends on the 50-client bench); a snapshot request sees the burst a few ms later instead
        self._settle = settle
        self._rows_builder = rows_builder
        self._lock = threading.Lock()
        self._pending: dict[str, Mapping[str, Any]] = {}
        self._pending_epoch: int | None = None
        self._applying = False
        self._raw: dict[str, Mapping[str, Any]] = {}
        self._rows: dict[str, dict[str, Any]] = {}
        self._by_market: dict[str, dict[str, None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._expected_epoch: int | None = None
        self._data_epoch: int | None = None
        self._connected: Callable[[], bool] = lambda: True
        self.pushes = 0
        self.applied = 0
        self.conflated = 0
        self.first_push_ms: int | None = None
        self.last_push_ms: int | None = None
        #: moves when a burst starts being applied and again when it is applied: an answer built from the
        #: cache under one version shows exactly that data (api.burst_answers)
        self.version = 0

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self, connected: Callable[[], bool] | None = None) -> None:
        """Start the pump on the running loop; ``connected`` tells whether pushes can still arrive."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if connected is not None:
            self._connected = connected
        self._task = asyncio.create_task(self.run(), name="qmtgate-quote-pump")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._loop = None

    def expect(self, epoch: int) -> None:
        """A subscription for connection ``epoch`` was made: data is live once its first push is applied."""
        self._expected_epoch = epoch

    # -- producer side (any thread) --------------------------------------------------------------------

    def pusher(self, epoch: int) -> Callable[[Any], None]:
        """The callback to hand to ``subscribe_whole_quote`` for a subscription of connection ``epoch``."""

        def push(data: Any) -> None:
            self.push(data, epoch)

        return push

    def push(self, data: Any, epoch: int | None = None) -> None:
        """Merge one ``{code: tick}`` batch into the pending set and wake the pump. Never blocks for long."""
        if not isinstance(data, dict) or not data:
            return
        with self._lock:
            wake = not self._pending
            before = len(self._pending)
            self._pending.update(data)
            self.conflated += before + len(data) - len(self._pending)
            if epoch is not None:
                self._pending_epoch = (
                    epoch if self._pending_epoch is None else max(epoch, self._pending_epoch)
                )
            self.pushes += 1
            now = int(time.time() * 1000)
            self.last_push_ms = now
            if self.first_push_ms is None:
                self.first_push_ms = now
        loop, event = self._loop, self._wake
        if wake and loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # loop closed: nobody reads any more
                loop.call_soon_threadsafe(event.set)

    # -- the pump (event loop) -------------------------------------------------------------------------

    async def run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._settle is not None:
                await self._settle()
            await self.apply_pending()

    def quiet(self) -> bool:
        """No push waits to be applied and none is being applied."""
        return not self._pending and not self._applying

    async def apply_pending(self) -> int:
        """Apply everything pending now; returns the number of codes applied.

        A whole-market push is ~5,400 codes every 3 s on the same loop as the stream's fan-out, so the
        work is dict and set operations at C speed (a Python loop per code cost as much loop time as
        the stream's own publish); only new codes and codes with a converted row are visited one by one.
        """
        with self._lock:
            batch, self._pending = self._pending, {}
            epoch, self._pending_epoch = self._pending_epoch, None
        if not set(map(type, batch.values())) <= {dict}:  # rare: drop values that are not ticks
            batch = {code: tick for code, tick in batch.items() if isinstance(tick, Mapping)}
        items = list(batch.items())
        retired: list[list[Any]] = []
        self._applying = True
        self.version += 1
        try:
            await self._apply(items, retired)
        finally:
            self._applying = False
            self.version += 1
        self.applied += len(items)
        retire_later(retired)  # the previous burst's ticks: freed once this burst's frames are out
        if epoch is not None and items:
            self._data_epoch = epoch if self._data_epoch is None else max(epoch, self._data_epoch)
        return len(items)

    async def _apply(self, items: list[tuple[str, Mapping[str, Any]]], retired: list[list[Any]]) -> None:
        """Apply ``items`` in chunks of ``apply_chunk``, yielding between them; the replaced ticks go to
        ``retired``."""
        raw, rows, by_market = self._raw, self._rows, self._by_market
        for i in range(0, len(items), self._apply_chunk):
            chunk = dict(items[i : i + self._apply_chunk])
            new = chunk.keys() - raw.keys()
            if new:  # in push order: whole-market listings keep the source's order
                for code in chunk:
                    if code in new:
                        by_market.setdefault(code.rpartition(".")[2], {})[code] = None
            retired.append(list(map(raw.get, chunk)))  # the ticks this chunk replaces
            raw.update(chunk)
            for code in chunk.keys() & rows.keys():
                del rows[code]  # converted again on the next read (see rows())
            if i + self._apply_chunk < len(items):
                await asyncio.sleep(0)

    # -- readers (event loop) --------------------------------------------------------------------------

    def is_live(self) -> bool:
        """True when the cache holds data of the current subscription and the source is connected."""
        return (
            self._expected_epoch is not None
            and self._data_epoch == self._expected_epoch
            and bool(self._raw)
            and self._connected()
        )

    def raw_tick(self, code: str) -> Mapping[str, Any] | None:
        return self._raw.get(code)

    def raw(self, codes: Iterable[str]) -> dict[str, Mapping[str, Any]]:
        raw = self._raw
        return {code: raw[code] for code in codes if code in raw}

    def rows(self, codes: Iterable[str]) -> tuple[list[dict[str, Any]], list[str]]:
        """Normalized rows for ``codes`` (in order) and the codes the cache has no row for.

        Rows are made on read, for all stale codes of the request in one column-wise batch, and kept
        until the code's next tick: a push costs the event loop only dict stores, so it never delays
        the stream's fan-out, and a burst is converted at most once however often it is read.
        """
        codes = list(codes)
        rows, raw = self._rows, self._raw
        stale = [code for code in codes if code not in rows and code in raw]
        if stale:
            ticks = [raw[code] for code in stale]
            try:
                fresh: list[dict[str, Any] | None] = list(self._rows_builder(stale, ticks))
            except Exception:  # one malformed tick must not hide the others: row by row
                fresh = [
                    _one(self._rows_builder, code, tick) for code, tick in zip(stale, ticks, strict=True)
                ]
            for code, row in zip(stale, fresh, strict=True):
                if row is not None:
                    rows[code] = row
        found: list[dict[str, Any]] = []
        missing: list[str] = []
        for code in codes:
            row = rows.get(code)
            if row is None:
                missing.append(code)
            else:
                found.append(row)
        return found, missing

    def codes(self, markets: Sequence[str] | None = None, kinds: Sequence[str] | None = None) -> list[str]:
        """Cached codes of ``markets`` (all when None), filtered to instrument ``kinds`` (all when None)."""
        selected: list[str] = []
        for market in markets or sorted(self._by_market):
            selected.extend(self._by_market.get(market, ()))
        if kinds:
            wanted = set(kinds)
            selected = [code for code in selected if classify(code) in wanted]
        return selected

    def stats(self) -> CacheStats:
        with self._lock:
            pending = len(self._pending)
        return CacheStats(
            live=self.is_live(),
            codes=len(self._raw),
            pushes=self.pushes,
            applied=self.applied,
            conflated=self.conflated,
            pending=pending,
            first_push_ms=self.first_push_ms,
            last_push_ms=self.last_push_ms,
            epoch=self._data_epoch,
        )


def _one(build: RowsBuilder, code: str, tick: Mapping[str, Any]) -> dict[str, Any] | None:
    try:
        return build([code], [tick])[0]
    except Exception:
        return None
