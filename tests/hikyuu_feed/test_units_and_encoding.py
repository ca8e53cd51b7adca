"""Hikyuu's units from raw xtquant ticks, the fast encoder against the flatc builder, the schedule and the
settings: quick tests on a hub without a simulator."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import numpy as np
import pynng
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hikyuu_feed.consumer import Consumer
from hikyuu_feed.decoder import decode, verify
from qmtgate.config import HikyuuSettings
from qmtgate.hikyuu.encode import encode_spot_list, encode_with_builder
from qmtgate.hikyuu.publisher import HikyuuPublisher
from qmtgate.hikyuu.records import SpotColumns, spot_columns
from qmtgate.hikyuu.schedule import FullSchedule
from qmtgate.hub.stream import TICK, HubConfig, StreamHub

CST = dt.timezone(dt.timedelta(hours=8))
T0 = int(dt.datetime(2025, 6, 12, 10, 30, 3, tzinfo=CST).timestamp() * 1000)


def xt_tick(**over: Any) -> dict[str, Any]:
    """A tick as xtquant's get_full_tick / subscribe_whole_quote gives it (volume in lots, amount in yuan)."""
    tick = {
        "time": T0,
        "lastPrice": 10.25,
        "open": 10.0,
        "high": 10.5,
        "low": 9.95,
        "lastClose": 10.1,
        "amount": 123_456_789.0,  # yuan
        "volume": 120_345,  # lots
        "pvolume": 12_034_500,
        "transactionNum": 999,
        "openInt": 13,
        "bidPrice": [10.24, 10.23, 10.22, 0.0, 0.0],
        "bidVol": [12, 34, 56, 0, 0],
        "askPrice": [10.25, 10.26, 10.27, 10.28, 10.29],
        "askVol": [7, 8, 9, 10, 11],
    }
    tick.update(over)
    return tick


class _Source:
    name = "test"

    def __init__(self) -> None:
        self.now = T0

    def now_ms(self) -> int:
        return self.now

    async def sector_members(self, sector: str) -> list[str]:
        return {"my": ["600000.SH", "430047.BJ"]}.get(sector, [])

    # the hub's refcounted upstream subscriptions: nothing upstream here, the test publishes itself
    async def subscribe_whole_quote(self, markets: Any, callback: Any) -> int:
        return 1

    async def subscribe_quote(self, code: str, period: str, callback: Any) -> int:
        return 2

    async def unsubscribe(self, handle: int) -> None:
        return None


def test_units_are_hikyuu_qmt_collectors() -> None:
    """parse_one_result_qmt: amount * 0.0001 (万元), volume in lots (xtquant's volume, not pvolume),
    bid/ask sizes in lots, prices in yuan; zero prices stay 0; index and ETF codes kept as SH/SZ."""
    hub = StreamHub(_Source(), HubConfig())
    data = {
        "600000.SH": xt_tick(),
        "000300.SH": xt_tick(volume=5, amount=50_000.0, pvolume=0),  # an index
        "159915.SZ": xt_tick(lastPrice=0.0, open=0.0, high=0.0, low=0.0),  # an ETF before its first trade
        "430047.BJ": xt_tick(),
        "00700.HK": xt_tick(),  # not Hikyuu's
    }
    updates = hub.publish(TICK, data)
    cols, left_out = spot_columns(updates)
    records = decode(encode_spot_list(cols))
    assert left_out == 1 and [f"{r['market']}{r['code']}" for r in records] == [
        "SH600000",
        "SH000300",
        "SZ159915",
        "BJ430047",
    ]
    first = records[0]
    assert first == {
        "market": "SH",
        "code": "600000",
        "name": "",
        "datetime": "2025-06-12 10:30:03",
        "yesterday_close": 10.1,
        "open": 10.0,
        "high": 10.5,
        "low": 9.95,
        "close": 10.25,
        "amount": pytest.approx(12_345.6789),
        "volume": 120_345.0,
        "bid": [10.24, 10.23, 10.22, 0.0, 0.0],
        "bid_amount": [12.0, 34.0, 56.0, 0.0, 0.0],
        "ask": [10.25, 10.26, 10.27, 10.28, 10.29],
        "ask_amount": [7.0, 8.0, 9.0, 10.0, 11.0],
    }
    assert records[1]["volume"] == 5.0 and records[1]["amount"] == 5.0
    assert records[2]["close"] == records[2]["open"] == 0.0 and records[2]["yesterday_close"] == 10.1


