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

Answers somebody keeps asking for are also **built ahead** (:meth:`BurstAnswers.warm`): a dashboard that
polls the whole market once per burst would otherwise always be the first requester of its burst and
pay the encode every time (20-65 ms against ~1 ms for a shared answer). Once a burst has landed and its
frames are out (:meth:`BurstAnswers.watch`: a trailing timer after the cache's last change), every answer
asked for in the last ``warm_seconds`` is built again under the new version, before anyone asks; answers
nobody asked for lately are never built.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

from starlette.responses import Response

logger = logging.getLogger(__name__)

#: seconds after the quote cache's last change before the asked-for answers are built ahead: a burst
#: reaches the cache in one step (or, from a feed that delivers it in pieces, within ~0.1 s), and its
#: stream frames are written in the next ~30-70 ms; the encodes come after them
WARM_DELAY = 0.15
#: an answer asked for within this many seconds is built ahead for every new burst (a poller every few
#: bursts keeps it warm; one that stopped lets it go)
WARM_SECONDS = 10.0


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

    def __init__(self, max_entries: int = 16, warm_seconds: float = WARM_SECONDS) -> None:
        self.max_entries = max_entries
        self.warm_seconds = warm_seconds
        self._entries: OrderedDict[Hashable, tuple[int, asyncio.Task[Response]]] = OrderedDict()
        # key -> (its build, when it was last asked for): what :meth:`warm` builds ahead
        self._asked: dict[Hashable, tuple[Callable[[], Awaitable[Response]], float]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.encodes = 0  # answers built (tests, and a sign of how often bursts are read)
        self.reuses = 0  # requests served from an answer built for an earlier request of the same burst
        self.warmed = 0  # answers built ahead of any request

    async def get(self, key: Hashable, version: int, build: Callable[[], Awaitable[Response]]) -> Response:
        """The answer for ``key`` at ``version``: built once by ``build`` and shared until the version
        moves."""
        self._asked[key] = (build, time.monotonic())
        entry = self._entries.get(key)
        if entry is not None and entry[0] == version and not _failed(entry[1]):
            self._entries.move_to_end(key)
            self.reuses += 1
            task = entry[1]
        else:
            task = self._build(key, version, build)
            self.encodes += 1
        response = await asyncio.shield(task)
        return EncodedResponse(response.body, response.status_code, response.raw_headers)

    def _build(
        self, key: Hashable, version: int, build: Callable[[], Awaitable[Response]]
    ) -> asyncio.Task[Response]:
        # answers of older bursts can never be served again: let their bytes go now (a whole-market
        # JSON answer is ~2.5 MB), so what is held is at most this burst's answers
        for stale in [k for k, (v, _) in self._entries.items() if v != version]:
            del self._entries[stale]
        task = asyncio.ensure_future(build())
        self._entries[key] = (version, task)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return task

    def watch(self, version: Callable[[], int], delay: float = WARM_DELAY) -> Callable[[object], None]:
        """A listener for the hub's bursts (``StreamHub.add_listener``): ``delay`` seconds after the last
        of a run of changes, :meth:`warm` at the cache's version then. Cheap on the burst's path (one
        timer moved); needs the running loop."""

        def changed(_updates: object) -> None:
            if not self._asked:
                return
            if self._timer is not None:
                self._timer.cancel()
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(delay, lambda: self.warm(version()))

        return changed

    def warm(self, version: int) -> int:
        """Build, under ``version``, every answer asked for in the last ``warm_seconds`` that is not built
        for it yet; forget the others. Returns how many builds it started."""
        self._timer = None
        now = time.monotonic()
        started = 0
        for key, (build, asked) in list(self._asked.items()):
            if now - asked > self.warm_seconds:
                del self._asked[key]
                continue
            entry = self._entries.get(key)
            if entry is not None and entry[0] == version and not _failed(entry[1]):
                continue
            task = self._build(key, version, build)
            task.add_done_callback(_log_failure)
            started += 1
        self.warmed += started
        return started

    def clear(self) -> None:
        self._entries.clear()
        self._asked.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _failed(task: asyncio.Task[Response]) -> bool:
    """A build that raised (or was cancelled) is tried again by the next request, not served forever."""
    return task.done() and (task.cancelled() or task.exception() is not None)


def _log_failure(task: asyncio.Task[Response]) -> None:
    """A build ahead that failed is logged (nobody awaits it); the next request builds it again."""
    if not task.cancelled() and task.exception() is not None:
        logger.warning("building a burst answer ahead failed: %r", task.exception())
