"""Issue #16 item 8: the Argus K-line route on a replay source answers like /api/v1/klines, never a 422 for a
valid frequency: bars for a period the source holds, the source's 501 ``unsupported`` for one it does not
(with Argus's ``"success": false``).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.support import LiveServer, start_server
from qmtgate.api.app import create_app
from qmtgate.config import Settings

from .conftest import Recorded

FREQUENCIES = ["1m", "5m", "1d", "1w"]


@pytest.fixture(scope="module")
def replay_http(recorded: Recorded) -> Iterator[httpx.Client]:
    settings = Settings(
        source="replay",
        replay={"db": recorded.path, "date": "2025-06-12", "speed": 10, "start": "09:30:00"},
    )
    server: LiveServer = start_server(create_app(settings))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            yield client
    finally:
        server.stop()


@pytest.mark.parametrize("frequency", FREQUENCIES)
def test_argus_hist_kline_on_a_replay_is_bars_or_501(replay_http: httpx.Client, frequency: str) -> None:
    periods = replay_http.get("/api/v1/capabilities").json()["periods"]
    params = {"symbol": "600000.SH", "start_date": "20250612", "end_date": "20250612", "frequency": frequency}
    argus = replay_http.get("/hist_kline", params=params)
    rest = replay_http.get(
        "/api/v1/klines/600000.SH", params={"period": frequency, "start": "20250612", "end": "20250612"}
    )
    assert argus.status_code == rest.status_code, (argus.text, rest.text)
    if frequency in periods:
        assert argus.status_code == 200, argus.text
        assert argus.json()["success"] is True
    else:
        assert argus.status_code == 501, argus.text
        body = argus.json()
        assert body["success"] is False and body["error"]["code"] == "unsupported"
        assert frequency in body["error"]["message"]
        assert rest.json()["error"]["code"] == "unsupported"


def test_argus_adjusted_prices_on_a_replay_are_501_unless_recorded(replay_http: httpx.Client) -> None:
    kinds = replay_http.get("/api/v1/capabilities").json()["dividend_types"]
    params = {
        "symbol": "600000.SH",
        "start_date": "20250612",
        "end_date": "20250612",
        "frequency": "1m",
        "dividend_type": "front",
    }
    response = replay_http.get("/hist_kline", params=params)
    if "front" in kinds:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 501, response.text
        assert response.json()["success"] is False
        assert response.json()["error"]["code"] == "unsupported"
