"""Fault injection of the simulated QMT: what the reliability work will be tested against."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest

import qmtgate.sim
from qmtgate.sim.clock import MarketClock
from qmtgate.sim.faults import NOT_CONNECTED
from qmtgate.sim.market import SimMarket
from qmtgate.sim.timeutil import ms_of
from qmtgate.sim.xtquant import _env

DAY = dt.date(2026, 11, 20)


@pytest.fixture
def sim() -> Iterator[_env.SimEnv]:
    previous = _env._ENV
    cal = SimMarket(seed=0).calendar
    clock = MarketClock(cal, mode="manual", start_ms=ms_of(DAY, 10 * 3600))
    env = qmtgate.sim.install(market=SimMarket(seed=0, clock=clock), download_seconds_per_code=0.0)
    env.publisher.stop(manual=True)
    from xtquant import xtdata

    xtdata.enable_hello = False
    try:
        yield env
    finally:
        env.faults.clear()
        env.close()
        _env._ENV = previous


def test_disconnect_makes_every_call_raise_the_sdk_error_and_reports_status(sim: _env.SimEnv) -> None:
    from xtquant import xtdata

    statuses: list[dict] = []
    xtdata.watch_xtquant_status(statuses.append)
    xtdata.connect()
    sim.faults.disconnect()
    for call in (
        lambda: xtdata.get_full_tick(["600000.SH"]),
        lambda: xtdata.get_market_data_ex([], ["600000.SH"], count=1),
        lambda: xtdata.get_instrument_detail("600000.SH"),
        lambda: xtdata.connect(),
    ):
        with pytest.raises(Exception, match=NOT_CONNECTED):
            call()
    sim.faults.reconnect()
    assert xtdata.get_instrument_detail("600000.SH")["InstrumentID"] == "600000"
    assert [s["status"] for s in statuses][-2:] == ["disconnected", "connected"]
    assert all(set(s) == {"address", "status"} for s in statuses)


def test_run_raises_when_the_connection_drops(sim: _env.SimEnv) -> None:
    from xtquant import xtdata

    errors: list[BaseException] = []

    def runner() -> None:
        try:
            xtdata.run()
        except Exception as e:
            errors.append(e)

    t = threading.Thread(target=runner, daemon=True)
    t.start()
    sim.faults.disconnect()
    t.join(timeout=8)
    assert errors and "行情服务连接断开" in str(errors[0])


def test_stall_hangs_calls_until_released(sim: _env.SimEnv) -> None:
    from xtquant import xtdata

    sim.faults.stall()
    done = threading.Event()
    t = threading.Thread(target=lambda: (xtdata.get_instrument_detail("600000.SH"), done.set()), daemon=True)
    t.start()
    assert not done.wait(0.5), "a stalled QMT must not answer"
    sim.faults.release()
    assert done.wait(5)


def test_slow_adds_latency_to_every_call(sim: _env.SimEnv) -> None:
    from xtquant import xtdata

    sim.faults.slow(0.2)
    t0 = time.perf_counter()
    xtdata.get_instrument_detail("600000.SH")
    assert time.perf_counter() - t0 >= 0.2
    sim.faults.slow(0)
    t0 = time.perf_counter()
    xtdata.get_instrument_detail("600000.SH")
    assert time.perf_counter() - t0 < 0.2


def test_fail_raises_the_given_error_a_given_number_of_times(sim: _env.SimEnv) -> None:
    from xtquant import xtdata

    sim.faults.fail(RuntimeError("boom"), count=2)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="boom"):
            xtdata.get_instrument_detail("600000.SH")
    assert xtdata.get_instrument_detail("600000.SH") is not None


def test_restart_loses_every_subscription(sim: _env.SimEnv) -> None:
    from xtquant import xtdata

    clock = sim.market.clock
    before: list[dict] = []
    after: list[dict] = []
    xtdata.subscribe_quote("600000.SH", period="tick", callback=before.append)
    clock.advance(30)
    sim.publisher.step()
    assert before, "the subscription delivers before the restart"
    sim.faults.restart()
    n = len(before)
    clock.advance(60)
    sim.publisher.step()
    assert len(before) == n, "a QMT restart drops subscriptions, as in reality"
    # a new subscription after the restart works
    xtdata.subscribe_quote("600000.SH", period="tick", callback=after.append)
    clock.advance(60)
    sim.publisher.step()
    assert after


def test_no_pushes_while_disconnected(sim: _env.SimEnv) -> None:
    from xtquant import xtdata

    got: list[dict] = []
    xtdata.subscribe_whole_quote(["SH"], callback=got.append)
    sim.publisher.step()
    sim.faults.disconnect()
    n = len(got)
    sim.market.clock.advance(60)
    sim.publisher.step()
    assert len(got) == n
    with contextlib.suppress(Exception):
        sim.faults.reconnect()
