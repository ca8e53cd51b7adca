"""The remote ``xttrader`` drop-in: an unchanged xttrader service (tests/trading/scripts/) runs in its own
process against a gateway on the simulator (real uvicorn on loopback): connect, subscribe, order_stock,
its on_stock_order / on_stock_trade / position and asset callbacks on a background thread, queries in
xttype objects with the real attribute names, an order the gateway's risk refuses (-1 and
on_order_error), order_stock_async (seq and its response). A key without the ``trade`` scope cannot connect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ACCOUNT_ID
from .live_support import KEYS, Gateway, ask, live_gateway

SCRIPT = Path(__file__).with_name("scripts") / "xttrader_service.py"
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from live_gateway(tmp_path_factory.mktemp("remote-xttrader") / "audit.sqlite")


def run_service(gateway: Gateway, key: str, price: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), gateway.url, KEYS[key].token, ACCOUNT_ID, str(price)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_an_unchanged_xttrader_service_trades_through_the_gateway(gateway: Gateway) -> None:
    code = "600000.SH"
    with gateway.http() as http:
        before = {p["stock_code"]: p["volume"] for p in http.get("/api/v1/trading/positions").json()}
    done = run_service(gateway, "both", ask(code))
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["connect"] == 0 and out["subscribe"] == 0
    order_id = out["order_id"]
    assert isinstance(order_id, int) and order_id > 0
    # pushes: the order's events with the caller's remark, the trade, position and asset, as xttype objects
    mine = [o for o in out["orders"] if o[1] == order_id]
    assert mine and all(o[0] == "XtOrder" and o[3] == "my remark" and o[4] == code for o in mine)
    assert 56 in [o[2] for o in mine]  # ORDER_SUCCEEDED
    assert ["XtTrade", order_id, 100] == out["trades"][0][:3]
    assert any(p[0] == "XtPosition" and p[1] == code for p in out["positions"])
    assert out["assets"] and out["assets"][0][0] == "XtAsset"
    assert set(out["threads"]) == {"qmtgate-xttrader-callback"}  # a background thread, not the caller's
    # queries
    assert out["asset_before"][0] == "XtAsset" and out["asset_before"][1] > 0
    assert out["position"][0] == "XtPosition" and out["position"][1] == before.get(code, 0) + 100
    assert ["XtPosition", code, before.get(code, 0) + 100] in out["query_positions"]
    assert ["XtOrder", order_id, 56, "my remark"] == out["order"]
    # refused by the gateway's risk (odd lot): -1 and on_order_error, as the SDK
    assert out["refused"] == -1
    assert any(e[0] == "XtOrderError" and "lot" in e[2].lower() for e in out["errors"] if isinstance(e, list))
    # order_stock_async: a seq, then its response with the order id and the caller's remark
    response = next(r for r in out["responses"] if r[1] == out["seq"])
    assert response[0] == "XtOrderResponse" and response[2] > 0 and response[3] == "async"
    # each remote order went to QMT under a generated client_order_id (its remark there), once
    with gateway.http() as http:
        orders = {o["order_id"]: o for o in http.get("/api/v1/trading/orders").json()}
    remark = orders[order_id]["order_remark"]
    assert remark != "my remark" and len(remark) <= 24
    assert [o for o in orders.values() if o["order_remark"] == remark] == [orders[order_id]]
    trail = gateway.app.state.trading.audit.rows(remark)
    assert [r["payload"]["remark"] for r in trail if r["kind"] == "request.place"] == ["my remark"]


def test_a_key_without_the_trade_scope_cannot_connect(gateway: Gateway, tmp_path: Path) -> None:
    script = tmp_path / "connect.py"
    script.write_text(
        "import sys, qmtgate.remote\n"
        "qmtgate.remote.install(sys.argv[1], api_key=sys.argv[2])\n"
        "from xtquant.xttrader import XtQuantTrader\n"
        "t = XtQuantTrader('userdata_mini', 1)\n"
        "t.start()\n"
        "print(t.connect())\n"
        "t.stop()\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for key in ("read", "stream"):
        done = subprocess.run(
            [sys.executable, str(script), gateway.url, KEYS[key].token],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "-1", (key, done.stdout)
