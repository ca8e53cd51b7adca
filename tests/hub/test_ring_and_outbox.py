"""Replay ring and per-client outbox: resume windows, conflation and the lag policy."""

from __future__ import annotations

import asyncio

import pytest

from qmtgate.hub.clients import ClientOutbox, Frame, Interest
from qmtgate.hub.ring import ReplayRing, Update


def up(seq: int, code: str = "600000.SH", channel: str = "tick") -> Update:
    return Update(seq, channel, code, code[-2:], {"code": code, "last_price": float(seq)})


def test_ring_returns_everything_after_a_seq_inside_the_window() -> None:
    ring = ReplayRing(5)
    ring.extend(up(s) for s in range(1, 9))  # keeps 4..8
    assert [u.seq for u in ring.since(5)] == [6, 7, 8]
    assert [u.seq for u in ring.since(3)] == [4, 5, 6, 7, 8]  # 3 itself was seen by the client
    assert ring.since(8) == []
    assert ring.since(2) is None  # 3 was evicted: the client must take a snapshot


def test_empty_ring() -> None:
    ring = ReplayRing(3)
    assert ring.since(0) == []
    with pytest.raises(ValueError):
        ReplayRing(0)


def test_interest_matches_codes_and_markets() -> None:
    i = Interest(codes={"600000.SH"}, markets={"SZ"})
    assert i.matches(up(1, "600000.SH")) and i.matches(up(2, "000001.SZ"))
    assert not i.matches(up(3, "600519.SH"))


def test_outbox_keeps_every_frame_while_the_client_keeps_up() -> None:
    async def run() -> list[Frame]:
        box = ClientOutbox(max_frames=4)
        for s in range(1, 4):
            box.put(Frame("tick", s, s, [up(s)]))
        return [await box.get() for _ in range(3)]

    frames = asyncio.run(run())
    assert [f.seq_from for f in frames] == [1, 2, 3] and not any(f.conflated for f in frames)


def test_outbox_conflates_to_the_latest_row_per_code_when_full() -> None:
    async def run() -> tuple[list[Frame], ClientOutbox]:
        box = ClientOutbox(max_frames=3, max_lag_seconds=60)
        seq = 0
        for _ in range(10):
            ups = []
            for code in ("600000.SH", "000001.SZ"):
                seq += 1
                ups.append(up(seq, code))
            box.put(Frame("tick", ups[0].seq, ups[-1].seq, ups))
        frames = []
        while len(box):
            frames.append(await box.get())
        return frames, box

    frames, box = asyncio.run(run())
    assert len(frames) <= 4
    conflated = [f for f in frames if f.conflated]
    assert conflated, "a lagging client gets conflated frames"
    latest = {u.code: u.seq for f in frames for u in f.updates}
    assert latest == {"600000.SH": 19, "000001.SZ": 20}, "the latest value per code always survives"
    assert box.stats.updates_skipped > 0 and box.closed_reason is None


def test_outbox_disconnects_a_client_that_stays_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    import qmtgate.hub.clients as clients

    now = [1000.0]
    monkeypatch.setattr(clients.time, "monotonic", lambda: now[0])

    async def run() -> tuple[ClientOutbox, Frame | None]:
        box = ClientOutbox(max_frames=2, max_lag_seconds=5)
        for s in range(1, 20):
            box.put(Frame("tick", s, s, [up(s)]))
            now[0] += 1.0
        return box, await box.get()

    box, frame = asyncio.run(run())
    assert box.closed_reason and "too slow" in box.closed_reason
    assert frame is None


