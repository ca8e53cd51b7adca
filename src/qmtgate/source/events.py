"""Source events: a source announces its connection changes instead of being polled for them.

Why: a QMT restart drops every upstream subscription. The whole-market feed, the stream hub's registry,
the staleness supervisor, the alerts and (later) the trading lane all have to act on it. They used to
find out by polling ``status().epoch`` each on its own timer (0.5-1 s late, four loops waking for
nothing all day). Now the source emits:

* ``connected``: a (re)connect; ``connection`` is the new connection number. Subscriptions made on an
  older connection are gone: subscribe again.
* ``disconnected``: the connection was lost (QMT's status callback, a failed call or probe).
* ``resubscribed``: subscriptions were renewed without a reconnect (they had gone silent): a new
  ``connection`` number, subscribe again.
* ``stale``: the supervisor's set of stale markets changed (``stale`` lists them, empty on recovery).

Threading: an event may be emitted on any thread (xtquant's status callback runs on an SDK thread). The
listeners always run on the event loop the events were bound to: an emit from another thread is handed
over with ``loop.call_soon_threadsafe``; an emit on the loop runs the listeners at once, in registration
order. A listener is a plain function (it must be quick and must not block) or a coroutine function (run
as a task; its exceptions are logged). A failing listener never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


class SourceEventKind(str, enum.Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RESUBSCRIBED = "resubscribed"
    STALE = "stale"


@dataclass(frozen=True)
class SourceEvent:
    """One change of a source. ``connection`` is the source's connection number after the change."""

    kind: SourceEventKind
    source: str
    connection: int
    connected: bool
    message: str | None = None
    #: markets without data in trading hours (``stale`` events; empty when they recovered)
    stale: tuple[str, ...] = ()
    at: float = field(default_factory=time.time)  # epoch seconds

    @property
    def renews(self) -> bool:
        """Upstream subscriptions of older connections are gone: whoever holds some subscribes again."""
        return self.kind in (SourceEventKind.CONNECTED, SourceEventKind.RESUBSCRIBED)


Listener = Callable[[SourceEvent], Any]


class SourceEvents:
    """The listeners of one source and the loop they run on."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.emitted = 0  # events emitted so far (tests wait on it)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run listeners on ``loop`` (the source's ``start`` binds the running loop)."""
        self._loop = loop

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Register ``listener``; returns the function that unregisters it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: SourceEvent) -> None:
        """Hand ``event`` to every listener, on the bound loop (from any thread)."""
        self.emitted += 1
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # not started (or gone): nobody can be listening on a loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._dispatch(event)
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under a late SDK callback
            loop.call_soon_threadsafe(self._dispatch, event)

    def _dispatch(self, event: SourceEvent) -> None:
        for listener in list(self._listeners):
            try:
                result = listener(event)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._done)
            except Exception:
                logger.exception("source event listener %r failed on %s", listener, event.kind.value)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("source event listener failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for the listener tasks started so far (stop paths and tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
