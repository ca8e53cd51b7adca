"""The get_full_tick fast lane answers exactly as the FastAPI route, with the same security and headers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from qmtgate.api.app import create_app
from qmtgate.api.fastlane import MAX_BODY, FullTickFastLane
from qmtgate.security.keys import generate_key

from .sim_support import sim_settings, wait_live
from .support import LiveServer, start_server

PATH = "/api/v1/xt/full_tick"
READ = generate_key("reader", ["read"])
STREAM = generate_key("streamer", ["stream"])


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[LiveServer, Any]]:
    settings = sim_settings(auth={"keys": [READ.record.model_dump(), STREAM.record.model_dump()]})
    app = create_app(settings)
    server = start_server(app)
    with httpx.Client(base_url=server.url, timeout=180, headers={"X-API-Key": READ.token}) as client:
        wait_live(client)
    yield server, app
    server.stop()


def lane_of(app: Any) -> FullTickFastLane:
    layer = app.middleware_stack
    while not isinstance(layer, FullTickFastLane):
        layer = layer.app
    return layer


def post(server: LiveServer, body: Any, key: str | None = READ.token) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    return httpx.post(server.url + PATH, json=body, headers=headers, timeout=30)


@pytest.mark.parametrize(
    "codes",
    [
        ["600000.SH"],
        ["600000.SH", "sz000001", "not a code", "600000.SH", "999999.SH"],  # dupes, malformed, unknown
        ["BJ", "600519.SH"],  # a market token and a code
        [],
    ],
)
def test_the_lane_answers_as_the_route(gateway: tuple[LiveServer, Any], codes: list[str]) -> None:
    server, app = gateway
    lane = lane_of(app)
    served = lane.served
    fast = post(server, {"codes": codes})
    # a market token is a large answer: the route encodes it off the event loop (issue #17 item 5)
    expected = served + (0 if any(c in ("SH", "SZ", "BJ") for c in codes) else 1)
    assert lane.served == expected, "the lane answered (or left a whole market to the route)"
    routed = post(server, {"codes": codes, "note": "an extra key: the lane leaves it to the route"})
    assert lane.served == expected, "the route answered"
    assert fast.status_code == routed.status_code == 200
    assert fast.json() == routed.json()
    assert fast.json()["data"] or not codes
    for name in ("content-type", "x-source", "server-timing", "x-request-id"):
        assert (name in fast.headers) == (name in routed.headers), name
    assert fast.headers["content-type"] == routed.headers["content-type"]


def test_security_is_the_routes(gateway: tuple[LiveServer, Any]) -> None:
    server, app = gateway
    lane = lane_of(app)
    served = lane.served
    anonymous = post(server, {"codes": ["600000.SH"]}, key=None)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
    wrong_scope = post(server, {"codes": ["600000.SH"]}, key=STREAM.token)
    assert wrong_scope.status_code == 403 and wrong_scope.json()["error"]["code"] == "forbidden"
    assert lane.served == served, "refused requests never reach an answer"


def test_odd_bodies_get_the_routes_errors(gateway: tuple[LiveServer, Any]) -> None:
    server, _ = gateway
    bad = [
        b"not json",
        b'{"codes": "600000.SH"}',
        b'{"codes": [1, 2]}',
        b"[]",
    ]
    for body in bad:
        r = httpx.post(
            server.url + PATH,
            content=body,
            headers={"X-API-Key": READ.token, "content-type": "application/json"},
            timeout=30,
        )
        assert r.status_code == 422, body
        assert r.json()["error"]["code"] == "validation_error", body


def test_a_large_body_goes_to_the_route_whole(gateway: tuple[LiveServer, Any]) -> None:
    server, app = gateway
    lane = lane_of(app)
    codes = [f"{600000 + i:06d}.SH" for i in range(MAX_BODY // 10)]  # ~90 KB of JSON
    served = lane.served
    r = post(server, {"codes": codes})
    assert lane.served == served
    assert r.status_code == 200 and "600000.SH" in r.json()["data"]
