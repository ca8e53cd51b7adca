"""The cache's xtquant tick dicts: packed into columns once aged, read back exactly as the SDK gave them."""

from __future__ import annotations

import asyncio
import gc
import math
import struct
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qmtgate.hub import raw_ticks
from qmtgate.hub.lvc import LastValueCache
from qmtgate.hub.raw_ticks import PACK_AFTER, RawTicks
from source.fake_xtdata import FakeXtdata


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types (floats bit for bit, so NaN, -0.0 and infinities count)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def pack_all(store: RawTicks, limit: int = 7) -> None:
    while store.pack_slice(float("inf"), limit=limit) or store.due(float("inf")):
        pass


scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)
ladders = st.one_of(
    st.lists(st.floats(allow_nan=True), min_size=5, max_size=5),
    st.lists(st.integers(min_value=-(2**66), max_value=2**66), min_size=5, max_size=5),
    st.lists(st.one_of(st.floats(), st.integers()), max_size=6),
)
values = st.one_of(scalars, ladders)
keys = st.sampled_from(["time", "lastPrice", "volume", "askPrice", "bidVol", "stockStatus", "pe"])
ticks = st.dictionaries(keys, values, max_size=7)
batches = st.lists(
    st.dictionaries(st.sampled_from([f"{i:06d}.SZ" for i in range(12)]), ticks, max_size=12), max_size=5
)


@settings(max_examples=150, deadline=None)
@given(batches=batches, pack_between=st.lists(st.booleans(), min_size=5, max_size=5))
def test_packed_ticks_read_back_exactly_as_the_sdk_gave_them(
    batches: list[dict], pack_between: list[bool]
) -> None:
    store = RawTicks()
    latest: dict[str, dict] = {}
    for batch, pack in zip(batches, pack_between, strict=False):
        store.put(batch, 0.0)
        latest.update(batch)
        if pack:
            pack_all(store)
        for code, tick in latest.items():
            assert same(store.get(code), tick)
            assert all(same(store.value(code, k), v) for k, v in tick.items())
            assert store.value(code, "noSuchKey") is None
    pack_all(store)
    assert store.stats()["fresh"] == 0 or all(not t for t in latest.values())
    codes = [*latest, "999999.SH", *reversed(latest)]
    got = store.many(codes)
    assert list(got) == list(latest)  # the asked order, codes without a tick left out, repeats once
    assert all(same(got[c], latest[c]) for c in latest)
    assert store.known(codes) == set(latest)
    assert all(code in store for code in latest) and "999999.SH" not in store


def test_fresh_dicts_are_the_sdks_own_objects_until_packed() -> None:
    store = RawTicks()
    tick = {"lastPrice": 10.0, "askPrice": [10.01, 10.02, 10.03, 10.04, 10.05]}
    store.put({"600000.SH": tick}, now=100.0)
    assert store.get("600000.SH") is tick
    assert not store.due(100.0 + PACK_AFTER - 0.01)
    assert store.pack_slice(100.0 + PACK_AFTER - 0.01) == 0  # not aged yet
    assert store.pack_slice(100.0 + PACK_AFTER) == 1
    again = store.get("600000.SH")
    assert again is not tick and same(again, tick)


def test_dicts_made_of_packed_rows_serve_the_next_reader_until_the_row_changes() -> None:
    """A watch list polled many times per burst makes its dicts once per burst; a new row of the code (a
    later burst, packed) is never answered with the old dict."""
    store = RawTicks()
    codes = [f"{i:06d}.SZ" for i in range(30)]
    store.put({c: {"lastPrice": 1.0, "v": [1, 2]} for c in codes}, 0.0)
    pack_all(store)
    first = store.many(codes)
    assert all(store.many(codes)[c] is first[c] for c in codes)  # the same objects again
    assert store.get(codes[3]) is first[codes[3]]
    store.put({codes[3]: {"lastPrice": 2.0, "v": [3, 4]}}, 1.0)
    assert store.get(codes[3]) == {"lastPrice": 2.0, "v": [3, 4]}  # fresh wins at once
    pack_all(store)
    assert store.get(codes[3]) == {"lastPrice": 2.0, "v": [3, 4]}  # its new row, not the remembered dict
    assert store.many(codes)[codes[4]] is first[codes[4]]
    many = [f"{i:06d}.SH" for i in range(raw_ticks.MEMO_MAX + 10)]  # a whole market: not memoized
    store.put({c: {"x": 1.0} for c in many}, 2.0)
    pack_all(store, raw_ticks.PACK_SLICE)
    big = store.many(many)
    assert store.many(many)[many[0]] is not big[many[0]] and store.many(many) == big
    assert len(store._memo) <= raw_ticks.MEMO_MAX