def test_a_lagging_client_is_conflated_before_it_is_dropped_even_when_bursts_are_slow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bursts further apart than max_lag_seconds: the first overflow conflates, a later one drops."""
    import qmtgate.hub.clients as clients

    now = [1000.0]
    monkeypatch.setattr(clients.time, "monotonic", lambda: now[0])
    box = ClientOutbox(max_frames=2, max_lag_seconds=2)
    for s in range(1, 4):
        box.put(Frame("tick", s, s, [up(s)]))
        now[0] += 3.0
    assert box.stats.conflations == 1 and box.closed_reason is None
    for s in range(4, 7):
        box.put(Frame("tick", s, s, [up(s)]))
        now[0] += 3.0
    assert box.closed_reason and "too slow" in box.closed_reason


def _burst_updates(n: int) -> list[Update]:
    from qmtgate.hub.ring import TickBurst
    from qmtgate.source.convert import TickColumns

    codes = [f"{600000 + i}.SH" for i in range(n)]
    ticks = [
        {
            "time": 1749695400000,
            "lastPrice": 10.0 + i / 100,
            "open": 10.0,
            "high": 11.0,
            "low": 9.0,
            "lastClose": 10.0,
            "volume": 100 + i,
            "amount": 1e5 + i,
            "transactionNum": i,
            "openInt": 13,
            "bidPrice": [10.0, 9.99, 0.0, 0.0, 0.0],
            "bidVol": [1, 2, 0, 0, 0],
            "askPrice": [10.01, 10.02, 10.03, 10.04, 10.05],
            "askVol": [3, 4, 5, 6, 7],
        }
        for i in range(n)
    ]
    burst = TickBurst(TickColumns.build(codes, ticks))
    burst.updates = [Update(i + 1, "tick", c, "SH", burst=burst, index=i) for i, c in enumerate(codes)]
    return burst.updates


def test_a_bursts_markets_are_computed_once_and_a_subset_gets_its_own() -> None:
    from qmtgate.hub.ring import markets_of

    updates = _burst_updates(10)
    updates[7].market = "SZ"
    whole = markets_of(updates)
    assert whole == {"SH", "SZ"} and markets_of(updates) is whole  # shared by fan-out and listeners
    part = updates[:3]
    assert markets_of(part) == {"SH"} and markets_of(part) is not whole
    assert markets_of([]) == set()
    bars = [Update(1, "1m", "000001.SZ", "SZ", row={"code": "000001.SZ"})]
    assert markets_of(bars) == {"SZ"}


def test_a_burst_builds_only_the_rows_a_few_code_client_asks_for() -> None:
    updates = _burst_updates(400)
    rows = updates[0].burst.columns.rows()  # type: ignore[union-attr]
    for i in (3, 7, 250):
        assert updates[i].row == rows[i]
    assert sum(u._row is not None for u in updates) == 3  # the other 397 rows were never built
    assert updates[7].row is updates[7].row  # built once


def test_a_burst_asked_for_many_rows_builds_the_rest_in_one_pass() -> None:
    updates = _burst_updates(400)
    rows = updates[0].burst.columns.rows()  # type: ignore[union-attr]
    assert [u.row for u in updates] == rows  # one by one up to 1/8, then all at once, same rows
    assert updates[0].burst.complete  # type: ignore[union-attr]


def test_an_arrow_frame_of_a_few_codes_comes_from_the_columns_and_equals_the_row_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qmtgate.api import stream_codec

    updates = _burst_updates(400)
    few = [updates[i] for i in (3, 50, 7, 399)]
    from_columns = stream_codec.frame_table(Frame("tick", few[0].seq, few[-1].seq, few))
    assert all(u._row is None for u in updates)  # no row dict was built for it
    monkeypatch.setattr(stream_codec, "burst_table", lambda _updates: None)  # force the row path
    from_rows = stream_codec.frame_table(Frame("tick", few[0].seq, few[-1].seq, few))
    assert from_columns.equals(from_rows) and from_columns.schema.equals(from_rows.schema)
    assert from_columns.column("code").to_pylist() == [u.code for u in few]


def test_an_outbox_is_busy_from_its_first_frame_until_the_sender_asks_for_more() -> None:
    async def run() -> list[bool]:
        box = ClientOutbox(max_frames=4)
        seen = [box.idle]
        box.put(Frame("tick", 1, 1, [up(1)]))
        box.put(Frame("tick", 2, 2, [up(2)]))
        seen.append(box.idle)
        await box.get()
        await box.get()  # the second frame is being written: still busy
        seen.append(box.idle)
        waiting = asyncio.create_task(box.get())  # back for more: both frames are written
        await asyncio.sleep(0)
        seen.append(box.idle)
        waiting.cancel()
        return seen

    assert asyncio.run(run()) == [True, False, False, True]


def test_the_hub_is_quiet_only_when_no_burst_is_on_its_way(monkeypatch: pytest.MonkeyPatch) -> None:
    from qmtgate.hub import stream as stream_mod
    from qmtgate.hub.stream import TICK, StreamHub

    class _NoSource:
        name = "none"

    now = [100.0]
    monkeypatch.setattr(stream_mod.time, "monotonic", lambda: now[0])
    monkeypatch.setattr("qmtgate.hub.clients.time.monotonic", lambda: now[0])
    hub = StreamHub(_NoSource())
    fast, slow = hub.connect(), hub.connect()
    assert hub.quiet()
    hub._inbox.append((TICK, {}, 0.0))  # a batch waits for the pump
    assert not hub.quiet()
    hub._inbox.clear()
    fast.outbox.put(Frame("tick", 1, 1, [up(1)]))
    assert not hub.quiet()
    slow.outbox.put(Frame("tick", 1, 1, [up(1)]))
    now[0] += 0.5
    fast.outbox.discard()  # written (or gone)
    assert not hub.quiet()  # the other client got its frame 0.5 s ago and is still writing it
    now[0] += 1.0
    assert hub.quiet()  # busy for longer than a second: a slow client, which nobody waits for


def test_arrow_frames_carry_5_level_books_as_fixed_size_lists() -> None:
    import pyarrow as pa

    from qmtgate.api import stream_codec

    updates = _burst_updates(50)
    table = stream_codec.frame_table(Frame("tick", 1, 50, updates))
    for name in ("bid_price", "bid_volume", "ask_price", "ask_volume"):
        assert pa.types.is_fixed_size_list(table.schema.field(name).type), name
        assert table.schema.field(name).type.list_size == 5
    assert table.column("seq").to_pylist() == list(range(1, 51))
    assert table.column("bid_price").to_pylist()[0] == [10.0, 9.99, None, None, None]
    odd = pa.table({"bid_price": pa.array([[1.0, 2.0], [1.0, 2.0, 3.0, 4.0, 5.0]], pa.list_(pa.float64()))})
    kept = stream_codec._fixed_ladders(odd)  # a book of another depth somewhere: the column stays a list
    assert pa.types.is_list(kept.schema.field("bid_price").type) and kept.equals(odd)
