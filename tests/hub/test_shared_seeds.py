"""Whole-market subscribers that arrive together share one seed frame.

After a gateway restart or a network blip every whole-market client reconnects and subscribes at once.
Each used to get its own seed frame (the cache sorted and encoded once per client: ~15 ms of the loop
each, 0.7-0.9 s for 50 clients); clients that ask for the same markets before the next publish now share
one, as clients of one burst share its live frame. These tests hold the shared seeds to what each client
would have got alone.
"""

from __future__ import annotations

import pytest

from hub.test_resume_and_cache import MARKET_CODES, _NoSource, tick
from qmtgate.api.stream_codec import WireEncoding, encode
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


async def test_codes_still_get_seeds_of_their_own() -> None:
    hub = live_hub()
    _, a = await subscribe(hub, ["600002.SH", "000003.SZ"], [])
    _, b = await subscribe(hub, ["600002.SH", "000003.SZ"], [])
    assert a is not b and [u.code for u in a.updates] == [u.code for u in b.updates]
