"""qmt-bridge compatible routes: the legacy endpoints that qmt-bridge 2.1.3's ``QMTClient`` calls.

Shapes follow what that client reads (``qmt_bridge/client/market.py``, ``sector.py``): ``get_history``
reads ``data`` (records with ``date``), ``get_batch_history`` ``data`` ({code: records}), ``get_full_tick``
``data``, ``get_sector_stocks`` ``stocks``, ``get_instrument_detail`` ``detail``, ``download`` the whole
dict. Field names and units are xtquant's (volume in lots, as qmt-bridge passed xtdata through); ``date`` is
xtquant's index label (``YYYYMMDD`` or ``YYYYMMDDHHMMSS``). The routes are thin: validation, existence
checks, downloads-before-reads and the quote cache are the same services the ``/api/v1`` routes use.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from qmtgate.api.deps import ServicesDep
from qmtgate.api.openapi import ERRORS
from qmtgate.api.params import KlinePeriod, parse_codes, parse_fields, parse_range
from qmtgate.api.routers.market import check_kline_rows
from qmtgate.api.services import Services
from qmtgate.errors import InvalidDate
from qmtgate.security.budget import charge
from qmtgate.security.deps import READ
from qmtgate.source.convert import DAILY_PERIODS, XT_KLINE_FIELDS

router = APIRouter(prefix="/api", tags=["compat: qmt-bridge"], responses=ERRORS)

_DEFAULT_FIELDS = "open,high,low,close,volume"
FieldsQuery = Annotated[
    str,
    Query(description=f"Comma-separated xtquant K-line fields: {', '.join(XT_KLINE_FIELDS)}."),
]
CountQuery = Annotated[int, Query(ge=1, le=100_000, description="Bars per code (the latest ones).")]
PeriodQuery = Annotated[KlinePeriod, Query(description="K-line period (xtquant spelling).")]


class HistoryAnswer(BaseModel):
    source: str
    stock: str = Field(description="Normalized code.")
    period: str
    count: int = Field(description="Bars asked for.")
    data: list[dict[str, Any]] = Field(description="Records: date (xtquant label) + the requested fields.")


class BatchHistoryAnswer(BaseModel):
    source: str
    stocks: list[str]
    period: str
    count: int
    data: dict[str, list[dict[str, Any]]] = Field(description="{code: records}.")


class FullTickAnswer(BaseModel):
    source: str
    data: dict[str, dict[str, Any]] = Field(
        description="{code: xtquant tick dict}; codes without data absent."
    )


class SectorStocksAnswer(BaseModel):
    source: str
    sector: str
    stocks: list[str]


class InstrumentDetailAnswer(BaseModel):
    source: str
    stock: str
    detail: dict[str, Any] = Field(description="xtquant get_instrument_detail dict, unchanged.")


class DownloadBody(BaseModel):
    stock: str = Field(examples=["600000.SH"])
    period: KlinePeriod = KlinePeriod["1d"]  # type: ignore[valid-type]
    start: str = Field("", description="YYYYMMDD; '' = the whole history (daily) / required for minute data.")
    end: str = Field("", description="YYYYMMDD; '' = up to the last complete session.")


class DownloadAnswer(BaseModel):
    source: str
    status: str = Field(description="ok (verified), running (still going after 30 s) or failed.")
    stock: str
    period: str
    job_id: str
    error: dict[str, Any] | None = None


async def _records(
    services: Services, codes: list[str], period: str, count: int, fields: str
) -> dict[str, list[dict[str, Any]]]:
    selected = parse_fields(fields, XT_KLINE_FIELDS)
    await services.require_exists(codes)
    await check_kline_rows(services, len(codes), period, None, None, count)
    bars = await services.history.klines(codes, period, count=count)
    daily = period in DAILY_PERIODS
    return {code: bars[code].records(selected, daily) for code in codes}


@router.get("/history", response_model=HistoryAnswer, summary="K-lines of one code (qmt-bridge)")
async def history(
    services: ServicesDep,
    stock: Annotated[
        str, Query(description="Security code.", openapi_examples={"pufa": {"value": "600000.SH"}})
    ],
    period: PeriodQuery = KlinePeriod["1d"],  # type: ignore[valid-type]
    count: CountQuery = 100,
    fields: FieldsQuery = _DEFAULT_FIELDS,
) -> dict[str, Any]:
    (code,) = parse_codes([stock], limit=1, param="stock")
    data = await _records(services, [code], period.value, count, fields)
    return {
        "source": services.source.name,
        "stock": code,
        "period": period.value,
        "count": count,
        "data": data[code],
    }


@router.get("/batch_history", response_model=BatchHistoryAnswer, summary="K-lines of many codes (qmt-bridge)")
async def batch_history(
    services: ServicesDep,
    stocks: Annotated[
        str,
        Query(
            description="Comma-separated codes.", openapi_examples={"two": {"value": "600000.SH,000001.SZ"}}
        ),
    ],
    period: PeriodQuery = KlinePeriod["1d"],  # type: ignore[valid-type]
    count: CountQuery = 100,
    fields: FieldsQuery = _DEFAULT_FIELDS,
) -> dict[str, Any]:
    codes = parse_codes(stocks, limit=services.settings.limits.max_history_codes, param="stocks")
    data = await _records(services, codes, period.value, count, fields)
    return {
        "source": services.source.name,
        "stocks": codes,
        "period": period.value,
        "count": count,
        "data": data,
    }


@router.get("/full_tick", response_model=FullTickAnswer, summary="Latest ticks (qmt-bridge)")
async def full_tick(
    services: ServicesDep,
    stocks: Annotated[
        str,
        Query(
            description="Comma-separated codes.", openapi_examples={"two": {"value": "600000.SH,000001.SZ"}}
        ),
    ],
) -> dict[str, Any]:
    codes = parse_codes(stocks, limit=services.settings.max_codes_per_request, param="stocks")
    charge(len(codes))
    await services.require_exists(codes)
    return {"source": services.source.name, "data": dict(await services.snapshot_raw(codes))}


@router.get("/sector_stocks", response_model=SectorStocksAnswer, summary="Codes in a sector (qmt-bridge)")
async def sector_stocks(
    services: ServicesDep,
    sector: Annotated[
        str, Query(min_length=1, description="Sector name.", openapi_examples={"a": {"value": "沪深A股"}})
    ],
) -> dict[str, Any]:
    return {"source": services.source.name, "sector": sector, "stocks": await services.sector_members(sector)}


@router.get(
    "/instrument_detail", response_model=InstrumentDetailAnswer, summary="Instrument detail (qmt-bridge)"
)
async def instrument_detail(
    services: ServicesDep,
    stock: Annotated[
        str, Query(description="Security code.", openapi_examples={"pufa": {"value": "600000.SH"}})
    ],
) -> dict[str, Any]:
    (code,) = parse_codes([stock], limit=1, param="stock")
    details = await services.require_known([code])
    return {"source": services.source.name, "stock": code, "detail": details[code]}


@router.post(
    "/download",
    response_model=DownloadAnswer,
    summary="Download history of one code (qmt-bridge)",
    dependencies=[READ],  # starts a download job: read scope, as POST /api/v1/downloads
)
async def download(services: ServicesDep, body: DownloadBody) -> dict[str, Any]:
    (code,) = parse_codes([body.stock], limit=1, param="stock")
    lo, hi = parse_range(body.start or None, body.end or None)
    period = body.period.value
    if lo is None and period not in DAILY_PERIODS:
        raise InvalidDate(f"start is required for {period} downloads", {"period": period})
    await services.require_exists([code])
    job = services.jobs.submit([code], period, lo.day if lo else None, hi.day if hi else None)
    job = await services.jobs.wait(job.id, timeout=30.0)
    status = {"succeeded": "ok", "failed": "failed", "cancelled": "failed"}.get(job.state.value, "running")
    return {
        "source": services.source.name,
        "status": status,
        "stock": code,
        "period": period,
        "job_id": job.id,
        "error": job.error,
    }
