"""Fault injection against a running gateway: what clients, readiness and the API see.

tests/sim/test_faults.py checks the injector itself and tests/source/ the source over a fake xtdata; here
the whole gateway (uvicorn, hub, quote feed, supervisor) runs on the simulator while QMT disconnects (with
and without a status callback), stalls, slows down, raises, or silently stops pushing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Gateway, WsReader, eventually


@pytest.fixture
def gw(gateway: Gateway) -> Iterator[Gateway]:
    gateway.heal()
    yield gateway
    gateway.env.status_callback = gateway.env.status_callback or _SAVED.get("cb")
    gateway.heal()


_SAVED: dict[str, Any] = {}


def _timed_get(gw: Gateway, path: str) -> tuple[float, Any]:
    began = time.monotonic()
    response = gw.http.get(path)
    return time.monotonic() - began, response


def _data_after(reader: WsReader, seq: int, code: str) -> bool:
    """Whether ``code`` (or any code of the market ``code`` names, e.g. "BJ") streamed after ``seq``."""
    return any(
        i["seq"] > seq and code in (i["code"], i["code"].rpartition(".")[2])
        for f in reader.of("data")
        for i in f["items"]
    )


def _resumes(gw: Gateway, reader: WsReader, code: str, timeout: float = 10.0) -> float:
    """Advance the market until ``code`` streams again; return the wall seconds it took."""
    mark, began = gw.hub.seq, time.monotonic()
    while not _data_after(reader, mark, code):
        assert time.monotonic() - began < timeout, f"{code} did not resume within {timeout} s"
        gw.advance(3, settle=0.02)
    return time.monotonic() - began


def test_disconnect_with_status_callback_reaches_readiness_and_clients_at_once(gw: Gateway) -> None:
    reader = WsReader(gw.ws_url)
    try:
        reader.send({"op": "subscribe", "period": "tick", "codes": ["600000.SH"]})
        eventually(lambda: reader.of("subscribed"))
        epoch = gw.source.status().connection
        began = time.monotonic()
        gw.env.faults.disconnect()
        eventually(lambda: gw.ready()["connected"] is False, 5.0, what="readiness sees the drop")
        detected = time.monotonic() - began
        response = gw.http.get("/api/v1/health/ready")
        assert response.status_code == 503 and response.json()["state"] == "unavailable"
        down = eventually(lambda: [m for m in reader.of("status") if m["source"]["connected"] is False], 5.0)
        assert down[-1]["source"]["epoch"] == epoch
        gw.env.faults.reconnect()
        eventually(lambda: gw.ready()["ready"] is True, 10.0, what="ready again")
        up = eventually(lambda: [m for m in reader.of("status") if m["source"]["connected"]], 5.0)
        assert up[-1]["source"]["epoch"] == epoch + 1
        _resumes(gw, reader, "600000.SH")
        assert detected < 1.0, f"a status callback is seen within a second, took {detected:.2f} s"
    finally:
        reader.close()


def test_a_silent_drop_is_found_by_a_failing_call_or_the_probe_within_5_s(gw: Gateway) -> None:
    env = gw.env
    _SAVED["cb"] = env.status_callback
    env.status_callback = None  # QMT goes away without telling anyone
    try:
        began = time.monotonic()
        env.faults.disconnect()
        eventually(lambda: gw.ready()["connected"] is False, 5.0, what="the probe notices the drop")
        detected = time.monotonic() - began
        # a failing call is a signal of its own: it marks the source down at once
        env.faults.reconnect()
        eventually(lambda: gw.ready()["ready"] is True, 10.0, what="reconnected by the backoff loop")
        reconnected = time.monotonic() - began - detected
        env.faults.disconnect()
        answer = gw.http.get(
            "/api/v1/klines/600036.SH", params={"period": "1d", "count": 3, "format": "json"}
        )
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "source_unavailable"
        assert gw.ready()["connected"] is False, "the failing call itself marked the source down"
        print(f"\nsilent drop found by the probe in {detected:.2f} s; backoff reconnect {reconnected:.2f} s")
        assert detected < 5.0 and reconnected < 5.0
    finally:
        env.status_callback = _SAVED.pop("cb")


def test_a_stall_times_out_calls_while_the_api_stays_responsive(gw: Gateway) -> None:
    bj_code = next(code for (ch, code) in gw.hub.lvc.updates if ch == "tick" and code.endswith(".BJ"))
    gw.env.faults.stall()
    try:
        elapsed, answer = _timed_get(gw, "/api/v1/klines/600036.SH?period=1d&count=4&dividend_type=front")
        assert answer.status_code == 504 and answer.json()["error"]["code"] == "source_timeout"
        assert elapsed < 5.0, f"the deadline bounds the wait ({elapsed:.2f} s)"
        for _ in range(5):  # liveness and cached snapshots never wait on the stuck xtdata thread
            live_s, live = _timed_get(gw, "/api/v1/health/live")
            snap_s, snap = _timed_get(gw, f"/api/v1/snapshots?codes={bj_code}&format=json")
            assert live.status_code == 200 and live_s < 0.5
            assert snap.status_code == 200 and snap_s < 0.5
        ready = gw.http.get("/api/v1/health/ready")
        assert ready.status_code == 503 and ready.json()["state"] == "degraded"
    finally:
        gw.env.faults.release()
    eventually(lambda: gw.ready()["ready"] is True, 10.0, what="ready after the stall")
    answer = gw.http.get("/api/v1/klines/600036.SH?period=1d&count=4&dividend_type=front&format=json")
    assert answer.status_code == 200


def test_slow_calls_succeed_and_keep_the_gateway_ready(gw: Gateway) -> None:
    gw.env.faults.slow(0.4)
    elapsed, answer = _timed_get(gw, "/api/v1/klines/601318.SH?period=1d&count=3&format=json")
    assert answer.status_code == 200 and elapsed >= 0.4
    live_s, live = _timed_get(gw, "/api/v1/health/live")
    assert live.status_code == 200 and live_s < 0.5
    time.sleep(2.5)  # a probe ran at 0.4 s latency: still within its deadline
    assert gw.ready()["ready"] is True


def test_raising_calls_are_502_envelopes_and_a_failed_resubscribe_is_retried(gw: Gateway) -> None:
    gw.env.faults.fail(RuntimeError("QMT internal error"))
    answer = gw.http.get("/api/v1/klines/600030.SH?period=1d&count=3&format=json")
    assert answer.status_code == 502 and answer.json()["error"]["code"] == "source_error"
    assert gw.ready()["connected"] is True, "an error is not a disconnect"
    gw.env.faults.fail(None)
    assert gw.http.get("/api/v1/klines/600030.SH?period=1d&count=3&format=json").status_code == 200

    reader = WsReader(gw.ws_url)
    try:
        reader.send({"op": "subscribe", "period": "tick", "codes": ["000001.SZ"]})
        eventually(lambda: reader.of("subscribed"))
        gw.env.faults.fail(RuntimeError("subscription refused"))  # QMT refuses while it starts up
        gw.env.faults.restart()
        eventually(lambda: gw.hub.registry.failed(), 5.0, what="the resubscribe after the restart failed")
        gw.env.faults.fail(None)
        eventually(lambda: not gw.hub.registry.failed(), 5.0, what="the supervisor retried it")
        _resumes(gw, reader, "000001.SZ")
    finally:
        reader.close()


def _drop_silently(gw: Gateway, match: Any) -> int:
    """Remove simulator subscriptions without any status change: pushes just stop."""
    gone = [s.sub_id for s in gw.env.publisher.subscriptions() if match(s)]
    for sub_id in gone:
        gw.env.publisher.remove(sub_id)
    return len(gone)


def _metric(gw: Gateway, name: str, labels: str = "") -> float | None:
    for line in gw.http.get("/metrics").text.splitlines():
        if line.startswith(name + (("{" + labels + "}") if labels else " ")):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_silent_subscriptions_are_found_by_staleness_and_renewed(gw: Gateway) -> None:
    reader = WsReader(gw.ws_url)
    try:
        reader.send({"op": "subscribe", "period": "tick", "codes": ["600000.SH"], "markets": ["BJ"]})
        eventually(lambda: reader.of("subscribed"))
        _resumes(gw, reader, "600000.SH")
        renewals = gw.source.renewals
        assert _drop_silently(gw, lambda s: True) >= 2  # the BJ feed and the 600000.SH registry entry
        mark = gw.hub.seq
        for _ in range(6):  # 18 market seconds in the session without a single push
            gw.advance(3, settle=0.0)
        stale = eventually(
            lambda: [m for m in reader.of("status") if m.get("stale", {}).get("markets")], 10.0
        )
        assert stale[-1]["stale"]["markets"] == ["BJ"]
        eventually(lambda: gw.source.renewals > renewals, 10.0, what="subscriptions renewed")
        took_sh = _resumes(gw, reader, "600000.SH")
        took_bj = _resumes(gw, reader, "BJ")
        assert _data_after(reader, mark, "BJ") and _data_after(reader, mark, "600000.SH")
        assert _metric(gw, "qmtgate_source_subscription_renewals_total") >= 1
        assert _metric(gw, "qmtgate_stream_staleness_seconds", 'market="BJ"') is not None
        eventually(lambda: [m for m in reader.of("status") if m.get("stale", {}).get("markets") == []], 10.0)
        assert took_bj < 10.0 and took_sh < 10.0
    finally:
        reader.close()


def test_one_silent_code_is_renewed_alone(gw: Gateway) -> None:
    reader = WsReader(gw.ws_url)
    try:
        reader.send({"op": "subscribe", "period": "1m", "codes": ["600519.SH"]})
        eventually(lambda: reader.of("subscribed"))
        _resumes(gw, reader, "600519.SH")
        renewals, epoch = gw.supervisor_report().symbol_renewals, gw.source.status().connection
        assert _drop_silently(gw, lambda s: s.code == "600519.SH" and s.period == "1m") == 1
        # 90 market seconds: past the 60 s symbol window even though the supervisor samples once a wall
        # second (the market moves ~60x faster here); the BJ feed keeps ticking meanwhile
        for _ in range(30):
            gw.advance(3, settle=0.0)
        eventually(
            lambda: gw.supervisor_report().symbol_renewals > renewals,
            10.0,
            what=lambda: f"code renewed: {gw.supervisor_report()}",
        )
        _resumes(gw, reader, "600519.SH")
        assert gw.source.status().connection == epoch, "only that code was renewed, not the connection"
        assert (
            _metric(gw, "qmtgate_stream_symbol_staleness_seconds", 'channel="1m",code="600519.SH"')
            is not None
        )
    finally:
        reader.close()


def test_a_download_job_fails_cleanly_on_a_disconnect_and_can_be_retried(gw: Gateway) -> None:
    sectors = gw.http.get("/api/v1/sectors").json()["data"]
    members = gw.http.get(f"/api/v1/sectors/{sectors[0]}/members").json()["data"]
    body = {"codes": members[:80], "period": "1d", "start": "20250101"}
    # instrument details are cached per day: the job's existence check then never waits on the slow source
    assert gw.http.get("/api/v1/instruments", params={"codes": ",".join(body["codes"])}).status_code == 200
    gw.env.faults.slow(0.3)  # every download chunk takes a while
    job = gw.http.post("/api/v1/downloads", json=body).json()
    eventually(lambda: gw.http.get(f"/api/v1/downloads/{job['id']}").json()["state"] == "running", 10.0)
    gw.env.faults.disconnect()
    done = eventually(
        lambda: (j := gw.http.get(f"/api/v1/downloads/{job['id']}").json())["state"] == "failed" and j,
        15.0,
        what="the job failed",
    )
    assert done["error"]["code"] == "source_unavailable"
    gw.heal()
    retry = gw.http.post("/api/v1/downloads", json=body).json()
    final = eventually(
        lambda: (
            (j := gw.http.get(f"/api/v1/downloads/{retry['id']}").json())["state"] in ("succeeded", "failed")
            and j
        ),
        30.0,
    )
    assert final["state"] == "succeeded", final
