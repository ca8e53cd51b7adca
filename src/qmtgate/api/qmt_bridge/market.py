"""qmt-bridge 2.1.3 ``/api/market/*``: K-lines, snapshots and ex-rights factors in its server's JSON shapes.

qmt-bridge's server turns xtdata's pandas answers into JSON in three ways, reproduced here:

- ``get_market_data_ex`` / ``get_local_data`` / ``get_market_data3`` (``{code: DataFrame}``) ->
  ``df.reset_index().to_dict('records')``: ``{code: [{"index": label, "time": ms, "open": ..., ...}]}``;
- ``get_market_data`` (``{field: DataFrame(code x label)}``) -> ``{code: [{"date": label, field: ...}]}``;
- a DataFrame handed to FastAPI as is (``get_divid_factors``, ``get_full_kline``) -> FastAPI's encoder makes
  it column-major: ``{column: {row label: value}}``.

Values are xtquant's (volume in lots, ``time`` epoch ms, labels ``YYYYMMDD`` / ``YYYYMMDDHHMMSS``); NaN is
null. K-lines come through the same history service as every route (downloads before reads, the cache).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from qmtgate.api.deps import ServicesDep
from qmtgate.api.openapi import ERRORS
from qmtgate.api.params import DividendType, KlinePeriod, parse_codes, parse_fields
from qmtgate.api.routers.xtcompat import TimeQuery, _check_times, _estimate_rows, xt_ms
from qmtgate.api.services import Services
from qmtgate.security.budget import charge
from qmtgate.source.convert import DAILY_PERIODS, XT_KLINE_FIELDS, Bars

router = APIRouter(prefix="/api/market", tags=["compat: qmt-bridge"], responses=ERRORS)

#: qmt-bridge's ``/api/market/indices`` list (its server's MAJOR_INDICES, in its order).
MAJOR_INDICES = ("000001.SH", "399001.SZ", "399006.SZ", "000300.SH", "000016.SH", "000905.SH", "000852.SH")

StocksQuery = Annotated[
    str,
    Query(description="Comma-separated codes.", openapi_examples={"two": {"value": "600000.SH,000001.SZ"}}),
]
StockQuery = Annotated[
    str, Query(description="Security code.", openapi_examples={"pufa": {"value": "600000.SH"}})
]
PeriodQuery = Annotated[KlinePeriod, Query(description="K-line period (xtquant spelling).")]
CountQuery = Annotated[int, Query(ge=-1, le=1_000_000, description="Bars per code, the latest; -1 = all.")]
DividendQuery = Annotated[DividendType, Query(description="none, front, back, front_ratio, back_ratio.")]


async def _bars(
    services: Services,
    stocks: str,
    period: str,
    start_time: str,
    end_time: str,
    count: int,
    dividend_type: str,
    fill_data: bool,
) -> dict[str, Bars]:
    """Bars per code (xtquant units), after the checks every route makes (codes exist, size bound)."""
    codes = parse_codes(stocks, limit=services.settings.limits.max_history_codes, param="stocks")
    await services.require_exists(codes)
    start_ms, end_ms = xt_ms(start_time), xt_ms(end_time)
    _estimate_rows(services, len(codes), period, start_ms, count, False)  # refuses or charges (JSON rows)
    if count == 0:
        return {code: Bars.empty() for code in codes}
    return await services.history.klines(
        codes, period, start_ms, end_ms, None if count < 0 else count, dividend_type, fill_data
    )


def _frame_records(bars: dict[str, Bars], period: str, fields: list[str]) -> dict[str, list[dict[str, Any]]]:
    """``{code: DataFrame}`` through ``reset_index().to_dict('records')``: the label is column ``index``."""
    daily = period in DAILY_PERIODS
    return {code: b.records(fields, daily, label="index") for code, b in bars.items()}


@router.get("/history_ex", summary="K-lines, all xtquant fields (qmt-bridge get_history_ex)")
async def history_ex(
    services: ServicesDep,
    stocks: StocksQuery,
    period: PeriodQuery = KlinePeriod["1d"],  # type: ignore[valid-type]
    start_time: TimeQuery = "",
    end_time: TimeQuery = "",
    count: CountQuery = -1,
    dividend_type: DividendQuery = DividendType["none"],  # type: ignore[valid-type]
    fill_data: bool = True,
) -> dict[str, Any]:
    bars = await _bars(
        services, stocks, period.value, start_time, end_time, count, dividend_type.value, fill_data
    )
    return {"data": _frame_records(bars, period.value, list(XT_KLINE_FIELDS))}


@router.get("/local_data", summary="K-lines from the local cache (qmt-bridge get_local_data)")
async def local_data(
    services: ServicesDep,
    stocks: StocksQuery,
    period: PeriodQuery = KlinePeriod["1d"],  # type: ignore[valid-type]
    start_time: TimeQuery = "",
    end_time: TimeQuery = "",
    count: CountQuery = -1,
    dividend_type: DividendQuery = DividendType["none"],  # type: ignore[valid-type]
    fill_data: bool = True,
) -> dict[str, Any]:
    # the gateway downloads what is missing before it reads, so "local" data is simply the data
    return await history_ex(services, stocks, period, start_time, end_time, count, dividend_type, fill_data)


@router.get("/market_data3", summary="K-lines, chosen fields (qmt-bridge get_market_data3)")
async def market_data3(
    services: ServicesDep,
    stocks: StocksQuery,
    fields: Annotated[str, Query(description="Comma-separated xtquant fields; '' = all.")] = "",
    period: PeriodQuery = KlinePeriod["1d"],  # type: ignore[valid-type]
    start_time: TimeQuery = "",
    end_time: TimeQuery = "",
    count: CountQuery = -1,
    dividend_type: DividendQuery = DividendType["none"],  # type: ignore[valid-type]
    fill_data: bool = True,
) -> dict[str, Any]:
    selected = parse_fields(fields, XT_KLINE_FIELDS) if fields.strip() else list(XT_KLINE_FIELDS)
    bars = await _bars(
        services, stocks, period.value, start_time, end_time, count, dividend_type.value, fill_data
    )
    return {"data": _frame_records(bars, period.value, selected)}


@router.get("/market_data", summary="K-lines, chosen fields, records by date (qmt-bridge get_market_data)")
async def market_data(
    services: ServicesDep,
    stocks: StocksQuery,
    fields: Annotated[
        str, Query(description="Comma-separated xtquant fields.")
    ] = "open,high,low,close,volume",
    period: PeriodQuery = KlinePeriod["1d"],  # type: ignore[valid-type]
    start_time: TimeQuery = "",
    end_time: TimeQuery = "",
    count: CountQuery = -1,
    dividend_type: DividendQuery = DividendType["none"],  # type: ignore[valid-type]
    fill_data: bool = True,
) -> dict[str, Any]:
    selected = parse_fields(fields, XT_KLINE_FIELDS)
    bars = await _bars(
        services, stocks, period.value, start_time, end_time, count, dividend_type.value, fill_data
    )
    daily = period.value in DAILY_PERIODS
    return {"data": {code: b.records(selected, daily, label="date") for code, b in bars.items()}}


@router.get("/full_kline", summary="Today's K-lines, field-major (qmt-bridge get_full_kline)")
async def full_kline(
    services: ServicesDep,
    stock: StockQuery,
    period: PeriodQuery = KlinePeriod["1d"],  # type: ignore[valid-type]
    start_time: TimeQuery = "",
    end_time: TimeQuery = "",
) -> dict[str, Any]:
    """``get_full_kline`` answers ``{field: DataFrame(code x label)}``; FastAPI's encoder makes that
    ``{field: {label: {code: value}}}``. Without ``start_time``: the latest session, as xtdata does."""
    (code,) = parse_codes([stock], limit=1, param="stock")
    if not start_time:
        session = await services.calendar.session()
        day = session.forming or session.last_complete
        start_time = day.strftime("%Y%m%d") if day is not None else ""
    bars = (await _bars(services, code, period.value, start_time, end_time, -1, "none", True))[code]
    rows = bars.records(list(XT_KLINE_FIELDS), period.value in DAILY_PERIODS, label="label")
    data = {field: {row["label"]: {code: row[field]} for row in rows} for field in XT_KLINE_FIELDS}
    return {"stock": code, "data": data}


@router.get("/snapshot", summary="Latest ticks (qmt-bridge get_market_snapshot)")
async def snapshot(services: ServicesDep, stocks: StocksQuery) -> dict[str, Any]:
    codes = parse_codes(stocks, limit=services.settings.max_codes_per_request, param="stocks")
    charge(len(codes))
    await services.require_exists(codes)
    return {"data": dict(await services.snapshot_raw(codes))}


@router.get("/indices", summary="Latest ticks of the major indices (qmt-bridge get_major_indices)")
async def indices(services: ServicesDep) -> dict[str, Any]:
    return {"indices": list(MAJOR_INDICES), "data": dict(await services.snapshot_raw(list(MAJOR_INDICES)))}


@router.get("/divid_factors", summary="Ex-rights factors, column-major (qmt-bridge get_divid_factors)")
async def divid_factors(
    services: ServicesDep, stock: StockQuery, start_time: TimeQuery = "", end_time: TimeQuery = ""
) -> dict[str, Any]:
    (code,) = parse_codes([stock], limit=1, param="stock")
    await services.require_exists([code])
    _check_times(start_time, end_time)  # 422 for impossible dates before they reach the source
    frame = await services.source.divid_factors(code, start_time, end_time)
    data: dict[str, dict[str, Any]] = {}
    if frame is not None:
        for column in frame.columns:
            data[str(column)] = {
                str(label): (None if value != value else float(value))  # NaN -> null
                for label, value in frame[column].items()
            }
    return {"stock": code, "data": data}
