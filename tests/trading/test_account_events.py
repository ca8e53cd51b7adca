"""The account events' rules, without a gateway: the replay ring gives exactly the events after ``since``
or says it cannot; a trading channel never drops or merges an event (quotes around it may be conflated);
a consumer that falls behind is closed, and its resume delivers the rest with no gap and nothing twice."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qmtgate.api.trading_stream import TradingChannel
from qmtgate.hub.clients import ClientOutbox, Frame
from qmtgate.hub.ring import Update
from qmtgate.source.trading.events import AccountEvents


def trading_messages(box: ClientOutbox) -> list[dict]:
    return [m for m in box._frames if isinstance(m, dict) and m.get("type") == "trading"]


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 20),
    published=st.integers(0, 60),
    since=st.integers(-3, 70),
)
def test_replay_gives_exactly_the_events_after_since_or_none(
    capacity: int, published: int, since: int
) -> None:
    events = AccountEvents(ring_capacity=capacity)
    for i in range(published):
        events.publish("order", {"i": i})
    replay = events.replay_since(since, events.epoch)
    oldest_kept = max(1, published - capacity + 1)
    if 0 <= since <= published and since + 1 >= oldest_kept:
        assert replay is not None
        assert [e["seq"] for e in replay] == list(range(since + 1, published + 1))
        assert [e["data"]["i"] for e in replay] == list(range(since, published))
    else:
        assert replay is None
    assert events.replay_since(min(max(since, 0), published), "another-epoch") is None


def test_events_chain_with_prev_seq() -> None:
    events = AccountEvents()
    got = [events.publish(kind, {}) for kind in ("order", "trade", "position", "asset")]
    assert [(e["seq"], e["prev_seq"]) for e in got] == [(1, None), (2, 1), (3, 2), (4, 3)]


def test_quote_conflation_never_touches_account_events() -> None:
    events = AccountEvents()
    box = ClientOutbox(max_frames=4, max_lag_seconds=60)
    channel = TradingChannel(events, box, max_pending=1000)
    channel.subscribe({})
    for seq in range(1, 41):  # quotes past the outbox bound, account events in between
        box.put(Frame("tick", seq, seq, [Update(seq, "tick", "600000.SH", "SH", {"code": "600000.SH"})]))
        if seq % 4 == 0:
            events.publish("order", {"n": seq})
    assert box.stats.conflations > 0  # the quotes were conflated...
    assert [m["data"]["n"] for m in trading_messages(box)] == list(range(4, 41, 4))  # ...the events not


def test_a_slow_consumer_is_closed_and_its_resume_loses_nothing() -> None:
    events = AccountEvents(ring_capacity=1000)
    box = ClientOutbox(max_frames=64, max_lag_seconds=60)
    channel = TradingChannel(events, box, max_pending=16)
    channel.subscribe({})
    for i in range(40):  # nobody reads this connection
        events.publish("order", {"i": i})
    assert box.closed_reason is not None and "too slow" in box.closed_reason
    delivered = trading_messages(box)
    assert [m["seq"] for m in delivered] == list(range(1, len(delivered) + 1))  # a prefix, whole
    assert events.subscribers == 0
    # the client reconnects and resumes from the last event it got
    last = delivered[-1]["seq"]
    fresh = ClientOutbox(max_frames=64, max_lag_seconds=60)
    TradingChannel(events, fresh, max_pending=16).subscribe({"since": last, "epoch": events.epoch})
    events.publish("trade", {"i": 40})
    resumed = trading_messages(fresh)
    assert [m["seq"] for m in resumed] == list(range(last + 1, 42))
    assert all(m["replay"] for m in resumed[:-1]) and resumed[-1]["replay"] is False
    assert fresh.closed_reason is None  # a replay larger than max_pending does not trip the limit


def test_a_resume_from_too_far_back_says_resync() -> None:
    events = AccountEvents(ring_capacity=5)
    for i in range(20):
        events.publish("order", {"i": i})
    box = ClientOutbox()
    TradingChannel(events, box, max_pending=100).subscribe({"since": 3, "epoch": events.epoch})
    kinds = [m["type"] for m in box._frames]
    assert kinds == ["subscribed", "resync"]
    assert box._frames[1]["reason"] == "out_of_window"
