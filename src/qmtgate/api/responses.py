"""JSON responses through orjson: fast, NaN/Infinity -> null, numpy and pandas scalars understood."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import orjson
from starlette.responses import JSONResponse

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(obj: Any) -> Any:
    # Lazy imports: numpy/pandas are only consulted for objects orjson cannot handle natively.
    import numpy as np
    import pandas as pd

    if obj is pd.NaT or obj is pd.NA:
        return None
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    if isinstance(obj, dt.timedelta):
        return obj.total_seconds()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps(content: Any) -> bytes:
    """Serialize to JSON bytes; NaN and +-Infinity become null (JSON has no such numbers). An integer
    beyond 64 bits (orjson's limit: say, an id a client sent that an error echoes back) is written as its
    decimal string rather than failing the response."""
    try:
        return orjson.dumps(content, default=_default, option=_OPTIONS)
    except TypeError:  # anything else orjson cannot write fails the same way the second time
        return orjson.dumps(_wide_ints_as_text(content), default=_default, option=_OPTIONS)


_INT64 = range(-(2**63), 2**64)  # what orjson writes as a number (signed 64-bit, or unsigned)


def _wide_ints_as_text(obj: Any) -> Any:
    if isinstance(obj, int) and not isinstance(obj, bool) and obj not in _INT64:
        return str(obj)
    if isinstance(obj, dict):
        return {k: _wide_ints_as_text(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_wide_ints_as_text(v) for v in obj]
    return obj


class OrjsonResponse(JSONResponse):
    """The app's default JSON response class."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
