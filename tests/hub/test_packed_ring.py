"""The replay ring packs its cold tick bursts (issue 22, memory): what a resume, a lagging client or the
cache reads from a packed burst is exactly what was published, and a packed burst holds a fraction of the
memory of the burst as built."""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.test_resume_and_cache import MARKET_CODES, _NoSource, tick
from qmtgate.hub.clients import Interest
from qmtgate.hub.packed import PackedColumns
from qmtgate.hub.ring import HOT_BURSTS, PackedSegment, Update, burst_table
from qmtgate.hub.stream import TICK, HubConfig, StreamHub
from qmtgate.source.convert import TickColumns

EVERY = [c for codes in MARKET_CODES.values() for c in codes]


def publish_recording(hub: StreamHub, n_bursts: int, skip_every: int = 5) -> dict[int, dict[str, Any]]:
    """Publish ``n_bursts`` bursts (membership varying as in hub_with_bursts, prices distinct per code and
    burst, some book levels empty); return every published row by seq, read while its burst was live."""
    published: dict[int, dict[str, Any]] = {}
    for b in range(n_bursts):
        data = {}
        for k, c in enumerate(EVERY):
            if (k + b) % skip_every:
                t = tick(10.0 + b / 100 + k / 1000, 100 + b + k)
                if k % 7 == 0:
                    t["askPrice"] = [0.0] * 5  # limit up: no sellers (nulls in the columns)
                data[c] = t
        for u in hub.publish(TICK, data):
            published[u.seq] = dict(u.row)
    return published


def new_hub(capacity: int = 100_000) -> StreamHub:
    return StreamHub(
        _NoSource(), HubConfig(ring_capacity=capacity, outbox_frames=16, replay_frame_updates=50)
    )


def test_cold_bursts_are_packed_and_read_back_exactly() -> None:
    hub = new_hub()
    published = publish_recording(hub, 8)
    segments = list(hub.ring._segments)
    assert all(isinstance(s, PackedSegment) for s in segments[:-HOT_BURSTS])
    assert not any(isinstance(s, PackedSegment) for s in segments[-HOT_BURSTS:])
    again = hub.ring.since(0)
    assert again is not None
    assert [u.seq for u in again] == sorted(published)
    assert {u.seq: u.row for u in again} == published  # rows, nulls (empty book levels) included
    table = burst_table(again)
    assert table is not None
    assert [{k: v for k, v in row.items() if k != "time"} for row in table.to_pylist()] == [
        {k: v for k, v in published[s].items() if k != "time"} for s in sorted(published)
    ]


def test_a_packed_burst_keeps_a_fraction_of_its_memory() -> None:
    gc.disable()  # freed by reference counting, as in the gateway between full collections
    try:
        hub = new_hub()
        first = hub.publish(TICK, {c: tick(10.0 + k / 1000, 100 + k) for k, c in enumerate(EVERY)})
        burst = first[0].burst
        assert burst is not None
        built = sum(v.nbytes for v in burst.columns.values.values())
        del first
        publish_recording(hub, HOT_BURSTS)  # the first burst is now cold
        assert burst.packed and burst.updates == []
        assert isinstance(burst._columns, PackedColumns)
        assert burst._columns.nbytes < built / 2
        # type(), not isinstance(): a dead weakref.proxy elsewhere in the process raises on isinstance()
        alive = [o for o in gc.get_objects() if issubclass(type(o), Update) and o.burst is burst]
        assert alive == []  # the published update objects are gone; the ring makes them on demand
    finally:
        gc.enable()


def test_a_lagging_clients_frames_still_read_their_packed_bursts() -> None:
    hub = new_hub()
    client = hub.connect()
    client.interests[TICK] = Interest(markets={"SH", "SZ", "BJ"})
    published = publish_recording(hub, 2 * HOT_BURSTS + 2)
    frames = list(client.outbox._frames)
    packed = [f for f in frames if f.updates[0].burst is not None and f.updates[0].burst.packed]
    assert packed, "some queued frames are from bursts packed since"
    for frame in frames:
        assert [u.row for u in frame.updates] == [published[u.seq] for u in frame.updates]
        table = burst_table(frame.updates)
        assert table is not None and table.column("code").to_pylist() == [u.code for u in frame.updates]


def test_the_cache_detaches_from_a_burst_before_it_is_packed() -> None:
    hub = new_hub()
    hub.publish(TICK, {c: tick(10.0 + k / 1000, 100 + k) for k, c in enumerate(EVERY)})
    old = {code: dict(hub.lvc.updates[(TICK, code)].row) for code in MARKET_CODES["BJ"]}
    for b in range(HOT_BURSTS):  # only SH trades afterwards: the first burst goes cold, still in the ring
        hub.publish(TICK, {c: tick(12.0 + b, 900 + b) for c in MARKET_CODES["SH"]})
    assert isinstance(hub.ring._segments[0], PackedSegment)
    for code in MARKET_CODES["BJ"]:
        entry = hub.lvc.updates[(TICK, code)]
        assert entry.burst is None and entry.row == old[code]  # a row of its own, never a packed read


