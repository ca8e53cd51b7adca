"""qmtgate's simulated A-share market and its xtquant-shaped facade.

``install()`` registers :mod:`qmtgate.sim.xtquant` as the top-level ``xtquant`` package, so that
``from xtquant import xtdata`` anywhere in the process talks to the simulator.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

from .clock import MarketClock
from .market import SimMarket

__all__ = ["MarketClock", "SimMarket", "create_xtdata", "install"]


def install(
    seed: int = 0,
    *,
    market: SimMarket | None = None,
    clock: str | MarketClock = "live",
    speed: float = 1.0,
    replay_day: dt.date | None = None,
    start_ms: int | None = None,
    daily_preloaded: bool = True,
    download_seconds_per_code: float = 0.002,
    wall: Callable[[], float] | None = None,
    broker: Any = None,
) -> Any:
    """Bind a simulated QMT (a fresh market with ``seed`` and clock, or ``market``) and register the
    simulated package as ``xtquant``. Returns the environment (its ``faults`` drive fault injection).
    ``wall`` (epoch seconds, like ``time.time``) replaces the wall clock the market clock reads.

    ``broker`` (a :class:`qmtgate.sim.broker.BrokerConfig`) configures the paper broker behind
    ``xtquant.xttrader`` (accounts, starting cash, fees, the account file); it is created on the first
    trader connect as ``env.broker``.
    """
    from .xtquant import _env, xtconstant, xtdata, xttrader, xttype

    if market is None:
        market = SimMarket(seed=seed, clock=clock if isinstance(clock, MarketClock) else None)
        if not isinstance(clock, MarketClock):
            market.clock = MarketClock(
                market.calendar,
                mode=clock,
                speed=speed,
                replay_day=replay_day,
                start_ms=start_ms,
                **({"wall": wall} if wall is not None else {}),
            )
    env = _env.SimEnv(
        market, daily_preloaded=daily_preloaded, download_seconds_per_code=download_seconds_per_code
    )
    env.broker_config = broker
    _env.bind(env)
    package = sys.modules["qmtgate.sim.xtquant"]
    sys.modules["xtquant"] = package
    sys.modules["xtquant.xtdata"] = xtdata
    sys.modules["xtquant.xtconstant"] = xtconstant
    sys.modules["xtquant.xttype"] = xttype
    sys.modules["xtquant.xttrader"] = xttrader
    return env


def create_xtdata(sim_settings: Any) -> Any:
    """The gateway's hook: a simulated xtdata module configured from the gateway's sim settings."""
    seed = int(getattr(sim_settings, "seed", 0))
    mode = getattr(sim_settings, "clock", "live")
    mode = str(getattr(mode, "value", mode))  # a str Enum's str() is its name, not its value
    speed = float(getattr(sim_settings, "speed", 1.0))
    install(seed, clock=mode, speed=speed, broker=_broker_config(sim_settings))
    from .xtquant import xtdata

    return xtdata


def _broker_config(sim_settings: Any) -> Any:
    """The paper broker's configuration from the gateway's sim settings (defaults where absent)."""
    from .broker import BrokerConfig

    return BrokerConfig(
        accounts=tuple((str(a), "STOCK") for a in getattr(sim_settings, "paper_accounts", ("8880001",))),
        starting_cash=float(getattr(sim_settings, "paper_starting_cash", 1_000_000.0)),
        db_path=getattr(sim_settings, "paper_db", None),
        create=bool(getattr(sim_settings, "paper_create", False)),
    )
