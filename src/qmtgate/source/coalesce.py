"""Share one in-flight upstream call among identical concurrent requests.

Ten dashboards asking for the same 1d history of the same codes at the same moment should cost one
``get_market_data_ex``, not ten calls queued one behind the other on the single xtdata thread. The shared
result object is handed to every caller as is: treat it as read-only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """Run ``factory()`` once per key while a call for that key is in flight; later callers join it.

    A caller that is cancelled (or times out) leaves the shared call running for the others. The entry is
    removed when the call finishes, so results are never cached here: only concurrent requests are merged.
    Use from a single event loop.
    """

    def __init__(self) -> None:
        self._inflight: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._inflight)

    async def run(self, key: K, factory: Callable[[], Awaitable[V]]) -> V:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(factory())
            self._inflight[key] = task
            task.add_done_callback(lambda done, key=key: self._finish(key, done))
        return await asyncio.shield(task)

    def _finish(self, key: K, task: asyncio.Task[V]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # mark retrieved: every joined caller already got it through the shield
