"""Liveness and readiness keep answering while the xtdata thread is busy with a slow call (real uvicorn)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
from fastapi import APIRouter, FastAPI

from qmtgate.api.app import create_app
from qmtgate.api.deps import SourceDep
from qmtgate.config import Settings

from .support import FakeXtdata, LiveServer, make_source

SLOW_SECONDS = 5.0


def _app_with_history_probe(settings: Settings, fake: FakeXtdata) -> FastAPI:
    app = create_app(settings, make_source(fake))
    probe = APIRouter()

    # Test-only route: the market-data routes arrive next round; this drives source.history the same way.
    @probe.get("/test/history")
    async def history(source: SourceDep) -> dict[str, int]:
        frames = await source.history(["600000.SH"], "1d")
        return {"rows": len(frames["600000.SH"])}

    app.include_router(probe)
    return app


def test_live_answers_fast_while_a_5s_history_call_is_in_flight(
    settings: Settings, fake: FakeXtdata, serve: Callable[[FastAPI], LiveServer]
) -> None:
    fake.latency["get_market_data_ex"] = SLOW_SECONDS
    server = serve(_app_with_history_probe(settings, fake))
    slow_result: dict[str, object] = {}

    def slow_request() -> None:
        started = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=30) as slow_client:
            response = slow_client.get("/test/history")
        slow_result.update(
            status=response.status_code, body=response.json(), seconds=time.monotonic() - started
        )

    slow = threading.Thread(target=slow_request)
    slow.start()
    deadline = time.monotonic() + 5
    while fake.count("get_market_data_ex") == 0:
        assert time.monotonic() < deadline, "history call never reached xtdata"
        time.sleep(0.01)

    latencies: list[float] = []
    with httpx.Client(base_url=server.url, timeout=2) as client:
        for _ in range(20):
            started = time.monotonic()
            response = client.get("/api/v1/health/live")
            latencies.append(time.monotonic() - started)
            assert response.status_code == 200
            assert response.json()["source"] == "simulated"
            time.sleep(0.02)
        ready = client.get("/api/v1/health/ready").json()
        capabilities = client.get("/api/v1/capabilities")
    still_in_flight = slow.is_alive()
    slow.join(timeout=SLOW_SECONDS + 10)

    assert still_in_flight, "the liveness probes must have run while the history call was in flight"
    assert max(latencies) < 0.5, latencies
    assert ready["executor"]["current_call"] == "get_market_data_ex"
    assert ready["ready"] is True
    assert capabilities.status_code == 200
    assert slow_result["status"] == 200 and slow_result["body"] == {"rows": 7}
    assert slow_result["seconds"] >= SLOW_SECONDS  # type: ignore[operator]
