"""The first snapshot query of a fresh process answers at once (issue 19, item 5).

Before: the first ``get_full_tick`` in a fresh interpreter built the whole market's day (every daily
chain over the whole history, every segment already traded) before answering: ~10 s, while real QMT
answers from its cache in milliseconds and other tools' health probes (5 s timeouts) called the
simulator dead. Now a few codes are answered per code, and the whole market's day (its skeleton and the
state after each segment) is kept in the data directory by the first process that computes it.

Answers must not change: the per-code answers, and the answers restored from the cache, equal the
whole-market computation of a fresh process for a sample of codes and times (bit for bit: the dicts
compare equal, floats included). Timings are asserted with bounds a loaded 2-core CI keeps; the real
figures are in bench/RESULTS.md (bench/sim_first_query.py).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import qmtgate.sim
from qmtgate.sim import market
from qmtgate.sim.clock import MarketClock
from qmtgate.sim.live import LiveSession
from qmtgate.sim.market import SimMarket, _build_day_context
from qmtgate.sim.timeutil import ms_of
from qmtgate.sim.xtquant import _env

DAY = dt.date(2026, 11, 20)  # the shared fixtures' session: its whole-market day is built once per run
#: auction, inside the first segment, the end of a segment (a cached boundary), inside the third segment
TIMES = [
    ms_of(DAY, s) for s in (9 * 3600 + 24 * 60 + 57, 9 * 3600 + 37 * 60 + 30, 10 * 3600, 10 * 3600 + 451)
]
WHOLE = ["SH", "SZ", "BJ"]


def _sample_codes() -> list[str]:
    """A seeded sample of stocks of every board, an index (50 members) and an ETF that tracks it."""
    u = SimMarket(seed=0).universe
    stocks = [i.code for i in u.instruments if i.kind == "stock"]
    rng = np.random.default_rng(19)
    picked = sorted(rng.choice(stocks, 30, replace=False).tolist())
    return ["600000.SH", "000016.SH", "159088.SZ", *picked]


def _full(ms: int) -> dict[str, dict]:
    """The reference: a fresh whole-market session advanced to ``ms`` with no day cache at all."""
    m = SimMarket(seed=0)
    m.clock = MarketClock(m.calendar, mode="manual", start_ms=ms)
    assert m.day_cache is None
    s = LiveSession(m)
    s.advance(m.time())
    rows = s.rows_with_data()
    codes = [m.universe.instruments[int(r)].code for r in rows]
    return dict(zip(codes, s.tick_dicts(rows), strict=True))


def _answers(data_dir: str, times: list[int], codes: list[str], whole: bool) -> dict:
    """In a fresh interpreter: the per-code answer at each time (and the whole market's)."""
    out: dict = {"codes": {}, "whole": {}, "seconds": {}}
    for ms in times:
        env = qmtgate.sim.install(0, clock="manual", start_ms=ms, data_dir=data_dir)
        from xtquant import xtdata

        xtdata.enable_hello = False
        began = time.perf_counter()
        out["codes"][ms] = xtdata.get_full_tick(codes)
        out["seconds"][ms] = time.perf_counter() - began
        if whole:
            out["whole"][ms] = xtdata.get_full_tick(WHOLE)
        env.close()
    return out


def _first_calls(data_dir: str, start_ms: int) -> dict[str, float]:
    """In a fresh interpreter: seconds of the first one-code and the first whole-market snapshot."""
    env = qmtgate.sim.install(0, clock="manual", start_ms=start_ms, data_dir=data_dir)
    from xtquant import xtdata

    xtdata.enable_hello = False
    out = {}
    began = time.perf_counter()
    one = xtdata.get_full_tick(["600000.SH"])
    out["one"] = time.perf_counter() - began
    began = time.perf_counter()
    whole = xtdata.get_full_tick(["SH", "SZ"])
    out["whole"] = time.perf_counter() - began
    out["n_whole"] = len(whole)
    out["one_equal"] = one["600000.SH"] == whole["600000.SH"]
    env.close()
    return out


@pytest.fixture(scope="module", autouse=True)
def _keep_segments() -> Iterator[None]:
    """The reference computations redraw the same first segments at every time: keep them all. The
    suite's shared day cache is cleared: these tests mean cold and warm by their own data directories
    (spawned children inherit the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(market, "SEGMENTS_KEPT", 8)
        patch.delenv("QMTGATE_SIM_CACHE_DIR", raising=False)
        yield


@pytest.fixture(scope="module")
def warm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory in which a process has answered whole-market snapshots at TIMES (so the day's
    context and the fresh states at the boundaries it passed are cached there)."""
    path = tmp_path_factory.mktemp("warm-simdata")
    previous = _env._ENV
    try:
        for ms in TIMES:
            m = SimMarket(seed=0)
            m.clock = MarketClock(m.calendar, mode="manual", start_ms=ms)
            env = qmtgate.sim.install(market=m, data_dir=path)
            from xtquant import xtdata

            xtdata.enable_hello = False
            xtdata.get_full_tick(WHOLE)
            env.close()
    finally:
        _env._ENV = previous
    return path


def test_per_code_and_cached_answers_equal_the_full_computation(tmp_path: Path, warm_dir: Path) -> None:
    codes = _sample_codes()
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1) as pool:
        cold = pool.apply(_answers, (str(tmp_path / "cold"), TIMES, codes, False))
    with spawn.Pool(1) as pool:
        warm = pool.apply(_answers, (str(warm_dir), TIMES, codes, True))
    day = warm_dir / "daycache"
    assert list(day.glob("*/*/20261120/context/done")), "the whole market's day context is cached"
    assert len(list(day.glob("*/*/20261120/state-*.npz"))) >= 3, "fresh states at boundaries are cached"
    assert not list((tmp_path / "cold").glob("daycache/*/*/*/state-*.npz")), "per-code answers write none"
    for ms in TIMES:
        full = _full(ms)
        expected = {c: full[c] for c in codes if c in full}
        assert len(expected) >= 20, "most sampled codes have a snapshot at every sampled time"
        assert cold["codes"][ms] == expected, f"per-code answer (no cache) differs at {ms}"
        assert warm["codes"][ms] == expected, f"per-code answer (from the cache) differs at {ms}"
        assert warm["whole"][ms] == full, f"whole-market answer restored from the cache differs at {ms}"


