"""What the hub keeps per connected client, its limits, and the refusals it answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qmtgate.hub.clients import ClientOutbox, Frame, Interest
from qmtgate.hub.upstream import Key


@dataclass
class HubConfig:
    """Streaming limits. Units: frames, updates, seconds, codes."""

    ring_capacity: int = 500_000  # updates kept for resume (~100 whole-market bursts of the A-shares)
    outbox_frames: int = 64  # frames queued per client before conflation (~3 minutes of bursts)
    max_lag_seconds: float = 30.0  # a client behind for longer is disconnected
    max_codes_per_client: int = 2_000  # explicit codes per connection (markets are unlimited)
    max_clients: int = 200
    replay_frame_updates: int = 20_000  # a resume's updates per frame (fewer, larger frames)


@dataclass
class ClientState:
    """One connected client as the hub sees it."""

    client_id: int
    outbox: ClientOutbox
    interests: dict[str, Interest] = field(default_factory=dict)
    keys: set[Key] = field(default_factory=set)
    paused: bool = False  # while a resume is being prepared: the ring holds what it misses
    #: per channel, the highest seq_to of the frames queued for this client: the next frame's
    #: ``prev_seq``, so the client can prove it missed nothing whatever its interest covers
    sent_to: dict[str, int] = field(default_factory=dict)

    def codes(self) -> int:
        return sum(i.size for i in self.interests.values())

    def queue(self, frame: Frame) -> None:
        """Append ``frame`` to the outbox; its end is what the next frame of its channel follows."""
        self.outbox.put(frame)
        if frame.seq_to > self.sent_to.get(frame.channel, frame.seq_to - 1):
            self.sent_to[frame.channel] = frame.seq_to


class HubError(Exception):
    """A client request the hub refuses (limit reached, unsupported channel)."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
