"""Alert conditions (stale market, repeated errors, reminders) and payload formats, without a server."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from qmtgate.config import AlertSettings, WebhookSettings
from qmtgate.ops.alerts import Alert, AlertMonitor, render
from qmtgate.source.events import SourceEvent, SourceEventKind

CST = dt.timezone(dt.timedelta(hours=8))


@dataclass
class Status:
    connected: bool = True
    connection: int = 1
    name: str = "simulated"
    message: str | None = None

    @property
    def state(self) -> Any:
        @dataclass
        class S:
            value: str

        return S("ready" if self.connected else "unavailable")


class FakeSource:
    def __init__(self, now: dt.datetime) -> None:
        self.st = Status()
        self.now = now

    def status(self) -> Status:
        return self.st

    def is_connected(self) -> bool:
        return self.st.connected

    def now_ms(self) -> int:
        return int(self.now.timestamp() * 1000)


class Collect:
    def __init__(self) -> None:
        self.sent: list[Alert] = []

    def send(self, alert: Alert) -> bool:
        self.sent.append(alert)
        return True

    async def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def monitor(
    source: FakeSource, ages: dict[str, float | None], errors: list[int], clock: Clock, **kw: Any
) -> tuple[AlertMonitor, Collect]:
    sink = Collect()

    async def trading(day: dt.date) -> bool:
        return day.weekday() < 5

    m = AlertMonitor(
        AlertSettings(**kw),
        sink,  # type: ignore[arg-type]
        source,
        markets=list(ages),
        last_tick_age=ages.get,
        is_trading_day=trading,
        error_count=lambda: errors[0],
        clock=clock,
    )
    return m, sink


def test_a_gateway_started_mid_session_is_not_stale_before_its_first_tick_is_due() -> None:
    """No tick seen yet is silence since the monitor began watching, not since the market opened."""
    source = FakeSource(dt.datetime(2025, 6, 12, 14, 48, tzinfo=CST))  # 108 min into the afternoon
    clock = Clock()
    m, sink = monitor(source, {"SH": None}, [0], clock, stale_seconds=60)
    asyncio.run(m.check())
    assert sink.sent == []
    clock.t += 61  # a minute on and still nothing: that is stale
    asyncio.run(m.check())
    assert [(a.kind, a.details["silent_seconds"]) for a in sink.sent] == [("market_stale", 61.0)]


def test_stale_market_alerts_once_in_session_and_not_at_lunch() -> None:
    source = FakeSource(dt.datetime(2025, 6, 12, 10, 30, tzinfo=CST))
    ages: dict[str, float | None] = {"SH": 5.0, "SZ": 5.0}
    clock = Clock()
    m, sink = monitor(source, ages, [0], clock, stale_seconds=60)
    asyncio.run(m.check())
    assert sink.sent == []
    ages["SZ"] = 120.0
    for _ in range(5):
        clock.t += 1
        asyncio.run(m.check())
    assert [(a.kind, a.details["market"]) for a in sink.sent] == [("market_stale", "SZ")]
    ages["SZ"] = 1.0
    asyncio.run(m.check())
    assert [a.kind for a in sink.sent] == ["market_stale", "market_recovered"]
    source.now = dt.datetime(2025, 6, 12, 12, 0, tzinfo=CST)  # lunch break: silence is normal
    ages["SH"] = 3000.0
    asyncio.run(m.check())
    assert len(sink.sent) == 2
    source.now = dt.datetime(2025, 6, 12, 13, 0, 30, tzinfo=CST)  # 30 s after the afternoon open
    asyncio.run(m.check())
    assert len(sink.sent) == 2
    source.now = dt.datetime(2025, 6, 14, 10, 30, tzinfo=CST)  # Saturday
    asyncio.run(m.check())
    assert len(sink.sent) == 2


def test_repeated_errors_alert_once_and_remind_after_repeat_seconds() -> None:
    source = FakeSource(dt.datetime(2025, 6, 12, 20, 0, tzinfo=CST))
    errors = [0]
    clock = Clock()
    m, sink = monitor(source, {}, errors, clock, error_threshold=5, error_window=60, repeat_seconds=600)
    asyncio.run(m.check())
    for _ in range(10):
        clock.t += 1
        errors[0] += 3
        asyncio.run(m.check())
    assert [a.kind for a in sink.sent] == ["errors"]
    clock.t += 601
    errors[0] += 10
    asyncio.run(m.check())
    assert [a.kind for a in sink.sent] == ["errors", "errors"]
    assert "still" in sink.sent[-1].title


def test_errors_during_an_outage_do_not_raise_a_second_alert() -> None:
    source = FakeSource(dt.datetime(2025, 6, 12, 20, 0, tzinfo=CST))
    errors = [0]
    clock = Clock()
    m, sink = monitor(source, {}, errors, clock, error_threshold=5)
    source.st.connected = False
    for _ in range(10):
        clock.t += 1
        errors[0] += 10
        asyncio.run(m.check())
    assert [a.kind for a in sink.sent] == ["source_disconnected"]


def _event(kind: SourceEventKind, connection: int) -> SourceEvent:
    return SourceEvent(kind, "simulated", connection, kind is SourceEventKind.CONNECTED)


def test_a_restart_between_checks_is_one_notice() -> None:
    source = FakeSource(dt.datetime(2025, 6, 12, 20, 0, tzinfo=CST))
    m, sink = monitor(source, {}, [0], Clock())
    asyncio.run(m.check())
    m.on_source_event(_event(SourceEventKind.DISCONNECTED, 1))  # the source's events, between checks
    m.on_source_event(_event(SourceEventKind.CONNECTED, 2))
    asyncio.run(m.check())
    asyncio.run(m.check())
    assert [(a.kind, a.details["epoch"]) for a in sink.sent] == [("source_restarted", 2)]


def test_an_outage_across_a_check_alerts_and_clears_on_the_connected_event() -> None:
    source = FakeSource(dt.datetime(2025, 6, 12, 20, 0, tzinfo=CST))
    m, sink = monitor(source, {}, [0], Clock())
    m.on_source_event(_event(SourceEventKind.DISCONNECTED, 1))
    source.st.connected = False
    asyncio.run(m.check())
    assert [a.kind for a in sink.sent] == ["source_disconnected"]
    source.st.connected, source.st.connection = True, 2
    m.on_source_event(_event(SourceEventKind.CONNECTED, 2))  # cleared at once, not at the next check
    assert [(a.kind, a.resolved) for a in sink.sent] == [
        ("source_disconnected", False),
        ("source_reconnected", True),
    ]
    asyncio.run(m.check())
    assert len(sink.sent) == 2


ALERT = Alert(
    "source_disconnected", "critical", "simulated source disconnected", "QMT is not reachable", time=0
)


@pytest.mark.parametrize(
    ("fmt", "check"),
    [
        (
            "json",
            lambda b: b["kind"] == "source_disconnected" and b["host"] == "pc1" and b["resolved"] is False,
        ),
        ("wecom", lambda b: b["msgtype"] == "text" and "qmtgate [pc1]" in b["text"]["content"]),
        ("dingtalk", lambda b: b["msgtype"] == "text" and "disconnected" in b["text"]["content"]),
        ("feishu", lambda b: b["msg_type"] == "text" and "qmtgate" in b["content"]["text"]),
    ],
)
def test_payload_formats(fmt: str, check: Any) -> None:
    url, body = render(ALERT, WebhookSettings(url="https://example.invalid/hook", format=fmt), host="pc1")
    assert url == "https://example.invalid/hook"
    assert check(body)


def test_dingtalk_and_feishu_signatures() -> None:
    url, _ = render(
        ALERT,
        WebhookSettings(url="https://x.invalid/robot/send?access_token=t", format="dingtalk", secret="SEC"),
        host="h",
        now=1700000000.0,
    )
    query = parse_qs(urlsplit(url).query)
    ts = query["timestamp"][0]
    expected = base64.b64encode(hmac.new(b"SEC", f"{ts}\nSEC".encode(), hashlib.sha256).digest()).decode()
    assert ts == "1700000000000" and query["sign"][0] == expected and query["access_token"] == ["t"]
    _, body = render(
        ALERT,
        WebhookSettings(url="https://x.invalid/hook", format="feishu", secret="SEC"),
        host="h",
        now=1700000000.0,
    )
    assert body["timestamp"] == "1700000000"
    assert (
        body["sign"] == base64.b64encode(hmac.new(b"1700000000\nSEC", b"", hashlib.sha256).digest()).decode()
    )