def test_rows_detached_from_their_burst_give_the_same_records() -> None:
    """Cache entries the replay ring dropped hold rows, not columns: a whole-market snapshot mixing both
    is the same, in the cache's order."""
    hub = StreamHub(_Source(), HubConfig(ring_capacity=3))
    hub.publish(TICK, {"600000.SH": xt_tick(), "000001.SZ": xt_tick(lastPrice=11.0)})
    hub.publish(TICK, {"430047.BJ": xt_tick(lastPrice=12.0), "600000.SH": xt_tick(lastPrice=10.3)})
    hub.publish(TICK, {"000002.SZ": xt_tick(lastPrice=13.0)})
    snapshot = [u for (ch, _), u in hub.lvc.updates.items() if ch == TICK]
    assert any(u.burst is None for u in snapshot) and any(u.burst is not None for u in snapshot)
    got = decode(encode_spot_list(spot_columns(snapshot)[0]))
    assert [(r["code"], r["close"]) for r in got] == [
        ("600000", 10.3),
        ("000001", 11.0),
        ("430047", 12.0),
        ("000002", 13.0),
    ]
    assert got[1]["volume"] == 120_345.0 and got[1]["bid_amount"] == [12.0, 34.0, 56.0, 0.0, 0.0]


finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["SH", "SZ", "BJ"]),
            st.from_regex(r"\A[0-9]{6}\Z"),
            st.integers(min_value=0, max_value=4_102_444_800_000),
            st.lists(finite, min_size=7, max_size=7),
            st.lists(finite, min_size=20, max_size=20),
        ),
        max_size=30,
    )
)
def test_fast_encoder_equals_the_flatc_builder(rows: list[Any]) -> None:
    """Any records: the numpy layout decodes (with the tests' own generated code) to exactly what the
    flatc-generated builder's buffer decodes to, and passes the structural verifier."""
    from qmtgate.hikyuu.records import hikyuu_datetime

    records = []
    for market, code, ts, numbers, ladder in rows:
        records.append(
            {
                "market": market,
                "code": code,
                "datetime": hikyuu_datetime(np.array([ts]))[0].decode(),
                **dict(
                    zip(
                        ("yesterday_close", "open", "high", "low", "close", "amount", "volume"),
                        numbers,
                        strict=True,
                    )
                ),
                "bid": ladder[0:5],
                "bid_amount": ladder[5:10],
                "ask": ladder[10:15],
                "ask_amount": ladder[15:20],
            }
        )
    cols = SpotColumns.from_records(records)
    fast, slow = encode_spot_list(cols), encode_with_builder(cols)
    verify(fast)
    verify(slow)
    assert decode(fast) == decode(slow) == [{**r, "name": ""} for r in records]


def test_schedule_opening_and_periodic_brackets() -> None:
    def at(hh: int, mm: int, ss: int = 0, day: int = 12) -> int:
        return int(dt.datetime(2025, 6, day, hh, mm, ss, tzinfo=CST).timestamp() * 1000)

    s = FullSchedule(
        dt.time(9, 30), 60, [(dt.time(9, 30), dt.time(11, 30)), (dt.time(13, 0), dt.time(15, 0))]
    )
    assert s.due(at(9, 29, 59)) is None
    assert s.due(at(9, 30, 1)) == "open"
    s.sent(at(9, 30, 1))
    assert s.due(at(9, 30, 30)) is None  # once a day, and the periodic one counts from it
    assert s.due(at(9, 31, 1)) == "periodic"
    s.sent(at(9, 31, 1))
    assert s.due(at(11, 45)) is None and s.due(at(12, 59)) is None  # lunch
    assert s.due(at(13, 0)) == "periodic"
    late = FullSchedule(dt.time(9, 30), 0, [])
    assert late.due(at(10, 15)) is None  # a gateway started at 10:15 sends no "09:30" bracket
    assert late.due(at(9, 30, 2, day=13)) == "open"  # but does the next day


