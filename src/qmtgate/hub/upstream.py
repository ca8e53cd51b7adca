"""Refcounted upstream subscriptions: one xtquant subscription per (channel, code) or per market,
however many clients want it, released upstream when the last one leaves.

The registry keeps each subscription's original arguments, so that after a QMT restart (which drops
every subscription) all of them can be issued again exactly as they were (:meth:`resubscribe_all`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: (channel, "code" | "market", code or market)
Key = tuple[str, str, str]
Subscribe = Callable[[Key], Awaitable[int]]
Unsubscribe = Callable[[int], Awaitable[None]]


@dataclass
class _Entry:
    refs: int
    handle: int | None = None
    error: str | None = None


class UpstreamRegistry:
    """Refcounts per key; ``subscribe(key)`` / ``unsubscribe(handle)`` talk to the source."""

    def __init__(self, subscribe: Subscribe, unsubscribe: Unsubscribe) -> None:
        self._subscribe = subscribe
        self._unsubscribe = unsubscribe
        self._entries: dict[Key, _Entry] = {}
        self._lock = asyncio.Lock()
        self.upstream_calls = 0  # subscribe calls made upstream (tests and metrics)

    def refs(self, key: Key) -> int:
        e = self._entries.get(key)
        return e.refs if e else 0

    def active(self) -> dict[Key, int]:
        """Keys with a live upstream subscription -> refcount."""
        return {k: e.refs for k, e in self._entries.items() if e.handle is not None}

    async def acquire(self, key: Key) -> None:
        """Add a reference; the first one subscribes upstream (errors propagate, nothing is kept)."""
        async with self._lock:
            e = self._entries.get(key)
            if e is not None:
                e.refs += 1
                return
            self.upstream_calls += 1
            handle = await self._subscribe(key)
            self._entries[key] = _Entry(refs=1, handle=handle)

    async def release(self, key: Key) -> None:
        async with self._lock:
            e = self._entries.get(key)
            if e is None:
                return
            e.refs -= 1
            if e.refs > 0:
                return
            del self._entries[key]
            if e.handle is not None:
                try:
                    await self._unsubscribe(e.handle)
                except Exception as exc:  # a failed unsubscribe must not leak the entry
                    logger.warning("upstream unsubscribe of %s failed: %s", key, exc)

    def failed(self) -> list[Key]:
        """Keys still wanted by clients whose last upstream subscribe failed (no live handle)."""
        return [k for k, e in self._entries.items() if e.handle is None]

    async def resubscribe(self, keys: list[Key], *, cancel_old: bool = False) -> list[tuple[Key, str]]:
        """Issue some subscriptions again (a failed resubscribe, or one code gone silent); returns failures.

        ``cancel_old`` first cancels the live handle, so a subscription that wakes up cannot push twice.
        """
        failed: list[tuple[Key, str]] = []
        async with self._lock:
            for key in keys:
                e = self._entries.get(key)
                if e is None:
                    continue
                if cancel_old and e.handle is not None:
                    old, e.handle = e.handle, None
                    try:
                        await self._unsubscribe(old)
                    except Exception as exc:
                        logger.warning("upstream unsubscribe of %s failed: %s", key, exc)
                try:
                    self.upstream_calls += 1
                    e.handle = await self._subscribe(key)
                    e.error = None
                except Exception as exc:
                    e.handle = None
                    e.error = str(exc)
                    failed.append((key, str(exc)))
        return failed

    async def resubscribe_all(self) -> list[tuple[Key, str]]:
        """Issue every subscription again (after QMT lost them); returns the keys that failed."""
        failed: list[tuple[Key, str]] = []
        async with self._lock:
            for key, e in self._entries.items():
                try:
                    self.upstream_calls += 1
                    e.handle = await self._subscribe(key)
                    e.error = None
                except Exception as exc:
                    e.handle = None
                    e.error = str(exc)
                    failed.append((key, str(exc)))
        return failed
