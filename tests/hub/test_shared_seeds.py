"""Clients that reconnect together share their seeds, resumes and snapshots.

After a gateway restart or a network blip every client reconnects at once and subscribes (seeds), resumes
from where it stopped, or resyncs (a snapshot). Each used to get frames of its own, sorted and encoded once
per client (~15-35 ms of the loop per whole-market client: 0.7-2 s for 50); clients that ask the same
before the next publish now share them, as clients of one burst share its live frame. These tests hold the
shared frames to what each client would have got alone.
"""

from __future__ import annotations

import pytest

from hub.test_resume_and_cache import MARKET_CODES, _NoSource, tick
from qmtgate.api.stream_codec import WireEncoding, encode
from qmtgate.hub.clients import Interest
from qmtgate.hub.replay import resume_frames, snapshot_frames
from qmtgate.hub.stream import TICK, HubConfig, StreamHub

pytestmark = pytest.mark.anyio


def live_hub() -> StreamHub:
    hub = StreamHub(_NoSource(), HubConfig(outbox_frames=16))
    hub.covered_markets = {"SH", "SZ", "BJ"}  # the whole market flows already: no upstream calls
    every = [c for codes in MARKET_CODES.values() for c in codes]
    for b in range(3):
        hub.publish(TICK, {c: tick(10.0 + b / 100, 100 + b) for k, c in enumerate(every) if (k + b) % 4})
    return hub


async def subscribe(hub: StreamHub, codes: list[str], markets: list[str]):
    client = hub.connect()
    seeds = await hub.subscribe(client, TICK, codes, markets)
    hub.deliver_seeds(client, TICK, seeds)
    (frame,) = list(client.outbox._frames)
    return client, frame


async def test_clients_of_the_same_markets_share_one_seed_frame_until_the_next_publish() -> None:
    hub = live_hub()
    alone = hub.lvc.seeds(TICK, [], ["SH", "SZ"])  # what a client would get by itself
    _, first = await subscribe(hub, [], ["SZ", "SH"])
    _, second = await subscribe(hub, [], ["SH", "SZ"])
    assert first is second  # one frame, so one encode per wire format
    assert [(u.seq, u.code) for u in first.updates] == [(u.seq, u.code) for u in alone]
    assert first.replay and first.conflated and first.prev_seq is None
    assert encode(first, hub.epoch, WireEncoding.ARROW) is encode(second, hub.epoch, WireEncoding.ARROW)

    _, other_markets = await subscribe(hub, [], ["BJ"])
    assert other_markets is not first and {u.market for u in other_markets.updates} == {"BJ"}

    hub.publish(TICK, {"600001.SH": tick(12.0, 999)})  # the cache moved on: new seeds
    _, after = await subscribe(hub, [], ["SH", "SZ"])
    assert after is not first
    assert after.updates[-1].code == "600001.SH" and after.updates[-1].seq == hub.seq


async def test_a_client_with_history_on_the_channel_gets_its_own_frame_with_its_prev_seq() -> None:
    hub = live_hub()
    _, shared = await subscribe(hub, [], ["SH"])
    client = hub.connect()
    await hub.subscribe(client, TICK, ["000001.SZ"], [])
    client.sent_to[TICK] = hub.seq  # it was sent everything so far on the channel
    seeds = await hub.subscribe(client, TICK, [], ["SH"])
    hub.deliver_seeds(client, TICK, seeds)
    own = client.outbox._frames[-1]
    assert own is not shared and own.prev_seq == hub.seq and shared.prev_seq is None
    assert [u.seq for u in own.updates] == [u.seq for u in shared.updates]


async def test_code_subscriptions_share_their_seeds_too_and_other_codes_get_their_own() -> None:
    hub = live_hub()
    _, a = await subscribe(hub, ["600002.SH", "000003.SZ"], [])
    _, b = await subscribe(hub, ["000003.SZ", "600002.SH"], [])
    assert a is b
    assert sorted(u.code for u in a.updates) == ["000003.SZ", "600002.SH"]
    _, c = await subscribe(hub, ["600002.SH"], [])
    assert c is not a and [u.code for u in c.updates] == ["600002.SH"]


