"""The trading-hours rule knows the exchanges' holidays: an order on a weekday the calendar says has no
session (National Day) is refused before it is sent (``trading_hours``), and the pre-trade check says so."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qmtgate.api.app import create_app

from .conftest import trading_settings

ORDERS = "/api/v1/trading/orders"
CST = dt.timezone(dt.timedelta(hours=8))


def at(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, 10, 30, tzinfo=CST).timestamp() * 1000)


def test_an_order_on_an_exchange_holiday_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(create_app(trading_settings(tmp_path / "a.sqlite")), raise_server_exceptions=False) as c:
        service = c.app.state.trading
        detail = service.lane.xtdata.get_instrument_detail("600036.SH")
        price = round((detail["UpStopPrice"] + detail["DownStopPrice"]) / 2, 2)  # inside the day's limits
        order = {
            "code": "600036.SH",
            "side": "buy",
            "volume": 100,
            "price": price,
            "client_order_id": "hol-1",
        }
        holiday = dt.date(2025, 10, 1)  # a Wednesday: National Day, no session in the simulator's calendar
        monkeypatch.setattr(service.lane, "now_ms", lambda: at(holiday))
        refused = c.post(ORDERS, json=order)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["details"] == {"rule": "trading_hours", "day": "2025-10-01"}
        assert "closed on 2025-10-01" in error["message"]
        checked = c.post(f"{ORDERS}/check", json=order).json()
        assert checked["passed"] is False and checked["error"]["details"]["rule"] == "trading_hours"
        assert [o for o in c.get(ORDERS).json() if o["order_remark"] == "hol-1"] == []

        monkeypatch.setattr(
            service.lane, "now_ms", lambda: at(dt.date(2025, 10, 9))
        )  # the first session after
        after = c.post(f"{ORDERS}/check", json=order).json()
        assert after["passed"] is True, after
        off_risk = service.settings.risk.model_copy(update={"check_trading_hours": False})  # the rule off
        monkeypatch.setattr(service, "settings", service.settings.model_copy(update={"risk": off_risk}))
        monkeypatch.setattr(service.risk, "limits", off_risk)
        monkeypatch.setattr(service.lane, "now_ms", lambda: at(holiday))
        off = c.post(f"{ORDERS}/check", json=order).json()
        assert off["passed"] is True, off
