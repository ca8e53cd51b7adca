"""Temporary lockout of a client address after repeated bad keys (slows down key guessing).

``failures`` bad keys within ``window`` seconds lock the address for ``duration`` seconds. While locked,
every request from it is refused with 429 ``locked_out`` and ``Retry-After``, even with a good key, so that a
guesser learns nothing from the answers. Missing keys do not count (a misconfigured client is not an
attacker); presented-but-wrong keys do. A good key does not reset the count (an attacker holding one
key would otherwise guess others forever, 9 wrong + 1 good at a time); failures leave the count once they
are older than ``window``. Memory is bounded by ``max_addresses``.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class Lockout:
    def __init__(
        self,
        failures: int = 10,
        window: float = 60.0,
        duration: float = 300.0,
        *,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.window = window
        self.duration = duration
        self._max = max_addresses
        self._clock = clock
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()
        self._locked: dict[str, float] = {}  # address -> unlock time
        self.lockouts = 0  # total lockouts started (metrics)

    def locked_for(self, address: str) -> float:
        """Seconds the address stays locked (0.0 when it is not)."""
        until = self._locked.get(address)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._locked[address]
            return 0.0
        return left

    def failure(self, address: str) -> bool:
        """Record a bad key; True when this failure started a lockout."""
        now = self._clock()
        recent = self._recent.get(address)
        if recent is None:
            recent = self._recent[address] = deque()
            if len(self._recent) > self._max:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end(address)
        recent.append(now)
        while recent and now - recent[0] > self.window:
            recent.popleft()
        if len(recent) >= self.failures:
            recent.clear()
            self._locked[address] = now + self.duration
            self.lockouts += 1
            if len(self._locked) > self._max:  # drop expired locks first
                for addr in [a for a, t in self._locked.items() if t <= now]:
                    del self._locked[addr]
            return True
        return False
