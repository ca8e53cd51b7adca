"""Schemathesis over the trading routes (off in test_schemathesis.py's gateway): with trading on, on the
simulator's paper broker, no generated request (valid or not) gets a 5xx or an answer off its schema."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import DataGenerationMethod

from qmtgate.api.app import create_app

from .sim_support import sim_settings, wait_live
from .support import start_server
from .test_schemathesis import CHECKS

schemathesis.experimental.OPEN_API_3_1.enable()


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
        yield schemathesis.from_uri(
            f"{server.url}/openapi.json",
            data_generation_methods=[DataGenerationMethod.positive, DataGenerationMethod.negative],
        ).include(path_regex="^/api/v1/trading/")
    finally:
        server.stop()


schema = schemathesis.from_pytest_fixture("trading_schema")


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("QMTGATE_SCHEMATHESIS_EXAMPLES", "25")),
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_trading_api(case: schemathesis.Case) -> None:
    response = case.call(timeout=60)
    case.validate_response(response, checks=CHECKS)