def test_eviction_releases_packed_bursts() -> None:
    hub = new_hub(capacity=1_000)
    publish_recording(hub, 30)
    gone = [s for s in hub.ring._segments if isinstance(s, PackedSegment)]
    assert gone and len(hub.ring) <= 1_000
    first = hub.ring.first_seq
    assert first is not None and hub.ring.since(first - 2) is None


@settings(max_examples=40, deadline=None)
@given(
    bursts=st.integers(1, 9),
    capacity=st.integers(1_000, 1_500),
    skip=st.integers(2, 7),
    markets=st.sets(st.sampled_from(["SH", "SZ", "BJ"])),
    codes=st.sets(st.sampled_from([c for cs in MARKET_CODES.values() for c in cs[:8]]), max_size=6),
    back=st.integers(0, 1_400),
)
def test_a_resume_through_packed_bursts_is_what_was_published(
    bursts: int, capacity: int, skip: int, markets: set[str], codes: set[str], back: int
) -> None:
    hub = new_hub(capacity)
    published = publish_recording(hub, bursts, skip)
    client = hub.connect()
    interest = Interest(codes=codes, markets=markets)
    client.interests[TICK] = interest
    since = max(hub.seq - back, 0)
    frames = hub.resume(client, since, hub.epoch)
    first = hub.ring.first_seq
    if first is not None and since < first - 1:
        assert frames is None
        return
    assert frames is not None
    got: list[Update] = [u for f in frames for u in f.updates]
    codes_of = {s: row["code"] for s, row in published.items()}
    expected = [
        s for s in sorted(published) if s > since and (codes_of[s] in codes or codes_of[s][-2:] in markets)
    ]
    assert [u.seq for u in got] == expected
    assert all(u.row == published[u.seq] for u in got)


_prices = st.one_of(
    st.integers(0, 10_000_000).map(lambda n: n / 1000),  # exact thousandths: stored as integers
    st.integers(0, 100_000).map(lambda n: n / 100),
    st.floats(allow_nan=True, allow_infinity=True),  # anything else: stored as the floats themselves
    st.sampled_from([0.0, -0.0, 1.7976931348623157e308, 0.0001, 3.14159]),
)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == np.ascontiguousarray(b).tobytes()


@given(
    last=st.lists(_prices, min_size=1, max_size=30),
    ladder_seed=st.lists(_prices, min_size=5, max_size=5),
    volumes=st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=30),
)
@settings(max_examples=200, deadline=None)
def test_packed_columns_give_back_every_value_bit_for_bit(
    last: list[float], ladder_seed: list[float], volumes: list[int]
) -> None:
    """Prices stored as integer thousandths (and ladders as offsets from the last price) come back as the
    very same float64 bits; anything not exactly representable is kept as floats; integers of any size
    come back with their dtype."""
    n = len(last)
    last_a = np.array(last, np.float64)
    ladder = np.array([[ladder_seed[(i + j) % 5] for j in range(5)] for i in range(n)], np.float64)
    vols = np.resize(np.array(volumes, np.int64), n)
    columns = TickColumns(
        [f"{600000 + i}.SH" for i in range(n)],
        {"last_price": last_a, "high": last_a[::-1].copy(), "bid_price": ladder, "volume": vols},
        {"last_price": last_a > 0, "high": None, "bid_price": ladder > 0, "volume": None},
    )
    back = PackedColumns.pack(columns).unpack()
    for name, values in columns.values.items():
        assert _same_bits(values, back.values[name]), name
    for name, valid in columns.valid.items():
        assert (valid is None and back.valid[name] is None) or np.array_equal(valid, back.valid[name])


def test_a_whole_market_burst_packs_to_under_a_fifth() -> None:
    """The simulated whole market's columns pack to under a fifth of their size (prices as
    integer offsets, volumes narrowed), exactly."""
    from qmtgate.sim.xtquant import xtdata

    codes = xtdata.get_stock_list_in_sector("沪深A股")
    ticks = xtdata.get_full_tick(codes)
    columns = TickColumns.build(list(ticks), list(ticks.values()))
    packed = PackedColumns.pack(columns)
    raw = sum(v.nbytes for v in columns.values.values())
    assert packed.nbytes < raw / 5
    back = packed.unpack()
    for name, values in columns.values.items():
        assert _same_bits(values, back.values[name]), name
