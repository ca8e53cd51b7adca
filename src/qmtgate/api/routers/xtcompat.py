"""xtquant-shaped routes for ``qmtgate.remote`` (the ``xtquant.xtdata`` drop-in): ``/api/v1/xt/...``.

The normalized ``/api/v1`` routes convert units (shares, null for missing) and drop fields xtquant users
read (``settelementPrice``, ``openInterest``, ``pvolume``, ``stockStatus``, ``pe``, ``gugai`` ...). The
drop-in must give back exactly what ``xtdata`` would, so these routes serve the source's own xtquant
shapes and units, through the same services as every other route (validation, downloads before reads,
the K-line cache, the whole-market quote cache, the executor's lanes). They are an explicit list of
read-only operations with typed parameters: nothing here calls an xtdata function by name from the
request.

Times follow xtquant: ``''`` is open, ``YYYYMMDD`` is 00:00 of that day on both ends, ``YYYYMMDDHHMMSS``
is Asia/Shanghai wall time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from qmtgate.api.deps import ServicesDep, TabularFormatDep
from qmtgate.api.encoding import TabularFormat, off_loop, tabular_response
from qmtgate.api.openapi import ERRORS, tabular
from qmtgate.api.params import DividendType, KlinePeriod, split_list
from qmtgate.api.responses import OrjsonResponse
from qmtgate.api.services import Services
from qmtgate.codes import normalize_code
from qmtgate.errors import InvalidDate, QmtgateError, TooLarge
from qmtgate.security.budget import charge, row_cost
from qmtgate.source.convert import CST, XT_KLINE_DTYPES, XT_KLINE_FIELDS, Bars
from qmtgate.source.history import BARS_PER_SESSION

router = APIRouter(prefix="/xt", tags=["xtquant drop-in"], responses=ERRORS)

MARKET_TOKENS = ("SH", "SZ", "BJ")
#: Sessions since 1990 bound a request with neither start nor count (daily data is kept whole).
_ALL_SESSIONS = 9000

TimeQuery = Annotated[
    str,
    Query(pattern=r"^(\d{8}|\d{14})?$", description="'' (open), YYYYMMDD or YYYYMMDDHHMMSS, Asia/Shanghai."),
]


def xt_ms(value: str) -> int | None:
    """xtquant time text -> epoch ms; ``YYYYMMDD`` is 00:00 of that day on both ends, as in xtdata."""
    if not value:
        return None
    try:
        moment = dt.datetime.strptime(value, "%Y%m%d" if len(value) == 8 else "%Y%m%d%H%M%S")
    except ValueError:
        raise InvalidDate(
            f"invalid time {value!r}; expected YYYYMMDD or YYYYMMDDHHMMSS", {"value": value}
        ) from None
    return int(moment.replace(tzinfo=CST).timestamp() * 1000)


def _check_times(*values: str) -> None:
    """422 for impossible dates (20251399) before they reach the source as text."""
    for value in values:
        xt_ms(value)


def _valid_codes(raw: list[str]) -> list[str]:
    """Codes as xtquant takes them: malformed entries are simply unknown (no error), order kept."""
    out: list[str] = []
    for item in raw:
        with contextlib.suppress(QmtgateError):
            code = normalize_code(item)
            if code not in out:
                out.append(code)
    return out


async def _known(services: Services, codes: list[str]) -> list[str]:
    known: list[str] = []
    step = services.settings.max_codes_per_request
    for i in range(0, len(codes), step):
        chunk = codes[i : i + step]
        details = await services.source.instrument_details(chunk)
        known.extend(code for code in chunk if details.get(code) is not None)
    return known


def _estimate_rows(
    services: Services, codes: int, period: str, start_ms: int | None, count: int, arrow: bool
) -> None:
    """Refuse an answer over ``limits.max_kline_rows`` (``max_text_rows`` for JSON and CSV) with how to
    page, else charge its rows."""
    limits = services.settings.limits
    limit = limits.max_kline_rows if arrow else min(limits.max_kline_rows, limits.max_text_rows)
    if count > 0:
        per_code = float(count)
    elif start_ms is not None:
        days = max(1.0, (dt.datetime.now(CST).timestamp() * 1000 - start_ms) / 86_400_000 * 245 / 365)
        per_code = days * BARS_PER_SESSION[period] + 1
    elif period in ("1d", "1w", "1mon", "1q", "1hy", "1y"):
        per_code = _ALL_SESSIONS * BARS_PER_SESSION[period]
    else:
        # minute data with neither start nor count: only what is local is read, as in xtdata
        charge(codes)
        return
    if codes * per_code > limit:
        raise TooLarge(
            f"the answer would hold about {codes * per_code:,.0f} rows, more than the limit of {limit:,}; "
            "page through it: narrow the range (start_time/end_time), set count, or split the codes",
            {
                "estimated_rows": int(codes * per_code),
                "limit": limit,
                "max_bars_per_code": max(1, limit // max(1, codes)),
                "hint": "ask for at most max_bars_per_code bars per code (count=, or a shorter range), "
                "then continue with end_time before the oldest bar received",
            },
        )
    charge(codes, units=codes * per_code * row_cost(arrow))


class XtMarketDataResponse(BaseModel):
    source: str
    period: str
    codes: list[str] = Field(description="Known codes (normalized), in request order.")
    unknown: list[str] = Field(description="Requested entries the source does not know (empty frames).")
    count: int
    data: list[dict[str, Any]] = Field(description="Rows: code + xtquant K-line fields (volume in lots).")


class XtDividResponse(BaseModel):
    source: str
    code: str
    unknown: bool = Field(description="The source does not know the code (an empty frame, as in xtdata).")
    count: int
    data: list[dict[str, Any]] = Field(description="Rows: date (YYYYMMDD) + get_divid_factors columns.")


@router.get(
    "/market_data",
    response_class=Response,
    responses=tabular(XtMarketDataResponse, "Bars of every code in xtquant fields and units."),
    summary="K-lines in xtquant's fields and units (get_market_data_ex)",
    description="One long table: `code` then every xtquant K-line field (`time` epoch ms, `volume` in lots). "
    "Codes the source does not know are listed in the metadata key `unknown` (xtquant answers an empty "
    "frame for them). Missing history is downloaded first; today's bar is included while the session "
    "is forming (the gateway holds a whole-market subscription).",
)
async def market_data(
    services: ServicesDep,
    fmt: TabularFormatDep,
    codes: Annotated[list[str], Query(description="Codes, comma-separated and/or repeated.")],
    period: Annotated[KlinePeriod, Query()] = KlinePeriod["1d"],  # type: ignore[valid-type]
    start_time: TimeQuery = "",
    end_time: TimeQuery = "",
    count: Annotated[int, Query(ge=-1, le=1_000_000, description="-1 = all bars in the range.")] = -1,
    dividend_type: Annotated[DividendType, Query()] = DividendType["none"],  # type: ignore[valid-type]
    fill_data: bool = True,
) -> Response:
    raw = split_list(codes)
    limit = services.settings.limits.max_history_codes
    if len(raw) > limit:
        raise TooLarge(
            f"too many codes: {len(raw)} > {limit} per request", {"count": len(raw), "limit": limit}
        )
    valid = _valid_codes(raw)
    known = await _known(services, valid)
    start_ms, end_ms = xt_ms(start_time), xt_ms(end_time)
    _estimate_rows(services, len(known), period.value, start_ms, count, fmt is TabularFormat.ARROW)
    parts = (
        await services.history.kline_parts(
            known,
            period.value,
            start_ms,
            end_ms,
            None if count < 0 else count,
            dividend_type.value,
            fill_data,
        )
        if known and count != 0
        else {code: [] for code in known}
    )
    meta = {"period": period.value, "unknown": [c for c in raw if c not in known], "codes": known}
    rows = sum(len(part) for chunks in parts.values() for part in chunks)
    return await off_loop(
        rows, lambda: tabular_response(_xt_table(parts), fmt=fmt, source=services.source.name, meta=meta)
    )


def _xt_table(parts: dict[str, list[Bars]]) -> pa.Table:
    """``code`` + the xtquant K-line columns with xtquant dtypes (no unit conversion)."""
    codes = list(parts)
    bars = {code: Bars.concat(parts[code]) for code in codes}
    lengths = np.array([len(bars[c]) for c in codes], dtype=np.int64)
    arrays: dict[str, pa.Array] = {
        "code": pa.DictionaryArray.from_arrays(
            pa.array(np.repeat(np.arange(len(codes), dtype=np.int32), lengths)), pa.array(codes, pa.string())
        )
    }
    for name in XT_KLINE_FIELDS:
        dtype = XT_KLINE_DTYPES[name]
        chunks = [np.asarray(bars[c].columns[name]) for c in codes if len(bars[c])]
        values = np.concatenate(chunks) if chunks else np.zeros(0, dtype)
        if values.dtype.kind == "f" and np.dtype(dtype).kind != "f":
            values = values.astype(np.float64)  # keep NaN rather than inventing integers
        arrays[name] = pa.array(values)
    return pa.table(arrays)


def _json(body: dict[str, Any]) -> Response:
    # xtquant dicts go out as they are: re-validating them against the response model costs more than the
    # whole request on the drop-in's hot path (one-code get_full_tick); the model still documents them
    return OrjsonResponse(body)


class CodesBody(BaseModel):
    codes: list[str] = Field(description="Codes and/or market tokens SH, SZ, BJ (as get_full_tick takes).")


class XtDict(BaseModel):
    source: str
    data: dict[str, Any]


def check_full_tick(services: Services, requested: list[str]) -> None:
    """Refuse more than ``limits.max_tick_codes`` named codes; charge the codes the answer covers, market
    tokens counting as their whole markets (the key's quota and cost; security/budget.py)."""
    limit = services.settings.limits.max_tick_codes
    if len(requested) > limit:
        raise TooLarge(
            f"too many codes: {len(requested)} > {limit} per get_full_tick request (the market tokens SH, "
            "SZ, BJ stand for whole markets)",
            {"count": len(requested), "limit": limit},
        )
    markets = {c for c in requested if c in MARKET_TOKENS}
    covered = sum(services.market_size(m) for m in markets)
    charge(covered + sum(1 for c in requested if c not in MARKET_TOKENS))


def full_tick_from_cache(services: Services, requested: list[str]) -> dict[str, Any] | None:
    """``get_full_tick`` answered from the live quote cache; None when the cache is not live.

    The live cache is authoritative (see ``Services.snapshot_raw``): a code it lacks has no snapshot this
    session, and malformed entries are simply unknown, as in xtdata. Shared with the ASGI fast lane.
    """
    quotes = services.quotes
    if quotes is None or not services.cache_live():
        return None
    markets = [c for c in requested if c in MARKET_TOKENS]
    data: dict[str, Any] = quotes.raw(quotes.codes(markets)) if markets else {}
    rest = [c for c in _valid_codes([c for c in requested if c not in MARKET_TOKENS]) if c not in data]
    data.update(quotes.raw(rest))
    return data


@router.post("/full_tick", response_model=XtDict, summary="Latest tick dicts (get_full_tick)")
async def full_tick(services: ServicesDep, body: CodesBody) -> Response:
    check_full_tick(services, body.codes)
    quotes = services.quotes
    if (
        body.codes
        and all(c in MARKET_TOKENS for c in body.codes)
        and quotes is not None
        and services.cache_live()
    ):
        # whole markets: one encode per quote-cache burst, shared by every request of it (api.burst_answers)
        key = ("full_tick", tuple(dict.fromkeys(body.codes)))
        return await services.answers.get(
            key, quotes.version, lambda: _full_tick_answer(services, body.codes)
        )
    data = full_tick_from_cache(services, body.codes)
    if data is None:
        data = {}
        markets = [c for c in body.codes if c in MARKET_TOKENS]
        if markets:
            data.update(await services.source.market_snapshot(markets))
        rest = [c for c in _valid_codes([c for c in body.codes if c not in MARKET_TOKENS]) if c not in data]
        known = await _known(services, rest)
        step = services.settings.max_codes_per_request
        for i in range(0, len(known), step):
            data.update(await services.source.snapshot(known[i : i + step]))
    return await off_loop(len(data) * 10, lambda: _json({"source": services.source.name, "data": data}))


async def _full_tick_answer(services: Services, codes: list[str]) -> Response:
    data = full_tick_from_cache(services, codes) or {}
    return await off_loop(len(data) * 10, lambda: _json({"source": services.source.name, "data": data}))


@router.get(
    "/instrument_detail", response_model=XtDict, summary="Instrument detail dicts (get_instrument_detail)"
)
async def instrument_detail(
    services: ServicesDep,
    codes: Annotated[list[str], Query()],
    iscomplete: bool = False,
) -> Response:
    raw = split_list(codes)
    limit = services.settings.max_codes_per_request
    if len(raw) > limit:
        raise TooLarge(
            f"too many codes: {len(raw)} > {limit} per request", {"count": len(raw), "limit": limit}
        )
    valid = _valid_codes(raw)
    details = await services.source.instrument_details(valid, iscomplete) if valid else {}
    return _json({"source": services.source.name, "data": {code: details.get(code) for code in raw}})


MarketQuery = Annotated[str, Query(pattern=r"^[A-Z]{2,4}$", description="xtquant market, e.g. SH.")]


@router.get("/trading_dates", summary="Trading days as epoch ms (get_trading_dates)")
async def trading_dates(
    services: ServicesDep,
    market: MarketQuery = "SH",
    start_time: TimeQuery = "",
    end_time: TimeQuery = "",
    count: Annotated[int, Query(ge=-1, le=100_000)] = -1,
) -> dict[str, Any]:
    _check_times(start_time, end_time)
    days = await services.source.trading_dates(market, start_time, end_time, count)
    return {"source": services.source.name, "data": days}


@router.get("/trading_calendar", summary="Trading days as YYYYMMDD incl. coming ones (get_trading_calendar)")
async def trading_calendar(
    services: ServicesDep, market: MarketQuery = "SH", start_time: TimeQuery = "", end_time: TimeQuery = ""
) -> dict[str, Any]:
    _check_times(start_time)
    end_ms = xt_ms(end_time)
    if end_ms is not None:
        await services.calendar.check(dt.datetime.fromtimestamp(end_ms / 1000, CST).date())
    days = await services.source.trading_calendar(market, start_time, end_time)
    return {"source": services.source.name, "data": days}


@router.get("/holidays", summary="Exchange holidays as YYYYMMDD (get_holidays)")
async def holidays(services: ServicesDep) -> dict[str, Any]:
    return {"source": services.source.name, "data": await services.source.holidays()}


@router.get(
    "/divid_factors",
    response_class=Response,
    responses=tabular(XtDividResponse, "Ex-rights events in get_divid_factors columns."),
    summary="Ex-rights factors (get_divid_factors)",
)
async def divid_factors(
    services: ServicesDep,
    fmt: TabularFormatDep,
    code: Annotated[str, Query()],
    start_time: TimeQuery = "",
    end_time: TimeQuery = "",
) -> Response:
    _check_times(start_time, end_time)
    valid = _valid_codes([code])
    known = await _known(services, valid)
    frame = await services.source.divid_factors(known[0], start_time, end_time) if known else None
    if frame is None or len(frame) == 0:
        table = pa.table({"date": pa.array([], pa.string())})
    else:
        columns = {"date": pa.array([str(label) for label in frame.index], pa.string())}
        columns.update({name: pa.array(frame[name].to_numpy(dtype=np.float64)) for name in frame.columns})
        table = pa.table(columns)
    return tabular_response(
        table, fmt=fmt, source=services.source.name, meta={"code": code, "unknown": not known}
    )
