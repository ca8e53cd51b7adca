"""The publisher's bounded buffer: what the bus has not confirmed yet, oldest first.

Messages leave it only when the server confirmed them (a flush round trip after they were written), so a
connection that dies mid-send loses nothing: the unconfirmed ones are sent again after the reconnect
(consumers drop the repeats by seq). While the bus is away it holds at most ``max_messages`` messages and
``max_bytes`` bytes; beyond that the **oldest** are dropped (a consumer wants the market's present more
than its past) and counted, so nothing ever waits for the bus and memory stays bounded.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

from qmtgate.bus.encode import Message


@dataclass
class DropCounts:
    messages: int = 0
    updates: int = 0

    def add(self, m: Message) -> None:
        self.messages += 1
        self.updates += m.updates


class OutBuffer:
    """Bounded FIFO of messages with running ids; ``confirm(mid)`` removes everything up to ``mid``."""

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._items: deque[Message] = deque()
        self._bytes = 0
        self._ids = itertools.count(1)
        self.dropped = DropCounts()  # since start
        self.unreported = DropCounts()  # since the last status report
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def put(self, m: Message) -> None:
        m.mid = next(self._ids)
        self._items.append(m)
        self._bytes += len(m.payload)
        items = self._items
        while len(items) > self.max_messages or (self._bytes > self.max_bytes and len(items) > 1):
            old = items.popleft()
            self._bytes -= len(old.payload)
            self.dropped.add(old)
            self.unreported.add(old)
        if len(items) > self.high_water:
            self.high_water = len(items)

    def head(self, max_messages: int, max_bytes: int) -> list[Message]:
        """The oldest messages, at most ``max_messages`` and about ``max_bytes`` (at least one)."""
        out: list[Message] = []
        size = 0
        for m in itertools.islice(self._items, max_messages):
            if out and size + len(m.payload) > max_bytes:
                break
            out.append(m)
            size += len(m.payload)
        return out

    def after(self, mid: int, max_messages: int, max_bytes: int) -> list[Message]:
        """Like :meth:`head`, from the first message with an id above ``mid`` (what is not written yet)."""
        out: list[Message] = []
        size = 0
        for m in self._items:
            if m.mid <= mid:
                continue
            if out and (len(out) >= max_messages or size + len(m.payload) > max_bytes):
                break
            out.append(m)
            size += len(m.payload)
        return out

    def confirm(self, mid: int) -> int:
        """Remove the messages up to id ``mid`` (the server has them); returns how many left."""
        items = self._items
        n = 0
        while items and items[0].mid <= mid:
            self._bytes -= len(items.popleft().payload)
            n += 1
        return n

    def take_unreported(self) -> DropCounts:
        counts, self.unreported = self.unreported, DropCounts()
        return counts
