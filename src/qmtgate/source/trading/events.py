"""Account events: the trading lane's pushes numbered, kept in a replay ring and handed to subscribers.

Why not the market-data hub: quotes may be conflated (only the latest price of a code matters), an
order event may not (a ``reported`` and a ``filled`` push are two facts). So account events have their
own sequence (``seq`` 1, 2, 3 ... within an ``epoch``, new at every gateway start), their own ring
(``trading.events_ring`` events) and no conflation: a subscriber that cannot keep up is cut off by its
owner (the WebSocket closes it) and resumes with ``since``, never silently thinned.

Everything here runs on the event loop (the service calls :meth:`AccountEvents.publish` from its push
handler, which the lane hands over with ``call_soon_threadsafe``); no locks are needed.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: The kinds of account events, named after the xttrader callback they come from (``on_stock_order`` ->
#: ``order``...), plus ``reconnected`` (the lane has a new session after ``disconnected``).
KINDS = (
    "order",
    "trade",
    "position",
    "asset",
    "order_error",
    "cancel_error",
    "account_status",
    "disconnected",
    "reconnected",
)

Sink = Callable[[dict[str, Any]], None]


class AccountEvents:
    """Numbered account events, a bounded replay ring and the live subscribers."""

    def __init__(self, ring_capacity: int = 10_000) -> None:
        self.epoch = secrets.token_hex(6)
        self.seq = 0
        self.ring: deque[dict[str, Any]] = deque(maxlen=max(1, ring_capacity))
        self._sinks: dict[int, Sink] = {}
        self._ids = 0

    def publish(self, kind: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """Number ``data`` as the next event and give it to every subscriber, in order (event loop)."""
        self.seq += 1
        event = {
            "seq": self.seq,
            "prev_seq": self.seq - 1 if self.seq > 1 else None,
            "event": kind,
            "ts": round(time.time() * 1000, 3),
            "data": data,
            **extra,
        }
        self.ring.append(event)
        for sink_id, sink in list(self._sinks.items()):
            try:
                sink(event)
            except Exception:  # one broken subscriber must not stop the others
                logger.exception("account event subscriber %s failed; detached", sink_id)
                self._sinks.pop(sink_id, None)
        return event

    def replay_since(self, since: int, epoch: str | None) -> list[dict[str, Any]] | None:
        """The events after ``since``, or None when they cannot all be given (another epoch, or older
        than the ring holds, or a ``since`` the gateway never published)."""
        if epoch != self.epoch or since < 0 or since > self.seq:
            return None
        if since == self.seq:
            return []
        first = self.ring[0]["seq"] if self.ring else self.seq + 1
        if since + 1 < first:
            return None
        return [e for e in self.ring if e["seq"] > since]

    def subscribe(self, sink: Sink) -> int:
        """Add a live subscriber; call on the event loop right after delivering any replay, with no
        ``await`` in between, so no event falls between the replay and the live ones."""
        self._ids += 1
        self._sinks[self._ids] = sink
        return self._ids

    def unsubscribe(self, sink_id: int) -> None:
        self._sinks.pop(sink_id, None)

    @property
    def subscribers(self) -> int:
        return len(self._sinks)
