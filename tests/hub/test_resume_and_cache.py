"""Resume by burst, shared per-market frames and a last-value cache that lets old bursts go.

A resume used to test every update of the replay ring (up to 500,000) in Python on the event loop; a
few reconnecting clients at once held the loop for seconds (the 30-minute soak's reconnect storm). It
now walks the ring burst by burst and asks each burst for the client's share. These tests check that
the answer is exactly the brute-force one, for every kind of interest and any resume point.
"""

from __future__ import annotations

import gc
import itertools
import weakref
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qmtgate.hub.clients import Frame, Interest
from qmtgate.hub.ring import ReplayRing, Update, burst_table
from qmtgate.hub.stream import TICK, HubConfig, StreamHub

MARKET_CODES = {
    "SH": [f"{600000 + i}.SH" for i in range(60)],
    "SZ": [f"{i:06d}.SZ" for i in range(1, 61)],
    "BJ": [f"{830000 + i}.BJ" for i in range(12)],
}


def tick(price: float, volume: int) -> dict[str, Any]:
    return {
        "time": 1749695400000 + volume,
        "lastPrice": price,
        "open": 10.0,
        "high": 11.0,
        "low": 9.0,
        "lastClose": 10.0,
        "volume": volume,
        "amount": volume * price * 100,
        "transactionNum": volume,
        "openInt": 13,
        "bidPrice": [price - 0.01, price - 0.02, 0.0, 0.0, 0.0],
        "bidVol": [1, 2, 0, 0, 0],
        "askPrice": [price + 0.01, price + 0.02, price + 0.03, price + 0.04, price + 0.05],
        "askVol": [3, 4, 5, 6, 7],
    }


class _NoSource:
    name = "none"


def hub_with_bursts(n_bursts: int, capacity: int, skip_every: int = 5) -> StreamHub:
    """A hub that published ``n_bursts`` bursts; code k is missing from bursts where (k + b) % skip_every
    == 0, so bursts differ in membership as real ones do (not every code trades every 3 s)."""
    hub = StreamHub(_NoSource(), HubConfig(ring_capacity=capacity, outbox_frames=16, replay_frame_updates=50))
    every = [c for codes in MARKET_CODES.values() for c in codes]
    for b in range(n_bursts):
        data = {c: tick(10.0 + b / 100, 100 + b) for k, c in enumerate(every) if (k + b) % skip_every}
        hub.publish(TICK, data)
    return hub


INTERESTS = {
    "bj_market": Interest(markets={"BJ"}),
    "two_markets": Interest(markets={"SH", "BJ"}),
    "all_markets": Interest(markets={"SH", "SZ", "BJ"}),
    "codes": Interest(codes={"600003.SH", "000007.SZ", "830005.BJ", "600059.SH"}),
    "codes_and_market": Interest(codes={"600003.SH", "830005.BJ"}, markets={"BJ"}),
    "unknown_code": Interest(codes={"688999.SH"}),
}


def client_with(hub: StreamHub, interest: Interest) -> Any:
    client = hub.connect()
    client.interests[TICK] = interest
    return client


