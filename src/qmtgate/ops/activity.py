"""When each market last delivered a tick, for the ``last tick age`` metric and the stale-market alert.

Fed by a :class:`~qmtgate.hub.stream.StreamHub` listener (on the event loop, once per burst); ages are
wall-clock seconds since the burst was published, whatever the source's own clock says.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from qmtgate.hub.ring import markets_of


class MarketActivity:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}

    def listener(self, updates: Sequence[Any]) -> None:
        """Hub listener: remember the publication time per market of tick updates."""
        if not updates or updates[0].channel != "tick":
            return
        now = self._clock()
        for market in markets_of(updates):  # computed once per burst, shared with the fan-out
            self._last[market] = now

    def last(self, market: str) -> float | None:
        return self._last.get(market)

    def age(self, market: str) -> float | None:
        """Seconds since the market's last tick; None before its first."""
        last = self._last.get(market)
        return None if last is None else max(self._clock() - last, 0.0)

    def markets(self) -> list[str]:
        return sorted(self._last)
