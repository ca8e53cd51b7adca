"""Per-key quotas count what is served, and a cost bucket weighs requests by their rows (issue #17 items
5 and 11): sectors and markets expand before the key's ``max_batch_codes`` / ``max_stream_codes`` apply,
on the normalized routes, the xtquant drop-in's ``full_tick`` (route and fast lane), the compat routes and
the WebSocket; ``get_full_tick`` has a code limit; an over-large K-line answer says how to page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.support import FakeXtdata
from qmtgate.security.keys import NewKey, generate_key
from qmtgate.security.ratelimit import RateLimiter

from .support import Keys, auth_app, header, make_keys


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


@pytest.fixture(scope="module")
def one() -> NewKey:
    """A read+stream key that may cover one code per request and stream one code."""
    return generate_key("one", ["read", "stream"], max_batch_codes=1, max_stream_codes=1)


def app_with(keys: Keys, extra: list[NewKey], **overrides: Any) -> Any:
    auth = {"keys": [*keys.records(), *(k.record.model_dump() for k in extra)]}
    return auth_app(keys, FakeXtdata(), auth=auth, **overrides)


def too_large(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "too_large"
    return error


def test_sectors_and_markets_count_as_their_members(keys: Keys, one: NewKey) -> None:
    with TestClient(app_with(keys, [one]), raise_server_exceptions=False) as c:
        h = header(one)
        assert c.get("/api/v1/snapshots", params={"codes": "600000.SH"}, headers=h).status_code == 200
        error = too_large(c.get("/api/v1/snapshots", params={"sector": "沪深A股"}, headers=h))
        assert error["details"]["requested"] == 2 and error["details"]["limit"] == 1
        too_large(c.get("/api/v1/snapshots", params={"markets": "SH"}, headers=h))
        for codes in (["SH", "SZ", "BJ"], ["SZ"], ["600000.SH", "000001.SZ"]):
            too_large(c.post("/api/v1/xt/full_tick", json={"codes": codes}, headers=h))
        assert c.post("/api/v1/xt/full_tick", json={"codes": ["600000.SH"]}, headers=h).status_code == 200
        # a key without a quota still gets whole markets
        whole = c.post("/api/v1/xt/full_tick", json={"codes": ["SH", "SZ"]}, headers=header(keys.read))
        assert whole.status_code == 200


def test_full_tick_has_a_code_limit(keys: Keys) -> None:
    app = auth_app(keys, limits={"max_tick_codes": 100})
    with TestClient(app, raise_server_exceptions=False) as c:
        codes = [f"{600000 + i:06d}.SH" for i in range(101)]
        error = too_large(c.post("/api/v1/xt/full_tick", json={"codes": codes}, headers=header(keys.read)))
        assert error["details"] == {"count": 101, "limit": 100}


def test_websocket_markets_and_sectors_count_for_the_stream_quota(keys: Keys, one: NewKey) -> None:
    with (
        TestClient(app_with(keys, [one]), raise_server_exceptions=False) as c,
        c.websocket_connect("/api/v1/ws", headers=header(one)) as ws,
    ):
        assert json.loads(ws.receive_text())["type"] == "hello"
        for request in ({"markets": ["SH"]}, {"sectors": ["沪深A股"]}):
            ws.send_text(json.dumps({"op": "subscribe", **request}))
            msg = json.loads(ws.receive_text())
            assert msg["type"] == "error" and msg["error"]["code"] == "too_many_codes", msg
        ws.send_text(json.dumps({"op": "subscribe", "codes": ["600000.SH"]}))
        assert json.loads(ws.receive_text())["type"] == "subscribed"


def test_cost_bucket_weighs_requests_by_rows(keys: Keys) -> None:
    app = auth_app(keys, rate_limit={"cost_rate": 1, "cost_burst": 40})
    with TestClient(app, raise_server_exceptions=False) as c:
        h = header(keys.read)
        params = {"period": "1d", "count": 30}
        assert c.get("/api/v1/klines/600000.SH", params=params, headers=h).status_code == 200  # 30 of 40
        spent = c.get("/api/v1/klines/600000.SH", params=params, headers=h)
        assert spent.status_code == 429
        error = spent.json()["error"]
        assert error["code"] == "rate_limited" and error["details"]["limit"] == "cost"
        assert int(spent.headers["Retry-After"]) >= 15  # 30 units at 1 a second, 10 left
        # cheap requests (no rows) and other keys are unaffected
        assert c.get("/api/v1/capabilities", headers=h).status_code == 200
        assert c.get("/api/v1/klines/600000.SH", params=params, headers=header(keys.admin)).status_code == 200


def test_kline_over_the_row_limit_says_how_to_page(keys: Keys) -> None:
    app = auth_app(keys, limits={"max_kline_rows": 1000})
    with TestClient(app, raise_server_exceptions=False) as c:
        h = header(keys.read)
        error = too_large(
            c.get("/api/v1/klines/600000.SH", params={"period": "1m", "start": "20240101"}, headers=h)
        )
        assert error["details"]["max_bars_per_code"] == 1000
        assert "end=" in error["details"]["hint"]
        drop_in = c.get(
            "/api/v1/xt/market_data",
            params={"codes": "600000.SH", "period": "1m", "start_time": "20240101"},
            headers=h,
        )
        assert too_large(drop_in)["details"]["max_bars_per_code"] == 1000


def test_rate_limiter_cost_and_debt() -> None:
    now = [0.0]
    limiter = RateLimiter(10, 100, clock=lambda: now[0])
    assert limiter.take("k", cost=250) == 0.0  # dearer than the bucket: allowed from a full bucket
    assert limiter.take("k", cost=1) == pytest.approx(15.1)  # then in debt: -150 + 1 needed at 10/s
    now[0] = 16.0
    assert limiter.take("k", cost=1) == 0.0


def test_json_answers_have_a_lower_row_limit_than_arrow(keys: Keys) -> None:
    app = auth_app(keys, limits={"max_kline_rows": 1000, "max_text_rows": 100})
    with TestClient(app, raise_server_exceptions=False) as c:
        h = header(keys.read)
        params: dict[str, Any] = {"period": "1d", "count": 500}
        error = too_large(c.get("/api/v1/klines/600000.SH", params=params, headers=h))
        assert error["details"]["limit"] == 100 and "format=arrow" in error["details"]["hint"]
        arrow = c.get("/api/v1/klines/600000.SH", params={**params, "format": "arrow"}, headers=h)
        assert arrow.status_code == 200


def test_the_drop_in_splits_code_batches_over_the_row_limit() -> None:
    from api.support import make_source, start_server
    from qmtgate.api.app import create_app
    from qmtgate.config import Settings
    from qmtgate.remote._session import RemoteSession

    settings = Settings(source="sim", limits={"max_kline_rows": 25})
    server = start_server(create_app(settings, make_source(FakeXtdata())))
    try:
        session = RemoteSession(server.url)
        codes = ["600000.SH", "000001.SZ", "510300.SH", "430047.BJ"]
        frames = session.kline_frames(["close"], codes, "1d", "", "", 10, "none", True)
        assert set(frames) == set(codes)
        # 4 codes x count 10 is over the limit of 25 rows: served 2 codes per request
        assert all(len(frame) > 0 for frame in frames.values())
        with pytest.raises(Exception) as refused:  # one code over the limit: the error says how to page
            session.kline_frames(["close"], ["600000.SH"], "1d", "", "", 30, "none", True)
        assert getattr(refused.value, "code", None) == "too_large"
        session.client.close()
    finally:
        server.stop()
