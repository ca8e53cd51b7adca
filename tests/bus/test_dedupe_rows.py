"""Cross-gateway de-duplication of whole-market batches: the array check answers as the per-row one does.

A consumer of every gateway on a bus (``gateway="*"``) keeps a tick once by (code, exchange time). A
whole-market batch is checked with array operations (a Python call per row cost ~2.6 ms per burst); these
tests hold it to the per-row rule, batch after batch, with repeats inside a batch, missing times, the same
codes again (the cached slots) and codes first seen in a later batch, and mixed with single-tick messages.
"""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from qmtgate.client.bus import _Checker

CODES = [f"{600000 + i}.SH" for i in range(8)]

row = st.tuples(st.sampled_from(CODES), st.one_of(st.none(), st.integers(0, 20)))
batch = st.lists(row, max_size=12)
step = st.one_of(
    st.tuples(st.just("batch"), st.sampled_from(["gw1", "gw2"]), batch),
    st.tuples(st.just("tick"), st.sampled_from(["gw1", "gw2"]), row),
)


def columns(rows: list[tuple[str, int | None]]) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    codes = pa.chunked_array([pa.array([c for c, _ in rows], pa.string())])
    stamps = pa.chunked_array([pa.array([t for _, t in rows], pa.int64())])
    return codes, stamps


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=25))
def test_the_batch_check_answers_as_the_row_by_row_check(steps: list) -> None:
    fast, slow = _Checker(dedupe=True), _Checker(dedupe=True)
    for kind, gw, body in steps:
        if kind == "tick":
            code, ts = body
            assert fast.fresh("tick", code, ts) == slow.fresh("tick", code, ts)
            continue
        codes, stamps = columns(body)
        mask = fast.fresh_rows((gw, "SH"), codes, stamps)
        assert mask.dtype == bool and len(mask) == len(body)
        assert mask.tolist() == [slow.fresh("tick", c, t) for c, t in body]
    assert fast.cross_duplicates == slow.cross_duplicates


def test_a_repeated_burst_is_all_duplicates_and_a_newer_one_all_fresh() -> None:
    ck = _Checker(dedupe=True)
    codes = [f"{i:06d}.SZ" for i in range(3000)]
    first = columns([(c, 1_000) for c in codes])
    assert ck.fresh_rows(("active", "SZ"), *first).all()
    assert not ck.fresh_rows(("standby", "SZ"), *first).any()  # the standby's copy of the same burst
    assert ck.cross_duplicates == 3000
    newer = columns([(c, 4_000 if i % 2 else 1_000) for i, c in enumerate(codes)])
    assert ck.fresh_rows(("standby", "SZ"), *newer).tolist() == [bool(i % 2) for i in range(3000)]
    assert ck.fresh("tick", codes[1], 4_000) is False and ck.fresh("tick", codes[0], 1_001) is True


def test_slots_grow_past_the_first_array() -> None:
    ck = _Checker(dedupe=True)
    codes = [f"{i:06d}.SZ" for i in range(5000)]
    assert ck.fresh_rows(("gw", "SZ"), *columns([(c, 7) for c in codes])).all()
    assert not ck.fresh_rows(("gw2", "SZ"), *columns([(c, 7) for c in reversed(codes)])).any()