def test_context_of_some_rows_equals_the_whole_markets_rows(sim_env: _env.SimEnv) -> None:
    """The per-code skeleton of a day (computed for those rows alone) is the whole market's rows."""
    m = sim_env.market
    d = m.calendar.index_of(DAY)
    whole = m.day_context(d)
    rows = np.array(sorted(m.index_of(c) for c in _sample_codes()), dtype=np.int64)
    part = _build_day_context(m, d, rows)
    for name in ("listed", "knots", "seg_high", "seg_low", "seg_volume", "seg_amount", "close", "pre"):
        np.testing.assert_array_equal(getattr(part, name), getattr(whole, name)[rows], err_msg=name)
    np.testing.assert_array_equal(part.auction_active, whole.auction_active[rows])
    np.testing.assert_array_equal(part.limited, whole.limited[rows])
    np.testing.assert_array_equal(part.susp_days, whole.susp_days[rows])


def test_instrument_detail_from_the_days_context_equals_the_daily_history(
    sim_env: _env.SimEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """get_instrument_detail of the session reads preClose, limits and suspension from the day's
    skeleton when it is known (a fresh gateway need not compute 5,900 daily histories for it)."""
    m = sim_env.market
    d = m.calendar.index_of(DAY)
    m.day_context(d)
    rows = [m.index_of(c) for c in _sample_codes()]
    suspended = [i for i in range(len(m.universe)) if m.day_context(d).susp_days[i] > 0][:5]
    limitless = [i for i in range(len(m.universe)) if m.listed_by(i, d) and not m.day_context(d).limited[i]][
        :5
    ]
    rows += suspended + limitless
    assert suspended and limitless, "the sample covers suspended and limit-free instruments"
    from_context = [m.instrument_detail(i, d) for i in rows]
    monkeypatch.setattr(m, "_known_context", lambda day: None)
    assert [m.instrument_detail(i, d) for i in rows] == from_context


def test_first_snapshot_in_a_fresh_interpreter_is_fast(tmp_path: Path, warm_dir: Path) -> None:
    """Measured inside a spawned interpreter, first call only. One code: < 100 ms is the target and the
    typical figure (bench/RESULTS.md); asserted < 1 s so a loaded CI box does not flake. The whole
    market from the cache at a cached boundary (10:00:00): asserted < 2 s (was ~10 s)."""
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1) as pool:
        warm = pool.apply(_first_calls, (str(warm_dir), TIMES[2]))
    assert warm["one_equal"]
    assert warm["n_whole"] > 5000
    assert warm["one"] < 1.0, warm
    assert warm["whole"] < 2.0, warm
    cold_dir = tmp_path / "cold"
    with spawn.Pool(1) as pool:
        cold = pool.apply(_answers, (str(cold_dir), [TIMES[3]], ["600000.SH"], False))
    assert cold["codes"][TIMES[3]], "600000.SH has a snapshot at 10:07:31"
    assert cold["seconds"][TIMES[3]] < 1.0, cold["seconds"]


