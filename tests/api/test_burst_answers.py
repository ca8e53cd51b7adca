"""Whole-market answers encoded once per quote-cache burst (api.burst_answers): every request of a burst
gets the same bytes, equal to a fresh encode of the same data, and the next burst gets new ones."""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

WHOLE = "/api/v1/snapshots?markets=SH,SZ,BJ"


def _services(client: TestClient) -> Any:
    return client.app.state.services  # type: ignore[attr-defined]


def _next_burst(client: TestClient) -> None:
    """Move the simulated market 3 s on and wait until the quote cache has applied that burst."""
    from qmtgate.sim.xtquant import _env

    quotes, hub = _services(client).quotes, _services(client).hub
    before = quotes.version
    env = _env.current()
    env.market.clock.advance(3)
    deadline = time.monotonic() + 30
    while not (quotes.version > before and hub.quiet()):
        assert time.monotonic() < deadline, "no burst reached the quote cache"
        time.sleep(0.02)


def _fresh(client: TestClient, url: str, **kwargs: Any) -> bytes:
    """The answer encoded now, bypassing what was encoded before."""
    _services(client).answers.clear()
    return client.request(kwargs.pop("method", "GET"), url, **kwargs).content


def test_whole_market_snapshot_is_encoded_once_per_burst(sim_client: TestClient) -> None:
    answers = _services(sim_client).answers
    for url in (
        f"{WHOLE}&format=arrow",
        f"{WHOLE}&format=json",
        "/api/v1/snapshots?sector=沪深A股&format=arrow",
    ):
        first = sim_client.get(url)
        assert first.status_code == 200
        encodes, reuses = answers.encodes, answers.reuses
        again = [sim_client.get(url) for _ in range(3)]
        assert (answers.encodes, answers.reuses) == (encodes, reuses + 3), "one encode for the burst"
        assert all(
            r.content == first.content and r.headers["content-type"] == first.headers["content-type"]
            for r in again
        )
        assert _fresh(sim_client, url) == first.content, "the shared bytes are what a fresh encode gives"
    table = pa.ipc.open_stream(sim_client.get(f"{WHOLE}&format=arrow").content).read_all()
    assert table.num_rows > 4_000
    # other selections are answers of their own
    sh = sim_client.get("/api/v1/snapshots?markets=SH&format=arrow&fields=last_price")
    assert pa.ipc.open_stream(sh.content).read_all().column_names == ["code", "ts", "time", "last_price"]


def test_the_next_burst_gets_a_new_answer(sim_client: TestClient) -> None:
    url = f"{WHOLE}&format=arrow"
    before = sim_client.get(url).content
    old = pa.ipc.open_stream(before).read_all()
    _next_burst(sim_client)
    after = sim_client.get(url).content
    assert after != before
    new = pa.ipc.open_stream(after).read_all()
    assert pa.compute.max(new.column("ts")).as_py() > pa.compute.max(old.column("ts")).as_py()
    assert after == _fresh(sim_client, url)


def test_whole_market_full_tick_is_encoded_once_per_burst(sim_client: TestClient) -> None:
    answers = _services(sim_client).answers
    body = {"codes": ["SH", "SZ", "BJ"]}
    first = sim_client.post("/api/v1/xt/full_tick", json=body)
    assert first.status_code == 200 and len(first.json()["data"]) > 4_000
    reuses = answers.reuses
    assert sim_client.post("/api/v1/xt/full_tick", json=body).content == first.content
    assert answers.reuses == reuses + 1
    assert _fresh(sim_client, "/api/v1/xt/full_tick", method="POST", json=body) == first.content
    _next_burst(sim_client)
    assert sim_client.post("/api/v1/xt/full_tick", json=body).content != first.content