def fresh_client(hub: StreamHub, markets: set[str], codes: frozenset[str] = frozenset()):
    client = hub.connect()
    client.interests[TICK] = Interest(codes=set(codes), markets=set(markets))
    return client


def rows(frames) -> list[tuple[int, str, int | None]]:
    return [(u.seq, u.code, f.prev_seq) for f in frames for u in f.updates]


def test_reconnecting_clients_that_resume_from_the_same_point_share_the_replay() -> None:
    hub = live_hub()
    since = hub.seq - 150
    a, b = fresh_client(hub, {"SH", "SZ"}), fresh_client(hub, {"SZ", "SH"})
    expected = resume_frames(hub.ring, fresh_client(hub, {"SH", "SZ"}), since, hub.config)
    frames_a = hub.resume(a, since, hub.epoch)
    frames_b = hub.resume(b, since, hub.epoch)
    assert frames_a is frames_b and frames_a
    assert [(u.seq, u.code) for f in frames_a for u in f.updates] == [
        (u.seq, u.code) for f in expected for u in f.updates
    ]
    hub.deliver(a, frames_a, since=since)
    hub.deliver(b, frames_b, since=since)
    assert rows(a.outbox._frames) == rows(b.outbox._frames)
    assert a.outbox._frames[0].prev_seq == since  # the chain starts where the client said it stopped

    # a client whose history differs, another interest, another point, or after the next publish: its own
    c = fresh_client(hub, {"SH", "SZ"})
    c.sent_to[TICK] = since - 1
    assert hub.resume(c, since, hub.epoch) is not frames_a
    assert hub.resume(fresh_client(hub, {"SH"}), since, hub.epoch) is not frames_a
    assert hub.resume(fresh_client(hub, {"SH", "SZ"}), since + 1, hub.epoch) is not frames_a
    hub.publish(TICK, {"600001.SH": tick(12.0, 999)})
    later = hub.resume(fresh_client(hub, {"SH", "SZ"}), since, hub.epoch)
    assert later is not frames_a and later[-1].updates[-1].seq == hub.seq


def test_clients_resyncing_together_share_the_snapshot() -> None:
    hub = live_hub()
    a, b = fresh_client(hub, {"SH", "SZ", "BJ"}), fresh_client(hub, {"BJ", "SZ", "SH"})
    snap_a, snap_b = hub.snapshot(a), hub.snapshot(b)
    assert snap_a is snap_b
    alone = snapshot_frames(hub.lvc, fresh_client(hub, {"SH", "SZ", "BJ"}))
    assert [(u.seq, u.code) for f in snap_a for u in f.updates] == [
        (u.seq, u.code) for f in alone for u in f.updates
    ]
    assert hub.snapshot(fresh_client(hub, {"SH"}, {"000001.SZ"})) is not snap_a


def test_the_shared_replies_stay_few() -> None:
    hub = live_hub()
    for since in range(1, 40):
        hub.resume(fresh_client(hub, {"SH"}), since, hub.epoch)
    assert len(hub._replies) <= 8


async def test_a_caller_may_extend_the_seeds_it_was_given_without_touching_anyone_elses() -> None:
    """The NATS publisher adds its bar seeds to the tick seeds ``subscribe`` returned (``seeds += ...``):
    the list it gets is its own, whoever else subscribed to the same markets."""
    hub = live_hub()
    publisher = hub.connect()
    seeds = await hub.subscribe(publisher, TICK, [], ["SH", "SZ"])
    n = len(seeds)
    seeds += ["not a tick"]  # type: ignore[list-item]
    _, frame = await subscribe(hub, [], ["SH", "SZ"])
    assert len(frame.updates) == n and all(u.channel == TICK for u in frame.updates)
