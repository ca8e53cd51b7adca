"""Fan-out: one published burst handed to every interested client, one shared frame per selection."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from qmtgate.hub.clients import Frame
from qmtgate.hub.ring import Update, markets_of
from qmtgate.hub.session import ClientState


def fan_out(
    clients: Iterable[ClientState], channel: str, updates: list[Update], received: float | None
) -> tuple[int, int]:
    """Queue each interested client's part of one burst; returns (frames queued, clients dropped).

    Clients that want the same part share one Frame object, so the frame is encoded once per wire
    format (see ``api.stream_codec``) however many clients take it: every whole-market client shares
    the burst's frame, every client of one market that market's (:meth:`TickBurst.by_market`). A
    client of a few codes gets its own frame from one dict lookup per code.
    """
    markets = markets_of(updates)
    burst = updates[0].burst
    if burst is not None and updates is not burst.updates:
        burst = None
    shared: dict[tuple[int, int | None], Frame] = {}  # (id(selected list), prev_seq) -> its frame
    frames = dropped = 0
    for client in list(clients):
        interest = client.interests.get(channel)
        if interest is None or interest.empty or client.paused:
            continue
        if markets <= interest.markets:
            chosen: Sequence[Update] = updates
        elif burst is not None:
            chosen = burst.select(interest.codes, interest.markets)
        else:
            chosen = [u for u in updates if interest.matches(u)]
        if not chosen:
            continue
        prev = client.sent_to.get(channel)
        key = (id(chosen), prev)  # clients of one selection and one history share a frame
        frame = shared.get(key)
        if frame is None:
            frame = Frame(channel, chosen[0].seq, chosen[-1].seq, chosen, prev_seq=prev)
            if received is not None:
                frame.ts_pub = received
            shared[key] = frame
        client.queue(frame)
        frames += 1
        if client.outbox.closed_reason is not None:
            dropped += 1
    return frames, dropped
