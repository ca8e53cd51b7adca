"""/metrics exposes the documented series and they move with traffic; an alert fires once per outage."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from api.support import FakeXtdata, LiveServer, make_source, start_server
from qmtgate.api.app import create_app
from qmtgate.config import Settings
from security.support import header, make_keys


def eventually(condition: Callable[[], Any], timeout: float = 10.0, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {message}")
        time.sleep(0.02)


class Receiver:
    """A loopback HTTP server that records webhook posts."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def scrape(
    client: httpx.Client, headers: dict[str, str] | None = None
) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    series: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            series.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return series


def total(series: dict[str, dict[Any, float]], name: str, **labels: str) -> float:
    return sum(
        value
        for key, value in series.get(name, {}).items()
        if all(dict(key).get(k) == v for k, v in labels.items())
    )


def whole_quote_callback(fake: FakeXtdata) -> Callable[[dict[str, Any]], None]:
    subs = [
        cb
        for codes, period, cb in fake.subscriptions.values()
        if period == "tick" and isinstance(codes, tuple)
    ]
    assert subs, "no whole-market subscription"
    return subs[-1]


def test_metrics_exist_and_move_when_traffic_flows() -> None:
    fake = FakeXtdata()
    keys = make_keys()
    app = create_app(Settings(source="sim", auth={"keys": keys.records()}), make_source(fake))
    server: LiveServer = start_server(app)
    admin = header(keys.admin)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            eventually(lambda: any(p == "tick" for _c, p, _cb in fake.subscriptions.values()), message="feed")
            push = whole_quote_callback(fake)
            push({"600000.SH": FakeXtdata._tick("600000.SH")})  # the first push makes the cache live
            before = scrape(client, admin)
            for name in (
                "qmtgate_source_connected",
                "qmtgate_source_state",
                "qmtgate_executor_queue_depth",
                "qmtgate_ws_clients",
                "qmtgate_stream_updates_delivered_total",
                "qmtgate_stream_conflations_total",
                "qmtgate_stream_updates_skipped_total",
                "qmtgate_stream_clients_dropped_total",
                "qmtgate_market_last_tick_age_seconds",
            ):
                assert name in before, name
            assert total(before, "qmtgate_source_connected") == 1.0
            assert set(dict(k)["lane"] for k in before["qmtgate_executor_queue_depth"]) == {
                "control",
                "snapshot",
                "history",
                "download",
            }
            assert total(before, "qmtgate_market_last_tick_age_seconds", market="SH") < 30

            read = header(keys.read)
            for _ in range(3):
                assert client.get("/api/v1/instruments/600000.SH", headers=read).status_code == 200
            assert client.get("/api/v1/capabilities").status_code == 401
            with connect(
                server.url.replace("http", "ws") + "/api/v1/ws", additional_headers=header(keys.stream)
            ) as ws:
                assert json.loads(ws.recv(timeout=10))["type"] == "hello"
                ws.send(json.dumps({"op": "subscribe", "codes": ["600000.SH"]}))
                assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
                eventually(
                    lambda: total(scrape(client, admin), "qmtgate_ws_clients") == 1, message="ws client"
                )
                push({"600000.SH": {**FakeXtdata._tick("600000.SH"), "lastPrice": 10.5}})
                while True:
                    msg = json.loads(ws.recv(timeout=10))
                    if msg["type"] == "data" and not msg["replay"]:
                        break
            after = eventually(
                lambda: (s := scrape(client, admin)) and total(s, "qmtgate_ws_clients") == 0 and s,
                message="ws client gone",
            )
        route = "/api/v1/instruments/{code}"
        assert total(after, "qmtgate_http_requests_total", route=route, status="200") == 3
        assert total(after, "qmtgate_http_request_duration_seconds_count", route=route) == 3
        assert total(after, "qmtgate_http_requests_total", status="401") >= 1
        assert total(after, "qmtgate_auth_failures_total", reason="missing") >= 1
        assert total(
            after, "qmtgate_xtdata_call_duration_seconds_count", function="get_instrument_detail_list"
        ) > total(before, "qmtgate_xtdata_call_duration_seconds_count", function="get_instrument_detail_list")
        assert total(after, "qmtgate_ws_connections_total", route="/api/v1/ws") == 1
        assert total(after, "qmtgate_stream_updates_delivered_total") > total(
            before, "qmtgate_stream_updates_delivered_total"
        )
        assert total(after, "qmtgate_stream_frames_delivered_total") >= 1
        assert total(after, "qmtgate_stream_callback_to_wire_seconds_count") >= 1
        assert total(after, "qmtgate_stream_updates_published_total") >= 2
    finally:
        server.stop()


def test_xtdata_errors_are_counted_per_function() -> None:
    fake = FakeXtdata()
    app = create_app(Settings(source="sim", quotes={"enabled": False}), make_source(fake))
    server = start_server(app)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            fake.fail("get_sector_list", RuntimeError("boom"))
            assert client.get("/api/v1/sectors").status_code == 502
            series = scrape(client)
        assert total(series, "qmtgate_xtdata_call_errors_total", function="get_sector_list") == 1
    finally:
        server.stop()


def test_an_alert_fires_once_for_a_disconnect_and_once_for_the_recovery(receiver: Receiver) -> None:
    fake = FakeXtdata()
    settings = Settings(
        source="sim",
        quotes={"enabled": False},
        alerts={"webhooks": [{"url": receiver.url + "/hook", "format": "json"}], "check_interval": 0.05},
    )
    app = create_app(settings, make_source(fake))
    server = start_server(app)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            fake.down = True
            fake._status_callback({"status": "disconnected"})  # QMT went away (as xtquant reports it)
            eventually(lambda: receiver.posts, message="alert")
            time.sleep(0.5)  # ten more checks while the outage lasts: still one alert
            assert [p["body"]["kind"] for p in receiver.posts] == ["source_disconnected"]
            body = receiver.posts[0]["body"]
            assert (
                body["severity"] == "critical" and body["resolved"] is False and body["source"] == "qmtgate"
            )
            fake.down = False  # the source's supervisor reconnects
            eventually(lambda: len(receiver.posts) == 2, message="recovery alert")
            assert receiver.posts[1]["body"]["kind"] == "source_reconnected"
            assert receiver.posts[1]["body"]["resolved"] is True
            series = scrape(client)
        assert total(series, "qmtgate_alerts_total", kind="source_disconnected", outcome="sent") == 1
    finally:
        server.stop()