def test_a_session_moving_slot_by_slot_writes_the_fresh_state_of_the_boundaries_it_passes(
    tmp_path: Path,
) -> None:
    """A live session adds other float sums than a fresh one (slot by slot), so beside it the fresh
    state of each boundary it passes is computed and cached; it equals a fresh computation's."""
    from qmtgate.sim.daycache import STATE_FIELDS
    from qmtgate.sim.live import BOUNDARY_SLOTS

    previous = _env._ENV
    m = SimMarket(seed=0)
    m.clock = MarketClock(m.calendar, mode="manual", start_ms=ms_of(DAY, 9 * 3600 + 44 * 60 + 30))
    try:
        env = qmtgate.sim.install(market=m, data_dir=tmp_path)
        from xtquant import xtdata

        xtdata.enable_hello = False
        xtdata.get_full_tick(WHOLE)  # fresh advance to 09:44:30: writes the state after the opening match
        day = m.calendar.day(m.time().day_index)
        assert m.day_cache is not None and m.day_cache.state_slots(day) == [200]
        m.clock.set(ms_of(DAY, 9 * 3600 + 45 * 60 + 30))
        xtdata.get_full_tick(WHOLE)  # moves on from 09:44:30: passes the end of the first segment
        env.close()
    finally:
        _env._ENV = previous
    end_of_first = min(b for b in BOUNDARY_SLOTS if b > 200)
    assert m.day_cache.state_slots(day) == [200, end_of_first]
    cached = m.day_cache.load_state(day, end_of_first)
    assert cached is not None
    ref = SimMarket(seed=0)
    ref.clock = MarketClock(ref.calendar, mode="manual", start_ms=ms_of(DAY, 9 * 3600 + 45 * 60))
    fresh = LiveSession(ref)
    fresh.advance(ref.time())
    assert fresh.slot == end_of_first
    for name in STATE_FIELDS:
        np.testing.assert_array_equal(cached[name], getattr(fresh.state, name), err_msg=name)


#: The keys of a tick dict of the 2024-12 builds (xtquant-api.md §3.3)
TICK_FIELDS = {
    "time", "lastPrice", "open", "high", "low", "lastClose", "amount", "volume", "pvolume", "stockStatus",
    "openInt", "transactionNum", "lastSettlementPrice", "settlementPrice", "pe", "askPrice", "bidPrice",
    "askVol", "bidVol", "volRatio", "speed1Min", "speed5Min",
}  # fmt: skip


#: The ways of computing the day a fresh interpreter must not use when its data directory is warm:
#: (module of qmtgate.sim, attribute path).
NO_DAY_COMPUTATION = (
    ("daily", "DailyModel._stock_chains"),  # the daily chains
    ("market", "_build_day_context"),  # the day's skeleton
    ("market", "simulate_segments"),  # segment draws
)
NO_DAILY_HISTORY = (
    ("daily", "DailyModel._stock_chains"),
    ("daily", "DailyModel._index_chain_from_members"),
)


def _whole_without(data_dir: str, ms: int, forbidden: tuple[tuple[str, str], ...]) -> dict[str, dict]:
    """In a fresh interpreter: the whole market's first snapshot with the ``forbidden`` computations
    replaced by a failure, so the answer must come from the day cache's files."""
    import importlib

    def computed(*args: object, **kwargs: object) -> None:
        raise AssertionError("computed instead of read from the day cache")

    for module_name, path in forbidden:
        owner: object = importlib.import_module(f"qmtgate.sim.{module_name}")
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        setattr(owner, name, computed)
    env = qmtgate.sim.install(0, clock="manual", start_ms=ms, data_dir=data_dir)
    from xtquant import xtdata

    xtdata.enable_hello = False
    try:
        return xtdata.get_full_tick(WHOLE)
    finally:
        env.close()


def test_a_fresh_interpreter_answers_the_whole_market_from_a_warm_data_dir(warm_dir: Path) -> None:
    """Inside a segment (10:07:31) a fresh process restores the state at the segment's start and reads
    the segment's paths that the warming process wrote: no chain, skeleton or segment is computed, and
    the answer is the full computation's, every instrument with a snapshot, every field, bit for bit.
    (Its time is in bench/sim_first_query.py: ~0.06 s on an idle box, was ~0.3 s.)"""
    day = next(warm_dir.glob("daycache/*/*/20261120"))
    assert (day / "segment-2" / "done").exists(), "the warming process wrote the segment it drew"
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1) as pool:
        got = pool.apply(_whole_without, (str(warm_dir), TIMES[3], NO_DAY_COMPUTATION))
    full = _full(TIMES[3])
    assert len(got) == len(full) > 5000
    assert all(set(tick) == TICK_FIELDS for tick in got.values())
    assert got == full


