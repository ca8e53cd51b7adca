"""Day-scoped cache for reference data: instrument details, sector members, calendars.

QMT refreshes instrument details once per trading day (around 09:00 Asia/Shanghai) and sector lists and
calendars change even less often, so asking xtdata again within the same day only costs executor time that
snapshots need. Entries belong to a *cache day* that rolls over at ``roll_at`` (CST); the first lookup after
the roll reloads. The clock is injectable so that the simulator's clock (and tests) drive the roll.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

from qmtgate.source.coalesce import Coalescer

#: China Standard Time. A fixed offset is exact (no DST since 1991) and needs no tz database on Windows.
CST = dt.timezone(dt.timedelta(hours=8), "CST")

_MISSING = object()


class StaticCache:
    """Map keys to values for the current cache day; concurrent loads of one key share one upstream call."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        roll_at: dt.time = dt.time(9, 0),
        max_entries: int = 200_000,
    ) -> None:
        self._clock = clock
        self._roll_offset = dt.timedelta(hours=roll_at.hour, minutes=roll_at.minute, seconds=roll_at.second)
        self._max_entries = max_entries
        self._day: dt.date | None = None
        self._values: dict[Hashable, Any] = {}
        self._loads: Coalescer[Hashable, Any] = Coalescer()
        self.hits = 0
        self.misses = 0

    def cache_day(self) -> dt.date:
        """The CST calendar date of ``now - roll_at``: 08:59 CST still belongs to the previous cache day."""
        return (dt.datetime.fromtimestamp(self._clock(), CST) - self._roll_offset).date()

    def __len__(self) -> int:
        return len(self._values)

    def clear(self) -> None:
        self._values.clear()

    async def get(self, key: Hashable, loader: Callable[[], Awaitable[Any]]) -> Any:
        """Return the cached value for ``key``, loading it with ``loader()`` if absent this cache day."""
        value = self.peek(key)
        if value is not _MISSING:
            self.hits += 1
            return value
        self.misses += 1
        day = self.cache_day()
        value = await self._loads.run(key, loader)
        self._store(day, key, value)
        return value

    async def get_many(
        self, keys: Iterable[Hashable], loader: Callable[[list[Any]], Awaitable[dict[Any, Any]]]
    ) -> dict[Any, Any]:
        """Return ``{key: value}``; keys not cached are loaded together with one ``loader(missing)`` call.

        Keys absent from the loader's answer are cached as None (an unknown code stays unknown until the
        next roll instead of costing an upstream call on every request).
        """
        result: dict[Any, Any] = {}
        missing: list[Any] = []
        for key in keys:
            value = self.peek(key)
            if value is _MISSING:
                missing.append(key)
            else:
                result[key] = value
        self.hits += len(result)
        if missing:
            self.misses += len(missing)
            day = self.cache_day()
            loaded = await loader(missing)
            for key in missing:
                value = loaded.get(key)
                self._store(day, key, value)
                result[key] = value
        return result

    def peek(self, key: Hashable) -> Any:
        """Return the cached value or the module's ``_MISSING`` sentinel; rolls the day if needed."""
        self._roll_if_needed()
        return self._values.get(key, _MISSING)

    def _roll_if_needed(self) -> None:
        day = self.cache_day()
        if day != self._day:
            self._values.clear()
            self._day = day

    def _store(self, day: dt.date, key: Hashable, value: Any) -> None:
        # A load that started before a roll must not plant yesterday's value into today's cache.
        self._roll_if_needed()
        if day != self._day:
            return
        if len(self._values) >= self._max_entries:
            self._values.clear()  # crude but bounded; reference data fits far below the default bound
        self._values[key] = value


def is_missing(value: Any) -> bool:
    return value is _MISSING
