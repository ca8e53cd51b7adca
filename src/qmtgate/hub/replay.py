"""A client's way back: the updates it missed from the replay ring (resume), or the latest value of all
it wants from the last-value cache (snapshot, after a resync)."""

from __future__ import annotations

from collections.abc import Sequence

from qmtgate.hub.clients import Frame
from qmtgate.hub.lvc import LastValueCache
from qmtgate.hub.ring import ReplayRing, Update
from qmtgate.hub.session import ClientState, HubConfig


def resume_frames(ring: ReplayRing, client: ClientState, since: int, config: HubConfig) -> list[Frame] | None:
    """Frames of everything in ``ring`` after ``since`` matching the client's interests, or None when it
    fell out of the replay window (the caller has checked the epoch).

    Costs what the client missed, not the ring's size: the ring is walked burst by burst and each
    burst answers with the client's share (:meth:`TickBurst.select`). The result comes in a few
    large frames (see :func:`replay_frames`), so it fits the client's outbox without conflation."""
    segments = ring.segments_since(since)
    if segments is None:
        return None
    by_channel: dict[str, list[Sequence[Update]]] = {}
    for segment in segments:
        channel = segment[0].channel
        interest = client.interests.get(channel)
        if interest is None or interest.empty:
            continue
        burst = segment[0].burst
        if burst is not None:
            chosen = burst.select(interest.codes, interest.markets)
            if chosen and segment[0].seq > burst.first_seq:  # the ring holds part of this burst
                chosen = [u for u in chosen if u.seq >= segment[0].seq]
        else:
            chosen = [u for u in segment if interest.matches(u)]
        if chosen:
            by_channel.setdefault(channel, []).append(chosen)
    frames: list[Frame] = []
    for channel, parts in by_channel.items():
        frames.extend(replay_frames(channel, parts, config))
    return frames


def replay_frames(channel: str, parts: list[Sequence[Update]], config: HubConfig) -> list[Frame]:
    """Consecutive parts joined into frames of at least ``replay_frame_updates`` updates, and at most
    a quarter of the outbox in number (a replay must not conflate itself away)."""
    total = sum(map(len, parts))
    size = max(config.replay_frame_updates, -(-total // max(config.outbox_frames // 4, 1)))
    frames: list[Frame] = []
    pending: list[Update] = []
    for part in parts:
        pending.extend(part)
        if len(pending) >= size:
            frames.append(Frame(channel, pending[0].seq, pending[-1].seq, pending, replay=True))
            pending = []
    if pending:
        frames.append(Frame(channel, pending[0].seq, pending[-1].seq, pending, replay=True))
    return frames


def snapshot_frames(lvc: LastValueCache, client: ClientState) -> list[Frame]:
    """The current value of everything the client is interested in (one frame per channel)."""
    frames = []
    for channel, interest in client.interests.items():
        ups = lvc.matching(channel, interest)
        if ups:
            frames.append(Frame(channel, ups[0].seq, ups[-1].seq, ups, conflated=True, replay=True))
    return frames
