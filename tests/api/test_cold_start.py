"""Issue 22 items 1-2 end to end: a cold gateway with the quote cache off behind a slow terminal.

Every xtdata call takes 100 ms (fake xtdata with 400 extra stocks). Before: the first request for unseen
codes checked each with one get_instrument_detail on the 5 s snapshot lane, so 50 codes answered 504
``source_timeout``; concurrent snapshot requests cost two get_full_tick calls (the first ran alone).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from qmtgate.api.app import create_app
from qmtgate.config import Settings

from .support import FakeXtdata, LiveServer, make_source, start_server

try:
    from source.fake_xtdata import synthetic_codes
except ImportError:  # tests/ itself is a package
    from tests.source.fake_xtdata import synthetic_codes  # type: ignore[no-redef]

SLOW = ("get_full_tick", "get_instrument_detail", "get_instrument_detail_list", "get_stock_list_in_sector")
UNIVERSE = synthetic_codes(400)


@pytest.fixture
def slow_fake() -> FakeXtdata:
    return FakeXtdata(latency=dict.fromkeys(SLOW, 0.1), universe=400)


@pytest.fixture
def server(slow_fake: FakeXtdata) -> Iterator[LiveServer]:
    app = create_app(Settings(source="sim", quotes={"enabled": False}), make_source(slow_fake))
    live = start_server(app)
    yield live
    live.stop()


def request_ticks(fake: FakeXtdata, size: int) -> int:
    """get_full_tick calls that served requests (not the 1-code connection probe)."""
    return sum(1 for call in fake.calls_of("get_full_tick") if len(call.args["code_list"]) >= size)


def test_first_request_for_200_unseen_codes_costs_a_fixed_number_of_calls(
    server: LiveServer, slow_fake: FakeXtdata
) -> None:
    codes = UNIVERSE[:200]
    response = httpx.get(f"{server.url}/api/v1/snapshots", params={"codes": ",".join(codes)}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 200 and body["missing"] == []
    assert slow_fake.count("get_instrument_detail") == 0
    # checked by the index if it loaded in time, else by one batched call while it loads
    assert slow_fake.count("get_instrument_detail_list") <= 1
    assert slow_fake.count("get_stock_list_in_sector") <= 8  # the index, whatever the request
    assert request_ticks(slow_fake, 200) == 1
    detail_calls = slow_fake.count("get_instrument_detail_list")

    # an unknown code among known ones: a clear 404 naming it, after one batched detail call
    mixed = [*UNIVERSE[200:250], "999999.SH"]
    response = httpx.get(f"{server.url}/api/v1/snapshots", params={"codes": ",".join(mixed)}, timeout=30)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_code" and error["details"]["codes"] == ["999999.SH"]
    assert slow_fake.count("get_instrument_detail_list") <= detail_calls + 1
    assert slow_fake.count("get_instrument_detail") == 0


def test_eight_concurrent_50_code_snapshots_share_get_full_tick(
    server: LiveServer, slow_fake: FakeXtdata
) -> None:
    lists = [",".join(UNIVERSE[i * 50 : (i + 1) * 50]) for i in range(8)]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            return await asyncio.gather(
                *(client.get("/api/v1/snapshots", params={"codes": c}) for c in lists)
            )

    cold = asyncio.run(burst())  # the first round after start: no 5xx
    assert [r.status_code for r in cold] == [200] * 8
    assert slow_fake.count("get_instrument_detail") == 0
    # while the index loads, the eight requests' batched detail checks merge too
    assert slow_fake.count("get_instrument_detail_list") <= 3
    before = request_ticks(slow_fake, 50)
    assert before < 8  # already shared in the cold round
    warm = asyncio.run(burst())
    assert all(r.status_code == 200 and r.json()["count"] == 50 for r in warm)
    # eight requests, fewer calls: the first call gathers those arriving with it, the rest merge into
    # the next (exact sharing depends on how the requests interleave on a busy machine)
    assert request_ticks(slow_fake, 50) - before <= 3
