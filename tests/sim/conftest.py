"""Fixtures for the simulated market's tests.

One simulated QMT (seed 0, manual clock standing still at 2026-11-20 10:00:00 CST, a Friday in
session) is built once for the whole run and shared: building the universe, the instruments' daily
chains and the whole-market live day is seconds of work. Tests that read it must not move its clock;
a test that needs another clock, its own local store or its own subscriptions asks ``fresh_env`` for
a separate instance, and the shared one is bound again afterwards.
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Callable, Iterator

import pytest

import qmtgate.sim
from qmtgate.sim.clock import MarketClock
from qmtgate.sim.market import SimMarket
from qmtgate.sim.timeutil import ms_of
from qmtgate.sim.xtquant import _env

SEED = 0
#: The shared environment's market time: a session day in continuous trading.
TODAY = dt.date(2026, 11, 20)
NOW_MS = ms_of(TODAY, 10 * 3600)
#: The latest complete session at NOW_MS.
LAST_CLOSE_DAY = dt.date(2026, 11, 19)


def _quiet(module: types.ModuleType) -> types.ModuleType:
    module.enable_hello = False  # no connection banner on stdout
    return module


@pytest.fixture(scope="session")
def sim_env() -> Iterator[_env.SimEnv]:
    """The shared simulated QMT; its clock stands at NOW_MS and must stay there."""
    previous = _env._ENV
    env = qmtgate.sim.install(seed=SEED, clock="manual", start_ms=NOW_MS, download_seconds_per_code=0.0)
    yield env
    env.close()
    _env._ENV = previous


@pytest.fixture(scope="session")
def xt(sim_env: _env.SimEnv) -> types.ModuleType:
    """``from xtquant import xtdata`` as user code writes it, talking to the shared environment."""
    from xtquant import xtdata

    return _quiet(xtdata)


@pytest.fixture(autouse=True)
def _session_env_bound(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests that use the shared environment see it bound, whatever ran before them, and leave its
    clock where it was."""
    if "sim_env" not in request.fixturenames:
        yield
        return
    env: _env.SimEnv = request.getfixturevalue("sim_env")
    _env._ENV = env
    yield
    assert env.market.clock.now_ms() == NOW_MS, "a test moved the shared clock; use fresh_env instead"


FreshEnv = Callable[..., _env.SimEnv]


@pytest.fixture
def fresh_env(sim_env: _env.SimEnv) -> Iterator[FreshEnv]:
    """Factory: ``fresh_env(start_ms=..., clock=...)`` binds a separate simulated QMT with the same seed
    (a manual clock at ``start_ms`` unless ``clock`` is given; an empty local store; no subscriptions)
    and returns it. Data caches are shared with the session market, so this is cheap. The shared
    environment is bound again when the test ends."""
    created: list[_env.SimEnv] = []

    def make(start_ms: int = NOW_MS, clock: MarketClock | None = None, **options: object) -> _env.SimEnv:
        clock = clock or MarketClock(sim_env.market.calendar, mode="manual", start_ms=start_ms)
        options.setdefault("download_seconds_per_code", 0.0)
        env = qmtgate.sim.install(market=SimMarket(seed=SEED, clock=clock), **options)  # type: ignore[arg-type]
        created.append(env)
        from xtquant import xtdata

        _quiet(xtdata)
        return env

    yield make
    for env in created:
        env.close()
    _env._ENV = sim_env
