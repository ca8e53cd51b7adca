"""Sampled logging of refused requests, per client address.

Why: every refused request (a bad head, a missing or wrong key, a rate limit) used to be one log record, so
an outsider sending thousands of keyless requests could flush the rotated log files of everything worth
keeping. Here each address gets ``per_minute`` records a minute (a token bucket); the refusals beyond that
are counted, and the count rides on the address's next logged record (``suppressed``), so nothing is lost
from the totals and the log stays readable. Memory is bounded like the rate limiter's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from qmtgate.security.ratelimit import RateLimiter


class RefusalSampler:
    """Decide per refused request whether to log it; not thread-safe (call it on the event loop)."""

    def __init__(
        self,
        per_minute: int = 20,
        *,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bucket = RateLimiter(per_minute / 60.0, per_minute, max_buckets=max_addresses, clock=clock)
        self._suppressed: dict[str, int] = {}
        self._max = max_addresses
        self.total_suppressed = 0

    def admit(self, address: str) -> int | None:
        """None: do not log this refusal. Else log it, with this many earlier ones suppressed since."""
        if self._bucket.take(address):
            self.total_suppressed += 1
            if address in self._suppressed or len(self._suppressed) < self._max:
                self._suppressed[address] = self._suppressed.get(address, 0) + 1
            return None
        return self._suppressed.pop(address, 0)
