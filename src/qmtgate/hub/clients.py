"""Per-client delivery: interest matching, a bounded outbox with conflation, and the lag policy.

Broadcast never waits for the slowest client (see the websockets broadcast note in docs/style):
each client has its own bounded outbox of frames. While the client keeps up, every burst becomes one
frame and nothing is lost. When the outbox is full, the pending frames are conflated into one frame
holding the latest row per (channel, code) — intermediate updates are skipped, and the frame says so
(``conflated: true`` with the seq range it covers). A client that stays behind for longer than
``max_lag_seconds`` is disconnected with a close reason. No client ever delays another: the hub only
appends to outboxes; each connection's sender task drains its own.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qmtgate.hub.ring import Update


@dataclass
class Interest:
    """What one client wants on one channel: explicit codes and/or whole markets."""

    codes: set[str] = field(default_factory=set)
    markets: set[str] = field(default_factory=set)

    def matches(self, u: Update) -> bool:
        return u.code in self.codes or u.market in self.markets

    @property
    def empty(self) -> bool:
        return not self.codes and not self.markets

    @property
    def size(self) -> int:
        return len(self.codes)


@dataclass
class Frame:
    """One data message for one client: a burst's matching updates (or a conflated set)."""

    channel: str
    seq_from: int
    seq_to: int
    updates: Sequence[Update]  # may be a list shared with other frames or the burst: never modified
    conflated: bool = False
    replay: bool = False
    #: the seq_to of the frame the hub queued for this client before this one on this channel (None: its
    #: first); a client that holds that seq has missed nothing (docs/streaming.md, "Gaps")
    prev_seq: int | None = None
    # epoch seconds when the gateway's source callback received the burst (creation time for replays)
    ts_pub: float = field(default_factory=time.time)


@dataclass
class ClientStats:
    frames_sent: int = 0
    updates_sent: int = 0
    conflations: int = 0
    updates_skipped: int = 0


class ClientOutbox:
    """Bounded queue of frames for one client, conflating when full."""

    def __init__(self, max_frames: int = 64, max_lag_seconds: float = 30.0) -> None:
        self.max_frames = max_frames
        self.max_lag_seconds = max_lag_seconds
        self._frames: deque[Frame] = deque()
        self._ready = asyncio.Event()
        self._behind_since: float | None = None
        self.closed_reason: str | None = None
        self.stats = ClientStats()
        #: monotonic time since which the outbox has had frames queued or being written (None: idle)
        self.busy_since: float | None = None

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being written."""
        return self.busy_since is None

    def put(self, frame: Frame) -> None:
        """Append without ever blocking the hub; conflate or flag for disconnect when behind."""
        if self.closed_reason is not None:
            return
        self._frames.append(frame)
        if self.busy_since is None:
            self.busy_since = time.monotonic()
        if len(self._frames) > self.max_frames:
            now = time.monotonic()
            if self._behind_since is None:
                self._behind_since = now
            if now - self._behind_since > self.max_lag_seconds:
                self.closed_reason = f"client too slow: more than {self.max_lag_seconds:g} s behind"
                self._frames.clear()
            else:
                self._conflate()
        self._ready.set()

    def _conflate(self) -> None:
        """Replace all pending frames with one per channel holding the latest row per code."""
        by_channel: dict[str, dict[str, Update]] = {}
        span: dict[str, tuple[int, int]] = {}
        prev: dict[str, int | None] = {}
        total = 0
        messages = [f for f in self._frames if isinstance(f, dict)]
        for f in self._frames:
            if isinstance(f, dict):
                continue
            latest = by_channel.setdefault(f.channel, {})
            for u in f.updates:
                latest[u.code] = u
                total += 1
            prev.setdefault(f.channel, f.prev_seq)
            lo, hi = span.get(f.channel, (f.seq_from, f.seq_to))
            span[f.channel] = (min(lo, f.seq_from), max(hi, f.seq_to))
        self._frames.clear()
        self._frames.extend(messages)  # type: ignore[arg-type]
        kept = 0
        for channel, latest in by_channel.items():
            updates = sorted(latest.values(), key=lambda u: u.seq)
            kept += len(updates)
            lo, hi = span[channel]
            self._frames.append(Frame(channel, lo, hi, updates, conflated=True, prev_seq=prev[channel]))
        self.stats.conflations += 1
        self.stats.updates_skipped += total - kept

    async def get(self) -> Frame | None:
        """The next frame (None once the client must be closed)."""
        if not self._frames:  # the sender is back for more: the previous frame is written
            self.busy_since = None
        while not self._frames:
            if self.closed_reason is not None:
                return None
            self._ready.clear()
            await self._ready.wait()
        frame = self._frames.popleft()
        if len(self._frames) <= self.max_frames // 2:
            self._behind_since = None
        return frame

    def put_message(self, message: dict[str, Any]) -> None:
        """A control message (status event), delivered in order with the data frames."""
        if self.closed_reason is None:
            self._frames.append(message)  # type: ignore[arg-type]
            if self.busy_since is None:
                self.busy_since = time.monotonic()
            self._ready.set()

    def close(self, reason: str) -> None:
        self.closed_reason = reason
        self._ready.set()

    def discard(self) -> None:
        """The client is gone: drop pending frames now. A closed connection's objects can wait for the
        cyclic GC for minutes, and its frames would keep whole bursts alive meanwhile."""
        self.close(self.closed_reason or "disconnected")
        self._frames.clear()
        self.busy_since = None


def select(updates: Iterable[Update], interest: Interest) -> list[Update]:
    return [u for u in updates if interest.matches(u)]


def frame_payload(frame: Frame, epoch: str, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON-able body of a data message."""
    return {
        "type": "data",
        "channel": frame.channel,
        "epoch": epoch,
        "seq_from": frame.seq_from,
        "seq_to": frame.seq_to,
        "prev_seq": frame.prev_seq,
        "conflated": frame.conflated,
        "replay": frame.replay,
        "gw_ts": round(frame.ts_pub * 1000.0, 3),
        "items": rows if rows is not None else [{"seq": u.seq, **u.row} for u in frame.updates],
    }
