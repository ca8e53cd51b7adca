"""A gateway on the simulated market (manual clock, 2025-06-12 10:30 CST, a session in progress) with
trading enabled on the simulated paper broker; the audit database in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qmtgate.api.app import create_app
from qmtgate.config import Settings

try:  # tests/ on sys.path
    from api.sim_support import sim_settings
except ImportError:  # tests/ itself is a package
    from tests.api.sim_support import sim_settings  # type: ignore[no-redef]

ACCOUNT_ID = "8880001"
USERDATA = "/tmp/qmtgate-sim/userdata_mini"


def trading_settings(audit: Path, **trading: Any) -> Settings:
    base = {
        "enabled": True,
        "account_id": ACCOUNT_ID,
        "userdata_path": USERDATA,
        "audit_path": str(audit),
        "allow_loopback_without_auth": True,
        "response_timeout": 1.0,
    }
    base.update(trading)
    return sim_settings(trading=base)


def sim_env() -> Any:
    from qmtgate.sim.xtquant import _env

    return _env.current()


@pytest.fixture(scope="module")
def audit_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trading") / "audit.sqlite"


@pytest.fixture(scope="module")
def trading_client(audit_path: Path) -> Iterator[TestClient]:
    app = create_app(trading_settings(audit_path, risk={"max_orders_per_second": 1000}))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def qmt_up_after(monkeypatch: pytest.MonkeyPatch, failures: int) -> dict[str, int]:
    """QMT not logged in for the gateway's first ``failures`` connects (``qmt_not_connected``, which the
    gateway retries), then up. Returns the counter of failures left."""
    from qmtgate.source.trading import lane as lane_module
    from qmtgate.source.trading.errors import ConnectError

    real_open, left = lane_module.TradingLane._open, {"left": failures}

    def late_open(self: Any) -> None:
        if left["left"] > 0:
            left["left"] -= 1
            raise ConnectError("qmt_not_connected", "XtQuantTrader.connect() failed (test)")
        real_open(self)

    monkeypatch.setattr(lane_module.TradingLane, "_open", late_open)
    return left