def test_a_tick_replaced_before_it_was_packed_is_dropped_and_the_newest_kept() -> None:
    store = RawTicks()
    store.put({"A.SZ": {"v": 1}, "B.SZ": {"v": 2}}, now=0.0)
    store.put({"A.SZ": {"v": 3}}, now=1.0)
    assert store.pack_slice(PACK_AFTER) == 1  # only B: A's first dict is no longer the latest
    assert store.stats()["fresh"] == 1 and store.get("A.SZ") == {"v": 3}
    assert store.pack_slice(1.0 + PACK_AFTER) == 1
    assert store.stats() == {"fresh": 0, "packed": 2, "blocks": 2, "rows_held": 2, "waiting_batches": 0}


def test_a_feed_of_changes_only_keeps_about_one_row_per_code() -> None:
    """Real QMT's whole-market push carries only the codes that changed: old blocks keep a few live rows
    each, and compaction keeps the rows held within a bound of the codes cached."""
    store = RawTicks()
    codes = [f"{i:06d}.SZ" for i in range(2000)]
    store.put({c: {"lastPrice": 1.0, "volume": 1} for c in codes}, 0.0)
    pack_all(store)
    for burst in range(1, 60):
        changed = codes[burst * 37 % 2000 :][:300]
        store.put({c: {"lastPrice": float(burst), "volume": burst} for c in changed}, 0.0)
        pack_all(store)
        stats = store.stats()
        assert stats["packed"] == 2000
        assert stats["rows_held"] <= 2 * 2000 + raw_ticks.PACK_SLICE
    last = {}
    for burst in range(60):
        for c in [*codes] if burst == 0 else codes[burst * 37 % 2000 :][:300]:
            last[c] = (
                {"lastPrice": float(burst), "volume": burst} if burst else {"lastPrice": 1.0, "volume": 1}
            )
    assert store.many(codes) == last


def test_a_whole_market_kept_packed_is_a_fraction_of_the_sdks_dicts() -> None:
    """5,000 ticks of xtquant's layout, each with values of its own (as the SDK's callback gives)."""

    def tick(i: int) -> dict[str, Any]:
        p = 10.0 + i / 100
        return {
            "time": 1_700_000_000_000 + i, "lastPrice": p, "open": p - 0.1, "high": p + 0.2, "low": p - 0.2,
            "lastClose": p - 0.05, "amount": p * 1e6 + i, "volume": 10_000 + i, "pvolume": 1_000_000 + i,
            "stockStatus": 0, "openInt": 13, "transactionNum": 500 + i, "lastSettlementPrice": 0.0,
            "settlementPrice": 0.0, "pe": 0.0, "askPrice": [p + k / 100 for k in range(1, 6)],
            "bidPrice": [p - k / 100 for k in range(5)], "askVol": [300 + k for k in range(5)],
            "bidVol": [400 + k for k in range(5)], "volRatio": 0.0, "speed1Min": 0.0, "speed5Min": 0.0,
        }  # fmt: skip

    gc.collect()
    tracemalloc.start()
    try:
        batch = {f"{i:06d}.SZ": tick(i) for i in range(5000)}
        as_dicts = tracemalloc.get_traced_memory()[0]
        store = RawTicks()
        store.put(batch, 0.0)
        del batch
        pack_all(store, raw_ticks.PACK_SLICE)
        gc.collect()
        packed = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert store.stats()["packed"] == 5000 and store.get("000007.SZ") == tick(7)
    assert packed < as_dicts / 4, (packed, as_dicts)


@pytest.mark.anyio
async def test_the_cache_packs_a_burst_after_its_frames_and_answers_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(raw_ticks, "PACK_AFTER", 0.05)
    fake = FakeXtdata(universe=1200)
    codes = sorted(fake.instruments)
    burst = {code: fake._tick(code) for code in codes}
    copies = {
        code: {**t, **{k: list(v) for k, v in t.items() if isinstance(v, list)}} for code, t in burst.items()
    }
    lvc = LastValueCache()
    lvc.put_raw(burst)
    assert lvc.raw_tick(codes[0]) is burst[codes[0]]
    del burst
    for _ in range(100):
        await asyncio.sleep(0.02)
        if lvc._raw.stats()["fresh"] == 0:
            break
    assert lvc._raw.stats()["fresh"] == 0 and lvc._raw.stats()["waiting_batches"] == 0
    assert lvc.raw(codes) == copies
    assert lvc.has_raw([codes[0], "999999.SH"]) == {codes[0]}
    lvc.stop_packing()
