"""Choose, build and start the market-data source: ``--source sim|xtquant|auto``.

``auto`` prefers the real terminal: it imports ``xtquant.xtdata`` and connects; if either fails it falls back
to the built-in simulator. Whichever source serves is logged loudly, because an operator who believes they
are looking at live QMT data while the simulator answers is the worst failure this gateway can have.

The simulator (``qmtgate.sim``) is imported lazily so that production never loads it, and so that this
module works while the simulator is still being written.

Simulator hooks, in order of preference:

* ``qmtgate.sim.install(seed, clock=..., speed=..., replay_day=..., start_ms=...)`` returning an environment
  whose ``market.clock.now_ms()`` is the simulated market's clock; the module
  ``qmtgate.sim.xtquant.xtdata`` then talks to it. The gateway's session logic (which session is forming,
  which are complete) follows that clock, because outside trading hours the simulator replays a past session.
* ``qmtgate.sim.create_xtdata(settings: SimSettings)`` returning an xtdata-shaped object (wall clock assumed);
* otherwise the module ``qmtgate.sim.xtquant.xtdata`` as is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

from qmtgate.config import ExecutorSettings, Settings, SimSettings, SourceKind
from qmtgate.errors import SourceUnavailable
from qmtgate.source.base import MarketSource
from qmtgate.source.executor import ExecutorConfig, Lane, XtdataExecutor
from qmtgate.source.xtdata_source import XtdataSource, XtdataSourceConfig
from qmtgate.vocab import MARKETS

logger = logging.getLogger(__name__)

ImportModule = Callable[[str], Any]

SIMULATED = "simulated"
XTQUANT = "xtquant"


def executor_config(settings: ExecutorSettings) -> ExecutorConfig:
    """Translate the user-facing executor settings into the executor's lane tables."""
    return ExecutorConfig(
        capacity={
            Lane.CONTROL: settings.control_queue,
            Lane.SNAPSHOT: settings.snapshot_queue,
            Lane.HISTORY: settings.history_queue,
            Lane.DOWNLOAD: settings.download_queue,
        },
        timeout={
            Lane.CONTROL: settings.control_timeout,
            Lane.SNAPSHOT: settings.snapshot_timeout,
            Lane.HISTORY: settings.history_timeout,
            Lane.DOWNLOAD: settings.download_timeout,
        },
        merge_window=settings.merge_window,
        merge_window_max=settings.merge_window_max,
        join_window=settings.join_window,
        hot_seconds=settings.hot_seconds,
        hot_max=settings.hot_max,
    )


def source_config(settings: Settings) -> XtdataSourceConfig:
    return XtdataSourceConfig(
        connect_ip=settings.xtquant.ip,
        connect_port=settings.xtquant.port,
        connect_timeout=settings.xtquant.connect_timeout,
        reconnect_interval=settings.xtquant.reconnect_interval,
        probe_interval=settings.xtquant.probe_interval,
        max_codes_per_request=settings.max_codes_per_request,
        download_chunk_size=settings.download_chunk_size,
        static_roll_time=settings.static_refresh_time,
    )


def build_xtquant_source(
    settings: Settings, import_module: ImportModule = importlib.import_module
) -> XtdataSource:
    """Wrap the real ``xtquant.xtdata``; raise SourceUnavailable when it cannot be imported (not Windows...)."""
    try:
        xtdata = import_module("xtquant.xtdata")
    except (
        Exception
    ) as e:  # xtquant raises plain Exception('rpc init failed...') at import, not only ImportError
        raise SourceUnavailable(
            f"xtquant is not importable: {type(e).__name__}: {e}", {"source": XTQUANT}
        ) from e
    return XtdataSource(
        xtdata,
        name=XTQUANT,
        config=source_config(settings),
        executor=XtdataExecutor(executor_config(settings.executor)),
    )


def build_simulated_source(
    settings: Settings, import_module: ImportModule = importlib.import_module
) -> XtdataSource:
    """Wrap the simulator's xtdata module; raise SourceUnavailable when the simulator is not installed."""
    clock: Callable[[], float] = time.time
    note: Callable[[], str] | None = None
    try:
        sim = import_module("qmtgate.sim")
        install = getattr(sim, "install", None)
        factory = getattr(sim, "create_xtdata", None)
        if callable(install):
            options = _install_options(settings.sim)
            broker_config = getattr(sim, "_broker_config", None)
            if callable(broker_config):  # the paper broker's accounts and file (sim.paper_*)
                options["broker"] = broker_config(settings.sim)
            env = install(settings.sim.seed, **options)
            xtdata = import_module("qmtgate.sim.xtquant.xtdata")
            market_clock = env.market.clock
            clock = lambda: market_clock.now_ms() / 1000  # noqa: E731
            note = lambda: market_clock.status().note  # noqa: E731
        elif callable(factory):
            xtdata = factory(settings.sim)
        else:
            xtdata = import_module("qmtgate.sim.xtquant.xtdata")
            logger.warning(
                "qmtgate.sim has no create_xtdata(); simulator options %s are not applied", settings.sim
            )
    except ImportError as e:
        raise SourceUnavailable(f"the simulated market is not available: {e}", {"source": SIMULATED}) from e
    if hasattr(xtdata, "enable_hello"):
        xtdata.enable_hello = False  # the connect banner goes to stdout; the gateway logs its own
    source = XtdataSource(
        xtdata,
        name=SIMULATED,
        config=source_config(settings),
        executor=XtdataExecutor(executor_config(settings.executor)),
        clock=clock,
        note=note,
    )
    _warmers[source] = lambda: xtdata.get_full_tick(list(MARKETS))
    return source


