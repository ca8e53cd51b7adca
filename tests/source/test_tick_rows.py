"""The column-wise tick converter gives exactly the scalar converter's rows, whatever xtquant sends."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from qmtgate.source.convert import DBL_MAX, SNAPSHOT_ARROW_TYPES, TickColumns, rows_table, tick_row, tick_rows

number = st.one_of(
    st.floats(min_value=-1.0, max_value=1e12, allow_nan=False),
    st.sampled_from([0.0, math.nan, math.inf, DBL_MAX, -1.0, 10.0, 10.01]),
    st.integers(min_value=-5, max_value=10**9),
)
maybe = st.one_of(st.none(), number)
ladder = st.one_of(
    st.lists(number, min_size=5, max_size=5),
    st.lists(number, min_size=0, max_size=7),
    st.none(),
    st.lists(st.one_of(st.none(), number), min_size=5, max_size=5),
)
tick = st.fixed_dictionaries(
    {},
    optional={
        "time": st.one_of(st.none(), st.integers(1_500_000_000_000, 1_800_000_000_000), st.just(math.nan)),
        "lastPrice": maybe,
        "open": maybe,
        "high": maybe,
        "low": maybe,
        "lastClose": maybe,
        "volume": maybe,
        "amount": maybe,
        "transactionNum": maybe,
        "openInt": st.one_of(st.none(), st.integers(0, 20), st.just(math.nan)),
        "bidPrice": ladder,
        "bidVol": ladder,
        "askPrice": ladder,
        "askVol": ladder,
        "stockStatus": st.just("x"),
    },
)


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(st.lists(tick, min_size=1, max_size=8))
def test_columnar_rows_equal_scalar_rows(ticks: list[dict]) -> None:
    codes = [f"{600000 + i}.SH" for i in range(len(ticks))]
    expected = [tick_row(c, t) for c, t in zip(codes, ticks, strict=True)]
    got = tick_rows(codes, ticks)
    for e, g in zip(expected, got, strict=True):
        assert list(e) == list(g)
        for k in e:
            assert same(e[k], g[k]), (k, e[k], g[k])
    try:
        columns = TickColumns.build(codes, ticks)
    except (TypeError, ValueError):
        return  # not columnar: the scalar path served the rows above
    assert columns.table().equals(rows_table(expected, list(SNAPSHOT_ARROW_TYPES)))
    for i, e in enumerate(expected):  # one row alone (a client of a few codes) is the same row
        one = columns.row(i)
        assert list(one) == list(e)
        for k in e:
            assert same(e[k], one[k]), (k, e[k], one[k])


def full(price: float) -> dict:
    return {
        "time": 1749695400000,
        "lastPrice": price,
        "open": price,
        "high": price + 0.1,
        "low": price - 0.1,
        "lastClose": price,
        "volume": 1234,
        "amount": 1.5e6,
        "transactionNum": 88,
        "openInt": 13,
        "bidPrice": [price - 0.01 * k for k in range(5)],
        "bidVol": [10, 20, 30, 40, 50],
        "askPrice": [price + 0.01 * k for k in range(1, 5)] + [0.0],
        "askVol": [1, 2, 3, 4, 5],
    }


def test_a_whole_burst_takes_the_columnar_path_and_matches() -> None:
    ticks = [full(10.0 + i * 0.01) for i in range(2000)]
    codes = [f"{600000 + i}.SH" for i in range(2000)]
    rows = tick_rows(codes, ticks)
    assert rows == [tick_row(c, t) for c, t in zip(codes, ticks, strict=True)]
    assert rows[0]["ask_price"][-1] is None and rows[0]["ask_volume"][-1] == 0
    assert rows[0]["volume"] == 123_400 and rows[0]["time"] == "2025-06-12T10:30:00+08:00"
    table = TickColumns.build(codes, ticks).table()
    assert table.equals(rows_table(rows, list(SNAPSHOT_ARROW_TYPES)))
    assert table.column("ask_price")[0].as_py()[-1] is None


@settings(max_examples=200, deadline=None)
@given(st.lists(tick, min_size=2, max_size=12), st.integers(1, 5))
def test_a_burst_built_in_slices_equals_the_burst_built_at_once(ticks: list[dict], size: int) -> None:
    """The hub's pump converts a whole market in slices (the loop free in between): the same columns,
    masks and table as one build, or the same refusal (the scalar path) when one slice is not plain."""
    codes = [f"{600000 + i}.SH" for i in range(len(ticks))]
    try:
        whole = TickColumns.build(codes, ticks)
    except (TypeError, ValueError):
        whole = None
    try:
        parts = [
            TickColumns.build(codes[i : i + size], ticks[i : i + size]) for i in range(0, len(ticks), size)
        ]
    except (TypeError, ValueError):
        assert whole is None
        return
    assert whole is not None
    sliced = TickColumns.concat(parts)
    assert sliced.codes == whole.codes and sliced.table().equals(whole.table())
    for name, values in whole.values.items():
        assert values.dtype == sliced.values[name].dtype
        assert ((values == sliced.values[name]) | (values != values)).all()  # NaN where NaN
        mask, got = whole.valid[name], sliced.valid[name]
        if mask is None:
            assert got is None
        else:
            assert got is not None and (mask == got).all()
    for a, b in zip(sliced.rows(), whole.rows(), strict=True):
        assert list(a) == list(b) and all(same(a[k], b[k]) for k in a)


def test_one_tick_vocabulary_names_every_form_of_a_tick() -> None:
    """Rows, Arrow frames, recordings and the recorded-data API name a tick's fields from one list, in
    one order: a field added to the snapshot schema reaches all of them or the suite says where not."""
    from qmtgate.record.schema import TICK_COLUMNS
    from qmtgate.record.store import TICK_FIELDS
    from qmtgate.record.writer import TICK_COLUMNS as BATCH_COLUMNS
    from qmtgate.source.convert import SNAPSHOT_FIELDS

    row = tick_row("600000.SH", {"time": 1_796_606_700_000, "lastPrice": 10.0})
    assert tuple(row) == ("code", "ts", "time", *SNAPSHOT_FIELDS)
    assert tuple(SNAPSHOT_ARROW_TYPES) == tuple(row)
    assert TICK_FIELDS == SNAPSHOT_FIELDS
    assert ("date", "code", "ts", "seq", *SNAPSHOT_FIELDS) == TICK_COLUMNS
    assert ("code", "ts", *SNAPSHOT_FIELDS) == BATCH_COLUMNS
