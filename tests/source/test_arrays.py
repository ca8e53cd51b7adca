"""Arrow arrays made from buffers equal pyarrow's own conversions, and the stream's path loads no pandas."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qmtgate.source.convert import arrays as arrow

ROOT = Path(__file__).resolve().parents[2]

DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64, np.float32, np.float64]
KINDS = [pa.int32(), pa.int64(), pa.float64(), pa.float32(), pa.int8(), pa.uint64(), None]


@st.composite
def numeric_case(draw: st.DrawFn) -> tuple[np.ndarray, pa.DataType | None, np.ndarray | None]:
    dtype = draw(st.sampled_from(DTYPES))
    n = draw(st.integers(0, 40))
    values = draw(hnp.arrays(dtype, n))
    kind = draw(st.sampled_from(KINDS))
    mask = draw(st.one_of(st.none(), hnp.arrays(np.bool_, n)))
    return values, kind, mask


def _reference(values: np.ndarray, kind: pa.DataType | None, mask: np.ndarray | None) -> pa.Array | None:
    try:
        return pa.array(values, kind, mask=mask)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, OverflowError):
        return None


@settings(max_examples=400, deadline=None)
@given(numeric_case())
def test_numeric_equals_pa_array(case: tuple[np.ndarray, pa.DataType | None, np.ndarray | None]) -> None:
    values, kind, mask = case
    expected = _reference(values, kind, mask)
    if expected is None:  # pyarrow refuses the cast: so must we (we hand such casts to pa.array)
        with pytest.raises((pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, OverflowError)):
            arrow.numeric(values, kind, mask=mask)
        return
    got = arrow.numeric(values, kind, mask=mask)
    got.validate(full=True)
    assert got.type == expected.type
    assert got.null_count == expected.null_count
    # bit for bit, NaN and -0.0 included: compare the data of valid slots and the validity
    assert got.is_null().to_pylist() == expected.is_null().to_pylist()
    assert got.equals(expected) or _same_bits(got, expected)


def _same_bits(a: pa.Array, b: pa.Array) -> bool:
    valid = ~np.asarray(a.is_null().to_pylist(), dtype=bool)
    da, db = arrow.to_numpy(a.fill_null(0)), arrow.to_numpy(b.fill_null(0))
    return bool((da[valid].view(np.uint8) == db[valid].view(np.uint8)).all())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=30))
def test_strings_equal_pa_array(values: list[str]) -> None:
    got = arrow.strings(values)
    got.validate(full=True)
    assert got.equals(pa.array(values, pa.string()))


def test_strings_with_none_keep_pyarrows_nulls() -> None:
    values = ["600000.SH", None, "000001.SZ"]
    assert arrow.strings(values).equals(pa.array(values, pa.string()))  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(numeric_case(), st.integers(0, 10), st.integers(0, 10))
def test_to_numpy_equals_pyarrows(case: tuple, start: int, length: int) -> None:
    values, kind, mask = case
    array = _reference(values, kind, mask)
    if array is None:
        return
    for piece in (
        array,
        array.slice(start, length),
        pa.chunked_array([array]),
        pa.chunked_array([array, array]),
    ):
        got = arrow.to_numpy(piece)
        expected = piece.to_numpy(zero_copy_only=False)
        assert got.dtype == expected.dtype
        assert got.shape == expected.shape
        if got.dtype.kind in "iuf" and not piece.null_count:  # bit for bit (NaN, -0.0)
            assert (got.view(np.uint8) == expected.view(np.uint8)).all()
        else:
            assert np.array_equal(got, expected, equal_nan=got.dtype.kind == "f")


def test_the_streams_frames_load_no_pandas() -> None:
    """A whole-market burst through the stream's encoders (Arrow, columnar JSON, the replay ring's packing
    and a resume's take) in a fresh interpreter: pandas stays unloaded (pyarrow would load it for any
    ``pa.array``)."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from source.fake_xtdata import FakeXtdata
        from qmtgate.source.convert import TickColumns
        from qmtgate.source.convert.arrays import to_numpy
        from qmtgate.api.encoding import arrow_bytes
        xt = FakeXtdata(universe=400)
        codes = list(xt.get_stock_list_in_sector("沪深A股"))[:400]
        ticks = xt.get_full_tick(codes)
        cols = TickColumns.build(list(ticks), list(ticks.values()))
        table = cols.table()
        arrow_bytes(table, None, None, "zstd")
        to_numpy(table.column("last_price"))
        print("pandas" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
