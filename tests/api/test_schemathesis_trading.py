"""Schemathesis over the trading routes (off in test_schemathesis.py's gateway): with trading on, on the
simulator's paper broker, no generated request (valid or not) gets a 5xx or an answer off its schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis

from qmtgate.api.app import create_app

from .schemathesis_support import CHECKS, fuzz_settings, load_schema
from .sim_support import sim_settings, wait_live
from .support import start_server


@pytest.fixture(scope="module")
def trading_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    audit: Path = tmp_path_factory.mktemp("st-trading") / "audit.sqlite"
    settings_ = sim_settings(
        trading={"enabled": True, "account_id": "8880001", "userdata_path": "/tmp/qmtgate-sim/userdata_mini",
                 "audit_path": str(audit), "allow_loopback_without_auth": True, "response_timeout": 1.0,
                 "risk": {"max_orders_per_second": 1000}},
    )  # fmt: skip
    server = start_server(create_app(settings_))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            wait_live(client)
        yield load_schema(server.url).include(path_regex="^/api/v1/trading/")
    finally:
        server.stop()


schema = schemathesis.from_pytest_fixture("trading_schema")


@schema.parametrize()
@fuzz_settings(25)
def test_trading_api(case: schemathesis.Case) -> None:
    response = case.call(timeout=60)
    case.validate_response(response, checks=CHECKS)
