"""Whole-market answers encoded once per quote-cache burst and shared by every request of that burst.

Why: the whole-market snapshot (``/api/v1/snapshots?markets=SH,SZ,BJ``, and the drop-in's
``get_full_tick(["SH", "SZ", "BJ"])``) changes only when a burst reaches the quote cache, every ~3 s, but
encoding its ~5,400 rows cost every request ~20 ms as Arrow and ~80 ms as JSON (bench/RESULTS.md). Here
the first request after a burst encodes it (lazily: a burst nobody asks for is never encoded) and every
request until the next burst gets the same bytes.

Correctness rests on :attr:`qmtgate.hub.lvc.LastValueCache.version`, which moves with every tick burst
the hub writes into the cache (in one synchronous step on the loop): an answer is reused only under the
version it was built from, so it never outlives the data it shows.
The encode runs as a task of its own: a requester that goes away (its task cancelled) does not cancel it
for the others waiting on it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

from starlette.responses import Response


class EncodedResponse(Response):
    """A response over bytes encoded earlier: its own copy of the headers (middlewares add to them), the
    body shared."""

    def __init__(self, body: bytes, status_code: int, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.body = body
        self.status_code = status_code
        self.raw_headers = list(raw_headers)
        self.background = None


class BurstAnswers:
    """Encoded answers keyed by what was asked (markets, kinds, fields, format), valid for one version of
    the quote cache. Holds at most ``max_entries`` answers (the least recently used goes first)."""

    def __init__(self, max_entries: int = 16) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[int, asyncio.Task[Response]]] = OrderedDict()
        self.encodes = 0  # answers built (tests, and a sign of how often bursts are read)
        self.reuses = 0  # requests served from an answer built for an earlier request of the same burst

    async def get(self, key: Hashable, version: int, build: Callable[[], Awaitable[Response]]) -> Response:
        """The answer for ``key`` at ``version``: built once by ``build`` and shared until the version
        moves."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] == version and not _failed(entry[1]):
            self._entries.move_to_end(key)
            self.reuses += 1
            task = entry[1]
        else:
            # answers of older bursts can never be served again: let their bytes go now (a whole-market
            # JSON answer is ~2.5 MB), so what is held is at most this burst's answers
            for stale in [k for k, (v, _) in self._entries.items() if v != version]:
                del self._entries[stale]
            task = asyncio.ensure_future(build())
            self._entries[key] = (version, task)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            self.encodes += 1
        response = await asyncio.shield(task)
        return EncodedResponse(response.body, response.status_code, response.raw_headers)

    def clear(self) -> None:
        self._entries.clear()


def _failed(task: asyncio.Task[Response]) -> bool:
    """A build that raised (or was cancelled) is tried again by the next request, not served forever."""
    return task.done() and (task.cancelled() or task.exception() is not None)
