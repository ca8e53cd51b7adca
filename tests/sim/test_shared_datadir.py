"""Processes using the simulated xtquant on one machine share its data directory, like QMT's datadir
(issue 19, item 3): a spawned child reads the downloads its parent made, and both see the same
simulated "now" (the clock's anchor is kept there too).

Before: downloads and the clock anchor lived in each process, so a worker process got 0 one-minute
bars where its parent got 241, and each process replayed the session from its own start.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import time
import types
from pathlib import Path

import qmtgate.sim
from qmtgate.sim.xtquant import _env

REPLAY_DAY = dt.date(2026, 11, 19)
CODE = "600000.SH"
HISTORY = ("20261116", "20261118")  # three sessions of minute history


def _bars(xtdata: types.ModuleType) -> int:
    frame = xtdata.get_market_data_ex([], [CODE], "1m", HISTORY[0] + "093000", HISTORY[1] + "150000")
    return len(frame.get(CODE, ()))


def child(data_dir: str) -> tuple[int, int, float]:
    """In a fresh interpreter: install with the same clock settings; report bars, now and wall time."""
    env = qmtgate.sim.install(0, clock="replay", replay_day=REPLAY_DAY, data_dir=data_dir)
    from xtquant import xtdata

    xtdata.enable_hello = False
    bars = _bars(xtdata)
    wall = time.time()
    return bars, env.market.clock.now_ms(), wall


def test_spawned_child_reads_parent_downloads_and_shares_the_clock(tmp_path: Path) -> None:
    previous = _env._ENV
    shared = tmp_path / "shared"
    try:
        env = qmtgate.sim.install(0, clock="replay", replay_day=REPLAY_DAY, data_dir=shared)
        from xtquant import xtdata

        xtdata.enable_hello = False
        assert _bars(xtdata) == 0, "minute history needs a download first, as on real QMT"
        xtdata.download_history_data(CODE, "1m", HISTORY[0], HISTORY[1])
        parent_bars = _bars(xtdata)
        assert parent_bars == 3 * 241
        anchor_ms, anchor_wall = env.market.clock.anchor()

        context = multiprocessing.get_context("spawn")
        with context.Pool(1) as pool:
            bars, child_now, child_wall = pool.apply(child, (str(shared),))
            other_bars, _, _ = pool.apply(child, (str(tmp_path / "elsewhere"),))
        env.close()
    finally:
        _env._ENV = previous

    assert bars == parent_bars, "the child reads the parent's downloads from the shared directory"
    assert other_bars == 0, "another data directory has no downloads (control)"
    expected_now = anchor_ms + (child_wall - anchor_wall) * 1000 * env.market.clock.speed
    day_start = qmtgate.sim.timeutil.ms_of(REPLAY_DAY, 9 * 3600 + 29 * 60)
    assert child_now >= day_start
    assert abs(child_now - expected_now) < 250, "parent and child see the same simulated time"


def _writer(path: str, worker: int, n: int) -> None:
    from qmtgate.sim.datadir import JsonDoc

    doc = JsonDoc(Path(path))
    for k in range(n):
        doc.update(lambda d, key=f"{worker}-{k}", value=k: {**d, key: value}, {})


def test_concurrent_processes_do_not_lose_or_corrupt_updates(tmp_path: Path) -> None:
    """Read-merge-write under the inter-process lock: every update of every writer survives, and a
    reader never sees half a document."""
    from qmtgate.sim.datadir import JsonDoc

    path = tmp_path / "doc.json"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(path), w, 40)) for w in range(3)]
    for p in workers:
        p.start()
    reader = JsonDoc(path)
    seen = 0
    while any(p.is_alive() for p in workers):
        seen = max(seen, len(reader.read({})))  # json.loads would raise on a torn file
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    final = reader.read({})
    assert len(final) == 120 and seen <= 120
    assert not list(tmp_path.glob("*.tmp")), "no temporary files left behind"