def test_segments_read_from_the_day_cache_equal_drawn_ones(warm_dir: Path, tmp_path: Path) -> None:
    """A segment written by the process that drew it (32-bit integers on disk) reads back as the same
    arrays, dtypes included; a segment whose values do not fit is not written (drawn again instead)."""
    from qmtgate.sim.daycache import DayCache
    from qmtgate.sim.intraday import simulate_segments

    m = SimMarket(seed=0)
    m.use_data_dir(warm_dir)
    assert m.day_cache is not None
    d = m.calendar.index_of(DAY)
    drawn = simulate_segments(m._segment_rows(m.day_context(d), 2))
    read = m._cached_segment(d, 2)
    assert read is not None
    for name, value in vars(drawn).items():
        assert getattr(read, name).dtype == value.dtype, name
        np.testing.assert_array_equal(getattr(read, name), value, err_msg=name)
    other = DayCache(tmp_path, 0, m.calendar.first, "test")
    huge = dict(vars(drawn), volume=drawn.volume + 2**31)
    other.save_segment(DAY, 2, huge)
    assert other.load_segment(DAY, 2) is None
    other.save_segment(DAY, 2, vars(drawn))
    assert other.load_segment(DAY, 2) is not None


def _many_codes_cold(data_dir: str, ms: int, codes: list[str]) -> dict:
    """In a fresh interpreter on an empty data directory: a snapshot of many codes, and whether the
    whole market's day was built for it."""
    env = qmtgate.sim.install(0, clock="manual", start_ms=ms, data_dir=data_dir)
    from xtquant import xtdata

    xtdata.enable_hello = False
    try:
        ticks = xtdata.get_full_tick(codes)
        return {"ticks": ticks, "whole_built": env.session.day >= 0}
    finally:
        env.close()


def test_hundreds_of_codes_in_a_cold_process_are_answered_without_the_whole_market(tmp_path: Path) -> None:
    """A watch list of 500 codes (every board, indices and ETFs among them) in a process with an empty
    data directory is answered per code (~1.3 ms a code) instead of after the whole market's day (~8 s),
    and the answer is the full computation's."""
    m = SimMarket(seed=0)
    u = m.universe
    codes = [u.instruments[i].code for i in range(0, len(u), len(u) // 500)][:500]
    assert len(codes) == 500 <= _env.SimEnv.LAZY_MAX_CODES
    assert {u.instruments[m.index_of(c)].kind for c in codes} == {"stock", "index", "etf"}
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1) as pool:
        got = pool.apply(_many_codes_cold, (str(tmp_path / "cold"), TIMES[3], codes))
    assert not got["whole_built"], "answered per code"
    full = _full(TIMES[3])
    expected = {c: full[c] for c in codes if c in full}
    assert len(expected) > 400
    assert got["ticks"] == expected


def test_the_knots_of_one_session_equal_the_rows_of_its_quarter(sim_env: _env.SimEnv) -> None:
    """A day's whole-market skeleton computes the knots of that session only (stocks, an index from its
    members' knots of the session, an ETF from its index's): each row equals the quarter's row, which
    history queries compute."""
    from qmtgate.sim.daily import DailyModel

    m = sim_env.market
    fresh = DailyModel(m.universe, m.calendar, m.seed)  # nothing cached: every row is computed
    fresh._chains.update(m.daily._chains)  # the chains (compared elsewhere) are not what is tested
    codes = [*_sample_codes(), "159108.SZ"]  # stocks of every board, SSE 50 and two of its ETFs
    for day in (DAY, dt.date(2020, 8, 24), dt.date(2024, 2, 6)):
        d = m.calendar.index_of(day)
        rows = [i for i in (m.index_of(c) for c in codes) if m.listed_by(i, d)]
        got = fresh.day_knots_many(rows, d)
        assert not fresh._knots, "no quarter was computed"
        for i in rows:
            quarter = m.daily.knots(i, int(m.daily.block_id[d]))
            r = d - quarter.first
            for name in ("knots", "seg_high", "seg_low", "seg_volume", "seg_amount", "close"):
                np.testing.assert_array_equal(
                    getattr(got[i], name)[0], getattr(quarter, name)[r], err_msg=f"{i} {day} {name}"
                )


def test_the_next_session_is_built_without_the_daily_history(warm_dir: Path) -> None:
    """A process that computed the daily history (for DAY) keeps the next sessions' rows of every
    stock's chain in the day cache (``days/<YYYYMMDD>.npz``, ~0.2 MB each); a fresh interpreter on the
    next session builds that session's skeleton from them (~0.7 s instead of ~4 s of history): no chain
    is computed, and the whole market's answer is the full computation's."""
    next_day = dt.date(2026, 11, 23)
    assert next(warm_dir.glob(f"daycache/*/*/days/{next_day:%Y%m%d}.npz"))
    ms = ms_of(next_day, 10 * 3600 + 451)
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1) as pool:
        got = pool.apply(_whole_without, (str(warm_dir), ms, NO_DAILY_HISTORY))
    full = _full(ms)
    assert len(got) == len(full) > 5000
    assert got == full