def test_lan_addresses_need_the_acknowledgement() -> None:
    assert HikyuuSettings().addresses == ("ipc:///tmp/hikyuu_real.ipc", "tcp://127.0.0.1:9200")
    for lan in ("tcp://0.0.0.0:9200", "tcp://*:9200", "tcp://192.168.1.2:9200"):
        with pytest.raises(ValueError, match="allow_lan"):
            HikyuuSettings(addresses=(lan,))
        assert HikyuuSettings(addresses=(lan,), allow_lan=True).allow_lan
    for bad in ("ws://127.0.0.1:9200", "tcp://127.0.0.1"):
        with pytest.raises(ValueError):
            HikyuuSettings(addresses=(bad,))
    with pytest.raises(ValueError, match="HH:MM"):
        HikyuuSettings(full_windows=("15:00-13:00",))


def test_code_lists_and_sectors_and_the_unauthenticated_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A sector plus a code: only those reach the consumer; every start logs that the feed has no auth."""

    async def run() -> tuple[list[list[dict[str, Any]]], dict[str, Any]]:
        hub = StreamHub(_Source(), HubConfig())
        await hub.start()
        pub = HikyuuPublisher(
            hub,
            hub.source,
            HikyuuSettings(
                addresses=("tcp://127.0.0.1:0",),
                markets=(),
                sectors=("my",),
                codes=("000001.SZ",),
                full_interval=0,  # only the live burst (10:30 is inside the periodic windows)
            ),
            check_interval=0.01,
        )
        await pub.start()
        consumer = Consumer(pub.addresses[0])
        try:
            while not pub.stats.joins:  # connected, and the (empty) cache sent for it
                await asyncio.sleep(0.01)
            hub.publish(
                TICK,
                {c: xt_tick() for c in ("600000.SH", "000001.SZ", "000002.SZ", "430047.BJ", "600001.SH")},
            )
            while pub.backlog() or consumer.messages < pub.stats.messages or not pub.stats.messages:
                await asyncio.sleep(0.01)
            return [b.records() for b in consumer.brackets], pub.info()
        finally:
            consumer.close()
            await pub.stop()
            await hub.stop()

    brackets, info = asyncio.run(run())
    assert [[f"{r['market']}{r['code']}" for r in b] for b in brackets] == [
        ["SH600000", "SZ000001", "BJ430047"]
    ]
    assert info["records"] == 3 and info["brackets"] == 1
    assert any("UNAUTHENTICATED" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_pub_socket_is_closed_on_stop() -> None:
    async def run() -> str:
        hub = StreamHub(_Source(), HubConfig())
        await hub.start()
        pub = HikyuuPublisher(hub, hub.source, HikyuuSettings(addresses=("tcp://127.0.0.1:0",)))
        await pub.start()
        address = pub.addresses[0]
        await pub.stop()
        await hub.stop()
        return address

    address = asyncio.run(run())
    with pynng.Pair0() as probe, pytest.raises(pynng.ConnectionRefused):
        probe.dial(address, block=True)


def test_an_address_in_use_is_a_clear_error() -> None:
    """Hikyuu's own collector already listening on the address: say so instead of a bare NNG error."""

    async def run() -> None:
        hub = StreamHub(_Source(), HubConfig())
        with pynng.Pub0() as other:
            listener = other.listen("tcp://127.0.0.1:0")
            address = f"tcp://{listener.local_address}"
            pub = HikyuuPublisher(hub, hub.source, HikyuuSettings(addresses=(address,)))
            with pytest.raises(RuntimeError, match="in use"):
                await pub.start()

    asyncio.run(run())
