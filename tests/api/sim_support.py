"""Helpers for tests that run the gateway on the simulated market.

The simulator's clock is pinned (manual mode) to a session in progress, so answers are deterministic:
2025-06-12 (a Thursday) at 10:30 Asia/Shanghai, with 2025-06-11 the last complete session. One simulated
market per process keeps its generated history (the first whole-universe access costs ~10 s of CPU), so
modules build their own app cheaply after the first.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from typing import Any

import httpx

from qmtgate.config import Settings

SIM_START = "20250612103000"
TODAY = dt.date(2025, 6, 12)
LAST_COMPLETE = dt.date(2025, 6, 11)
CST = dt.timezone(dt.timedelta(hours=8))


def sim_settings(**overrides: Any) -> Settings:
    return Settings(source="sim", sim={"clock": "manual", "start": SIM_START}, **overrides)


def wait_live(client: httpx.Client | Any, timeout: float = 120.0) -> dict[str, Any]:
    """Poll readiness until the quote cache has the first whole-market push."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get("/api/v1/health/ready").json()
        if body.get("quotes", {}).get("live"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"quote cache not live after {timeout} s: {body}")
        time.sleep(0.1)


def xtdata() -> Any:
    """The simulated xtdata module the running gateway talks to (registered as ``xtquant.xtdata``)."""
    return sys.modules["xtquant.xtdata"]


def day_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=CST).timestamp() * 1000)
