"""Token buckets keyed by API key id or client address.

A bucket holds up to ``burst`` tokens and gains ``rate`` per second; a request takes one. When it is empty
the caller is told how long until the next token (the ``Retry-After`` it sends). Buckets of idle keys are
evicted once more than ``max_buckets`` exist, so a flood of spoofed-looking addresses cannot grow memory
without bound (an evicted bucket comes back full, which only errs on the side of letting a request in).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """Many token buckets; :meth:`take` is O(1) and not thread-safe (call it on the event loop)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_buckets: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._max = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, rate: float | None = None, burst: int | None = None, cost: float = 1.0) -> float:
        """Take ``cost`` tokens for ``key``: 0.0 if allowed, else seconds until the request may go.

        A request may go once the bucket holds ``min(cost, burst)`` tokens; it then takes all of ``cost``,
        possibly leaving the bucket in debt, so one request dearer than the bucket is possible from a full
        bucket, and the next waits until the debt is paid off (the cost-weighted limiter).
        """
        rate = rate or self.rate
        burst = burst or self.burst
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(burst), now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
        need = min(cost, float(burst))
        if bucket.tokens >= need:
            bucket.tokens -= cost
            return 0.0
        return (need - bucket.tokens) / rate


def retry_after_header(wait: float) -> str:
    """Whole seconds for ``Retry-After`` (at least 1: 0 would invite an immediate retry)."""
    return str(max(1, math.ceil(wait)))
