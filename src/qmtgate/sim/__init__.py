"""qmtgate's simulated A-share market and its xtquant-shaped facade.

``install()`` registers :mod:`qmtgate.sim.xtquant` as the top-level ``xtquant`` package (every module
of the real package: xtdata, xtbson, xtdatacenter, ...), so that ``from xtquant import xtdata``
anywhere in the process talks to the simulator. State that QMT keeps in its data directory (downloads,
user sectors, the clock's anchor) lives in the simulator's data directory (:mod:`.datadir`), shared
by every process on the machine.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

from .clock import MarketClock
from .market import SimMarket

__all__ = ["MarketClock", "SimMarket", "create_xtdata", "install", "register_package"]

#: The modules of the real xtquant 250807 package, every one provided by the simulated package
MODULES = (
    "metatable",
    "qmttools",
    "xtbson",
    "xtconn",
    "xtconstant",
    "xtdata",
    "xtdata_config",
    "xtdatacenter",
    "xtextend",
    "xtstocktype",
    "xttools",
    "xttrader",
    "xttype",
    "xtutil",
    "xtview",
)


def register_package() -> None:
    """Make ``import xtquant`` / ``import xtquant.<module>`` give the simulated modules."""
    import importlib

    package = importlib.import_module("qmtgate.sim.xtquant")
    sys.modules["xtquant"] = package
    for name in MODULES:
        full = f"qmtgate.sim.xtquant.{name}"
        module = importlib.import_module(full)
        sys.modules[f"xtquant.{name}"] = module
        if hasattr(module, "__path__"):  # a package (metatable, qmttools): its loaded submodules too
            for sub in list(vars(module).values()):
                if isinstance(sub, type(sys)) and sub.__name__.startswith(full + "."):
                    sys.modules[f"xtquant.{name}.{sub.__name__[len(full) + 1 :]}"] = sub


def _share_clock_anchor(clock: MarketClock, data_dir: Any, seed: int) -> None:
    """Processes with the same clock settings follow one anchor kept in the data directory, so they
    all see the same simulated "now" (the first process writes it, the others adopt it)."""
    key = clock.sharing_key()
    if key is None:
        return
    from pathlib import Path

    from .datadir import JsonDoc

    folder = Path(data_dir) / f"seed-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    doc = JsonDoc(folder / "clock.json")
    mine = clock.anchor()

    def change(current: dict) -> dict:
        if current.get("key") == key:
            return current
        return {"key": key, "anchor_ms": mine[0], "anchor_wall": mine[1]}

    shared = doc.update(change, {})
    clock.adopt_anchor(shared["anchor_ms"], shared["anchor_wall"])


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
    data_dir: Any = None,
) -> Any:
    """Bind a simulated QMT (a fresh market with ``seed`` and clock, or ``market``) and register the
    simulated package as ``xtquant``. Returns the environment (its ``faults`` drive fault injection).
    ``wall`` (epoch seconds, like ``time.time``) replaces the wall clock the market clock reads.

    ``broker`` (a :class:`qmtgate.sim.broker.BrokerConfig`) configures the paper broker behind
    ``xtquant.xttrader`` (accounts, starting cash, fees, the account file); it is created on the first
    trader connect as ``env.broker``.

    ``data_dir``: the shared data directory (default: ``$QMTGATE_SIM_DATA_DIR``, else the per-user
    data directory); downloads, sector edits and the (non-manual) clock's anchor live there.
    """
    from . import datadir
    from .xtquant import _env

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
    path = datadir.resolve(data_dir)
    _share_clock_anchor(market.clock, path, market.seed)
    env = _env.SimEnv(
        market,
        daily_preloaded=daily_preloaded,
        download_seconds_per_code=download_seconds_per_code,
        data_dir=path,
    )
    env.broker_config = broker
    _env.bind(env)
    register_package()
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