@pytest.mark.parametrize("name", sorted(INTERESTS))
def test_resume_answers_exactly_what_the_client_missed(name: str) -> None:
    hub = hub_with_bursts(40, capacity=2_000)
    interest = INTERESTS[name]
    client = client_with(hub, interest)
    first = hub.ring.first_seq
    assert first is not None and first > 1  # the ring has evicted, and cut a burst in the middle
    for since in (first - 1, first + 7, hub.seq - 300, hub.seq - 1, hub.seq):
        frames = hub.resume(client, since, hub.epoch)
        assert frames is not None
        got = [u for f in frames for u in f.updates]
        expected = [u for u in hub.ring.since(since) or [] if interest.matches(u)]
        assert [u.seq for u in got] == [u.seq for u in expected]
        assert all(f.replay and not f.conflated for f in frames)
        assert all(f.seq_from == f.updates[0].seq and f.seq_to == f.updates[-1].seq for f in frames)
        assert len(frames) <= max(hub.config.outbox_frames // 4, 1)  # never conflates itself away


def test_resume_outside_the_window_or_epoch_asks_for_a_snapshot() -> None:
    hub = hub_with_bursts(40, capacity=2_000)
    client = client_with(hub, INTERESTS["bj_market"])
    assert hub.resume(client, (hub.ring.first_seq or 0) - 2, hub.epoch) is None
    assert hub.resume(client, 5, "another-epoch") is None


@settings(max_examples=60, deadline=None)
@given(
    bursts=st.integers(1, 12),
    capacity=st.integers(1, 900),
    skip=st.integers(2, 7),
    markets=st.sets(st.sampled_from(["SH", "SZ", "BJ"])),
    codes=st.sets(st.sampled_from([c for cs in MARKET_CODES.values() for c in cs[:8]]), max_size=6),
    back=st.integers(0, 1_000),
)
def test_resume_by_burst_equals_brute_force(
    bursts: int, capacity: int, skip: int, markets: set[str], codes: set[str], back: int
) -> None:
    hub = hub_with_bursts(bursts, capacity, skip)
    interest = Interest(codes=codes, markets=markets)
    client = client_with(hub, interest)
    since = max(hub.seq - back, 0)
    frames = hub.resume(client, since, hub.epoch)
    brute = hub.ring.since(since)
    assert (frames is None) == (brute is None)
    if frames is not None and brute is not None:
        assert [u.seq for f in frames for u in f.updates] == [u.seq for u in brute if interest.matches(u)]


def test_ring_keeps_whole_segments_cuts_the_oldest_and_reports_what_leaves() -> None:
    evicted: list[int] = []
    ring = ReplayRing(5, on_evict=lambda ups: evicted.extend(u.seq for u in ups))
    mk = lambda lo, hi: [Update(s, TICK, "600000.SH", "SH", {"code": "600000.SH"}) for s in range(lo, hi + 1)]  # noqa: E731
    ring.extend(mk(1, 3))
    ring.extend(mk(4, 6))  # 6 > 5: seq 1 leaves, the oldest segment is cut
    assert evicted == [1] and len(ring) == 5 and ring.first_seq == 2
    ring.extend(mk(7, 9))  # the rest of the first segment and one of the second leave
    assert evicted == [1, 2, 3, 4] and len(ring) == 5 and ring.first_seq == 5
    assert [len(s) for s in ring.segments_since(4) or []] == [2, 3]
    assert [u.seq for u in ring.since(6) or []] == [7, 8, 9]
    assert ring.since(3) is None


def test_clients_of_one_market_share_one_frame_per_burst() -> None:
    hub = hub_with_bursts(1, capacity=10_000)
    a, b = client_with(hub, Interest(markets={"BJ"})), client_with(hub, Interest(markets={"BJ"}))
    c = client_with(hub, Interest(codes={"830001.BJ"}))
    every = [code for codes in MARKET_CODES.values() for code in codes]
    hub.publish(TICK, {code: tick(11.0, 500) for code in every})
    fa, fb, fc = (x.outbox._frames[-1] for x in (a, b, c))
    assert fa is fb  # encoded once for both
    assert [u.code for u in fa.updates] == MARKET_CODES["BJ"]
    assert [u.code for u in fc.updates] == ["830001.BJ"]


def test_the_last_value_cache_lets_go_of_bursts_that_left_the_ring() -> None:
    gc.disable()  # freed by reference counting alone, not left for a rare full collection
    try:
        hub = hub_with_bursts(1, capacity=200, skip_every=10**9)  # every code once
        old_burst = weakref.ref(hub.lvc.updates[(TICK, "830005.BJ")].burst)  # type: ignore[arg-type]
        held = hub.lvc.updates[(TICK, "000007.SZ")]  # e.g. in a frame still being sent
        old_rows = {code: u.row for (_ch, code), u in hub.lvc.updates.items() if code != "000009.SZ"}
        old_seqs = {code: u.seq for (_ch, code), u in hub.lvc.updates.items()}
        for b in range(4):  # only SH trades afterwards: the old burst leaves the ring
            hub.publish(TICK, {c: tick(12.0 + b, 900 + b) for c in MARKET_CODES["SH"]})
        assert (hub.ring.first_seq or 0) > max(old_seqs.values())
        for code in MARKET_CODES["BJ"] + MARKET_CODES["SZ"]:
            entry = hub.lvc.updates[(TICK, code)]
            assert entry.burst is None  # detached: a row of its own
            assert entry.seq == old_seqs[code] and entry.row == old_rows.get(code, entry.row)
        assert all(
            hub.lvc.updates[(TICK, c)].burst is not None for c in MARKET_CODES["SH"]
        )  # still in the ring
        assert held.burst is not None and held.burst.released
        assert held.row == old_rows["000007.SZ"]  # an update held elsewhere still works
        del held
        assert old_burst() is None  # nothing keeps the old burst (its columns, table, updates) alive
    finally:
        gc.enable()


def test_a_row_of_a_released_burst_is_still_built_on_demand() -> None:
    hub = hub_with_bursts(1, capacity=100_000)
    u = hub.lvc.updates[(TICK, "600007.SH")]
    expected = u.burst.columns.row(u.index)  # type: ignore[union-attr]
    u.burst.release()  # type: ignore[union-attr]
    assert u._row is None and u.row == expected


def test_arrow_table_of_updates_from_several_bursts_equals_the_row_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qmtgate.api import stream_codec

    hub = hub_with_bursts(6, capacity=10_000)
    client = client_with(hub, Interest(codes={"600003.SH"}, markets={"BJ"}))
    frames = hub.resume(client, 0, hub.epoch)
    assert frames is not None
    updates = [u for f in frames for u in f.updates]
    assert len({id(u.burst) for u in updates}) == 6
    table = burst_table(updates)
    assert isinstance(table, pa.Table) and table.column("code").to_pylist() == [u.code for u in updates]
    frame = Frame(TICK, updates[0].seq, updates[-1].seq, updates, replay=True)
    from_columns = stream_codec.frame_table(frame)
    monkeypatch.setattr(stream_codec, "burst_table", lambda _updates: None)
    from_rows = stream_codec.frame_table(frame)
    assert from_columns.equals(from_rows)


def _bar(minute: int) -> dict[str, Any]:
    return {"time": 1749695400000 + 60_000 * minute, "open": 10.0, "high": 10.2, "low": 9.9, "close": 10.1,
            "volume": 10, "amount": 1010.0, "preClose": 10.0}  # fmt: skip


def _drain(client: Any) -> list[Frame]:
    frames = []
    while len(client.outbox):
        frame = client.outbox._frames.popleft()
        if isinstance(frame, Frame):
            frames.append(frame)
    return frames


@pytest.mark.parametrize("name", sorted(INTERESTS))
def test_prev_seq_chains_every_clients_frames_whatever_its_interest(name: str) -> None:
    """Each frame's prev_seq is the seq_to of the frame queued before it on its channel, so a client of
    one market, of a few codes or of bars can tell a lost frame from the other updates between its own
    (the hub's seq counts everything it publishes)."""
    hub = StreamHub(_NoSource(), HubConfig(ring_capacity=10_000, outbox_frames=1_000))
    client = client_with(hub, INTERESTS[name])
    client.interests["1m"] = Interest(codes={"600001.SH"})
    whole = client_with(hub, Interest(markets={"SH", "SZ", "BJ"}))
    every = [c for codes in MARKET_CODES.values() for c in codes]
    for b in range(12):
        hub.publish(TICK, {c: tick(10.0 + b / 100, 100 + b) for k, c in enumerate(every) if (k + b) % 5})
        hub.publish("1m", {"600001.SH": [_bar(b // 3)], "600002.SH": [_bar(b // 3)]})
    frames = _drain(client)
    assert frames
    for channel in (TICK, "1m"):
        mine = [f for f in frames if f.channel == channel]
        assert [f.prev_seq for f in mine] == ([None] + [f.seq_to for f in mine])[: len(mine)]
        seqs = [u.seq for f in mine for u in f.updates]
        assert seqs == sorted(seqs)
    if name not in ("all_markets", "unknown_code"):
        tick_frames = [f for f in frames if f.channel == TICK]
        assert any(b.seq_from > a.seq_to + 1 for a, b in itertools.pairwise(tick_frames)), "seqs jump"
    # two whole-market clients with the same history share each burst's frame (one encode)
    twin = client_with(hub, Interest(markets={"SH", "SZ", "BJ"}))
    _drain(whole)
    hub.publish(TICK, {c: tick(11.0, 500) for c in every})  # twin's first frame: prev None, its own
    hub.publish(TICK, {c: tick(11.1, 501) for c in every})
    a, b = _drain(whole), _drain(twin)
    assert a[0] is not b[0] and b[0].prev_seq is None
    assert a[1] is b[1] and a[1].prev_seq == a[0].seq_to


def test_a_resume_continues_the_chain_from_since() -> None:
    hub = hub_with_bursts(6, capacity=10_000)
    client = client_with(hub, Interest(markets={"BJ"}))
    since = hub.seq - 300  # inside the third-to-last burst
    frames = hub.resume(client, since, hub.epoch)
    assert frames
    hub.deliver(client, frames, since=since)
    hub.publish(TICK, {c: tick(12.0, 900) for c in MARKET_CODES["BJ"]})
    out = _drain(client)
    assert out[0].prev_seq == since
    assert [f.prev_seq for f in out[1:]] == [f.seq_to for f in out[:-1]]
    assert not out[-1].replay and out[-1].prev_seq == out[-2].seq_to
    # a since beyond anything published is not believed (it would set the chain ahead): snapshot instead
    assert hub.resume(client, hub.seq + 1, hub.epoch) is None
    assert hub.resume(client, hub.seq, hub.epoch) == []


def test_conflation_keeps_the_first_prev_seq() -> None:
    hub = StreamHub(_NoSource(), HubConfig(ring_capacity=10_000, outbox_frames=2))
    client = client_with(hub, Interest(markets={"SZ"}))
    for b in range(4):
        hub.publish(TICK, {c: tick(10.0 + b, 100 + b) for c in MARKET_CODES["SZ"] + MARKET_CODES["SH"]})
    frames = _drain(client)  # the third frame conflated all three; the fourth follows it
    assert [f.conflated for f in frames] == [True, False]
    assert frames[0].prev_seq is None and frames[1].prev_seq == frames[0].seq_to
    hub.publish(TICK, {c: tick(20.0, 200) for c in MARKET_CODES["SZ"]})
    (nxt,) = _drain(client)
    assert nxt.prev_seq == frames[1].seq_to