#: How a simulated source prepares its session (build_simulated_source -> warm_up).
_warmers: weakref.WeakKeyDictionary[MarketSource, Callable[[], Any]] = weakref.WeakKeyDictionary()


async def warm_up(source: MarketSource) -> float | None:
    """Prepare the simulated session for the whole market before the gateway says it is ready.

    The simulator's first whole-market call of a session builds every code's daily path up to the
    session (about 10-30 s of numpy on a busy 2-core box) unless a process has already written that
    session to the simulator's data directory (``sim/daycache.py``: then ~1 s). Left to the first request, that request
    overran the executor's 5 s deadline (504 ``source_timeout``, executor DEGRADED, the recorder's
    "backfill failed") and the stream stayed silent; done here, before the server listens, the first
    request, the first tick and the recorder's backfill are fast. Returns the seconds it took (None when
    there was nothing to warm). A failure is logged, not raised: the first request then pays instead.
    """
    warm = _warmers.pop(source, None)
    if warm is None:
        return None
    began = time.perf_counter()
    logger.info("simulated market: preparing the session for the whole market before serving")
    try:
        await asyncio.to_thread(warm)
    except Exception:
        logger.exception("simulated market: warming up failed; the first request will be slow")
        return None
    seconds = time.perf_counter() - began
    logger.info("simulated market: session prepared in %.1f s", seconds)
    return seconds


def build_replay_source(settings: Settings) -> MarketSource:
    """The replay of one recorded session (``--source replay --db FILE [--date D] --speed N``; without a
    date, the newest recorded day)."""
    from qmtgate.source.replay import ReplaySource, newest_recorded_day

    if settings.replay.db is None:
        raise SourceUnavailable("--source replay needs --db FILE (replay.db)", {"source": "replay"})
    try:
        day = settings.replay.day() if settings.replay.date else newest_recorded_day(settings.replay.db)
    except ValueError as e:
        raise SourceUnavailable(str(e), {"source": "replay"}) from e
    return ReplaySource(settings.replay.db, day, speed=settings.replay.speed, start=settings.replay.start)


def _install_options(sim: SimSettings) -> dict[str, Any]:
    """``qmtgate.sim.install`` keyword arguments for the gateway's simulator settings."""
    options: dict[str, Any] = {"clock": sim.clock.value, "speed": sim.speed}
    if sim.start and sim.clock.value in ("replay", "manual"):
        # A bare date starts at 09:30:00, as the simulator's own replay does.
        text = sim.start if len(sim.start) == 14 else sim.start + "093000"
        moment = dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=_CST)
        options["replay_day"] = moment.date()
        options["start_ms"] = int(moment.timestamp() * 1000)
    elif sim.start:
        logger.warning("sim.start=%s is ignored with the %s clock", sim.start, sim.clock.value)
    if sim.wall_time:
        options["wall"] = shifted_wall(sim.wall_time)
    return options


def shifted_wall(text: str) -> Callable[[], float]:
    """A ``time.time`` that read ``text`` (YYYYMMDDHHMMSS, Asia/Shanghai) when made and runs on from it."""
    moment = dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=_CST).timestamp()
    offset = moment - time.time()
    return lambda: time.time() + offset


_CST = dt.timezone(dt.timedelta(hours=8))


async def open_source(
    settings: Settings, import_module: ImportModule = importlib.import_module
) -> MarketSource:
    """Build and start the source selected by ``settings.source``; the caller must ``await source.stop()``.

    ``xtquant`` starts even when QMT is not running yet (the source reports unavailable and keeps
    reconnecting); ``auto`` falls back to the simulator in that case instead.
    """
    kind = settings.source
    if kind is SourceKind.REPLAY:
        replay = build_replay_source(settings)
        await replay.start()
        _announce(replay, f"selected with --source replay --db {settings.replay.db}")
        return replay
    if kind is SourceKind.SIM:
        source = build_simulated_source(settings, import_module)
        await warm_up(source)  # before start: the source's own probe would otherwise wait on it
        await source.start()
        _announce(source, "selected with --source sim")
        return source
    if kind is SourceKind.XTQUANT:
        source = build_xtquant_source(settings, import_module)
        await source.start()
        _announce(source, "selected with --source xtquant")
        return source

    try:
        real = build_xtquant_source(settings, import_module)
    except SourceUnavailable as e:
        reason = e.message
    else:
        await real.start()
        status = real.status()
        if status.connected:
            _announce(real, "auto: connected to QMT")
            return real
        reason = f"xtquant imported but not connected: {status.message}"
        await real.stop()
    source = build_simulated_source(settings, import_module)
    await warm_up(source)
    await source.start()
    _announce(source, f"auto fallback, {reason}")
    return source


def _announce(source: MarketSource, why: str) -> None:
    status = source.status()
    line = "=" * 78
    what = {
        SIMULATED: "SIMULATED MARKET (not real quotes)",
        "replay": "RECORDED SESSION REPLAY (not live quotes)",
    }.get(source.name, "REAL QMT via xtquant")
    logger.warning(
        "\n%s\n  qmtgate data source: %s\n  source=%s state=%s (%s)%s\n%s",
        line,
        what,
        source.name,
        status.state.value,
        why,
        f"\n  {status.note}" if status.note else "",
        line,
    )