def test_shared_answers_survive_a_cancelled_requester_and_retry_a_failed_build() -> None:
    """One build per (key, version), awaited by every requester of it: a requester that goes away does not
    cancel it for the others; a build that raised is tried again; older versions' answers are let go."""
    import asyncio

    from starlette.responses import Response

    from qmtgate.api.burst_answers import BurstAnswers

    async def scenario() -> None:
        answers = BurstAnswers()
        calls: list[int] = []
        release = asyncio.Event()

        async def build() -> Response:
            calls.append(1)
            await release.wait()
            return Response(b"burst-1", media_type="application/octet-stream")

        first = asyncio.create_task(answers.get("k", 1, build))
        second = asyncio.create_task(answers.get("k", 1, build))
        await asyncio.sleep(0.01)
        first.cancel()  # the first requester goes away while the encode runs
        release.set()
        assert (await second).body == b"burst-1" and len(calls) == 1
        third = await answers.get("k", 1, build)
        assert third.body == b"burst-1" and third.headers["content-type"] == "application/octet-stream"
        assert len(calls) == 1 and (answers.encodes, answers.reuses) == (1, 2)

        async def broken() -> Response:
            raise RuntimeError("encode failed")

        with pytest.raises(RuntimeError):
            await answers.get("other", 1, broken)
        assert (await answers.get("other", 1, build)).body == b"burst-1", "a failed build is not kept"

        async def next_burst() -> Response:
            return Response(b"burst-2")

        assert (await answers.get("k", 2, next_burst)).body == b"burst-2"
        assert list(answers._entries) == ["k"], "the previous burst's answers were let go"

    asyncio.run(scenario())


def test_a_polled_answer_is_built_ahead_of_the_next_bursts_first_request(sim_client: TestClient) -> None:
    answers = _services(sim_client).answers
    url = f"{WHOLE}&format=arrow"
    assert sim_client.get(url).status_code == 200  # a poller asked: the answer is warm from now on
    warmed = answers.warmed
    _next_burst(sim_client)
    deadline = time.monotonic() + 10
    while answers.warmed == warmed:  # built ahead once the burst's frames are out
        assert time.monotonic() < deadline, "the polled answer was not built ahead"
        time.sleep(0.02)
    encodes, reuses = answers.encodes, answers.reuses
    first = sim_client.get(url).content  # the burst's first request: already built
    assert (answers.encodes, answers.reuses) == (encodes, reuses + 1)
    assert first == _fresh(sim_client, url), "what was built ahead is what a fresh encode gives"


def test_only_answers_asked_lately_are_built_ahead_and_a_run_of_changes_warms_once() -> None:
    import asyncio

    from starlette.responses import Response

    from qmtgate.api.burst_answers import BurstAnswers

    async def scenario() -> None:
        answers = BurstAnswers(warm_seconds=10)
        version = [1]
        built: list[str] = []

        def build_for(tag: str):
            async def build() -> Response:
                built.append(f"{tag}-{version[0]}")
                return Response(f"{tag}-{version[0]}".encode())

            return build

        await answers.get("polled", 1, build_for("p"))
        await answers.get("once", 1, build_for("o"))
        build, _ = answers._asked["once"]
        answers._asked["once"] = (build, time.monotonic() - 11)  # asked, but long ago
        version[0] = 2
        assert answers.warm(2) == 1
        await asyncio.sleep(0)
        encodes = answers.encodes
        assert (await answers.get("polled", 2, build_for("p"))).body == b"p-2"
        assert answers.encodes == encodes and answers.warmed == 1, "served from the build ahead"
        assert "once" not in answers._asked and "once" not in answers._entries
        assert answers.warm(2) == 0, "an answer built for this version is not built again"

        async def broken() -> Response:
            raise RuntimeError("encode failed")

        answers._asked["polled"] = (broken, time.monotonic())
        assert answers.warm(3) == 1
        await asyncio.sleep(0.01)
        version[0] = 3
        assert (await answers.get("polled", 3, build_for("p"))).body == b"p-3", (
            "a failed build ahead is redone"
        )

        # a run of changes (a feed that delivers a burst in pieces) warms once, after the last of them
        changed = answers.watch(lambda: version[0], delay=0.05)
        version[0] = 4
        before = len(built)
        for _ in range(5):
            changed(None)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.15)
        assert built[before:] == ["p-4"]

    asyncio.run(scenario())
