"""Argus-compatible routes (Project Argus QMT data agent): thin adapters over the same services.

Argus passes xtquant data through, so field names and units are xtquant's (``volume`` in lots, ``time`` as
xtquant's index label ``YYYYMMDD`` / ``YYYYMMDDHHMMSS``). Successful answers carry Argus's
``"success": true`` beside ``data``; errors use qmtgate's one error envelope and HTTP status codes, with
Argus's ``"success": false`` beside it (:class:`ArgusErrorFlag`).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qmtgate.api.deps import ServicesDep
from qmtgate.api.openapi import ERRORS
from qmtgate.api.params import DividendType, KlinePeriod, Market, parse_codes, parse_fields, parse_range
from qmtgate.api.routers.market import check_kline_rows
from qmtgate.errors import NotFound
from qmtgate.security.budget import charge
from qmtgate.source.convert import DAILY_PERIODS, XT_KLINE_FIELDS

router = APIRouter(tags=["compat: argus"], responses=ERRORS)

SymbolQuery = Annotated[
    str, Query(description="Security code.", openapi_examples={"pufa": {"value": "600519.SH"}})
]
_KLINE_KEYS = ("open", "high", "low", "close", "volume", "amount", "preClose", "suspendFlag")


class ArgusList(BaseModel):
    success: bool = True
    source: str
    market: str | None = None
    sector: str | None = None
    data: list[str]


class ArgusDict(BaseModel):
    success: bool = True
    source: str
    symbol: str | None = None
    data: dict[str, Any]


class ArgusKlines(BaseModel):
    success: bool = True
    source: str
    symbol: str
    frequency: str
    count: int
    data: list[dict[str, Any]] = Field(
        description="Records: time (xtquant label), open, high, low, close, volume (lots), amount (yuan), "
        "preClose, suspendFlag."
    )


@router.get("/trading_dates", response_model=ArgusList, summary="Trading days (Argus)")
@router.get("/api/get_trading_dates", response_model=ArgusList, summary="Trading days (Argus, older path)")
async def get_trading_dates(
    services: ServicesDep,
    market: Annotated[Market, Query(description="SH, SZ or BJ.")] = Market.SH,
    start_date: Annotated[str | None, Query(description="YYYYMMDD.")] = None,
    end_date: Annotated[str | None, Query(description="YYYYMMDD. Default: today.")] = None,
) -> dict[str, Any]:
    lo, hi = parse_range(start_date, end_date, start_param="start_date", end_param="end_date")
    session = await services.calendar.session()
    days = await services.calendar.between(lo.day if lo else None, hi.day if hi else session.today)
    return {
        "success": True,
        "source": services.source.name,
        "market": market.value,
        "data": [d.strftime("%Y%m%d") for d in days],
    }


@router.get("/stock_list", response_model=ArgusList, summary="Codes in a sector (Argus)")
async def stock_list(
    services: ServicesDep,
    sector: Annotated[
        str, Query(min_length=1, description="Sector name.", openapi_examples={"a": {"value": "沪深A股"}})
    ],
) -> dict[str, Any]:
    members = await services.sector_members(sector)
    return {"success": True, "source": services.source.name, "sector": sector, "data": members}


@router.get("/instrument_detail", response_model=ArgusDict, summary="Instrument detail (Argus)")
async def instrument_detail(services: ServicesDep, symbol: SymbolQuery) -> dict[str, Any]:
    (code,) = parse_codes([symbol], limit=1, param="symbol")
    details = await services.require_known([code])
    return {"success": True, "source": services.source.name, "symbol": code, "data": details[code]}


@router.get("/hist_kline", response_model=ArgusKlines, summary="K-lines of one code in a date range (Argus)")
async def hist_kline(
    services: ServicesDep,
    symbol: SymbolQuery,
    start_date: Annotated[str, Query(description="YYYYMMDD (or any date form /api/v1 accepts).")],
    end_date: Annotated[str, Query(description="YYYYMMDD, inclusive.")],
    frequency: Annotated[KlinePeriod, Query(description="K-line period: 1d, 1m, 5m, ...")] = KlinePeriod[
        "1d"
    ],  # type: ignore[valid-type]
    dividend_type: Annotated[DividendType, Query(description="Price adjustment.")] = DividendType["none"],  # type: ignore[valid-type]
) -> dict[str, Any]:
    (code,) = parse_codes([symbol], limit=1, param="symbol")
    lo, hi = parse_range(start_date, end_date, start_param="start_date", end_param="end_date")
    period = frequency.value
    await services.require_exists([code])
    await check_kline_rows(services, 1, period, lo, hi, None)
    bars = await services.history.klines(
        [code], period, lo.ms if lo else None, hi.ms if hi else None, None, dividend_type.value, True
    )
    records = bars[code].records(list(_KLINE_KEYS), period in DAILY_PERIODS, label="time")
    return {
        "success": True,
        "source": services.source.name,
        "symbol": code,
        "frequency": period,
        "count": len(records),
        "data": records,
    }


@router.get("/latest_market", response_model=ArgusDict, summary="Latest ticks of codes (Argus)")
async def latest_market(
    services: ServicesDep,
    symbols: Annotated[
        str,
        Query(
            description="Comma-separated codes.", openapi_examples={"two": {"value": "600519.SH,000001.SZ"}}
        ),
    ],
) -> dict[str, Any]:
    codes = parse_codes(symbols, limit=services.settings.max_codes_per_request, param="symbols")
    charge(len(codes))
    await services.require_exists(codes)
    return {"success": True, "source": services.source.name, "data": dict(await services.snapshot_raw(codes))}


@router.get(
    "/full_market",
    response_model=ArgusDict,
    summary="Latest daily bar of one code, selected fields (Argus)",
    description="The most recent 1d bar (today's forming bar during a session). Fields are xtquant K-line "
    "fields; default open,high,low,close,volume. No bar at all (never traded) is a 404.",
)
async def full_market(
    services: ServicesDep,
    symbol: SymbolQuery,
    fields: Annotated[
        str | None, Query(description=f"Comma-separated, from: {', '.join(XT_KLINE_FIELDS)}.")
    ] = None,
) -> dict[str, Any]:
    (code,) = parse_codes([symbol], limit=1, param="symbol")
    selected = parse_fields(fields or "open,high,low,close,volume", XT_KLINE_FIELDS)
    await services.require_exists([code])
    bars = (await services.history.klines([code], "1d", count=1))[code]
    if not len(bars):
        raise NotFound(f"no daily bar for {code}", {"code": code})
    (record,) = bars.records(selected, True)
    record.pop("date", None)
    return {"success": True, "source": services.source.name, "symbol": code, "data": record}


#: Every path this router serves (the error flag applies to these only).
ARGUS_PATHS: frozenset[str] = frozenset(getattr(route, "path", "") for route in router.routes)


class ArgusErrorFlag:
    """Put Argus's ``"success": false`` beside the error envelope of every error answered on an Argus path.

    Argus clients branch on ``success``; the envelope stays as on every other route. Pure ASGI, outside the
    security middleware, so refusals (401/403/429), validation errors (422) and source errors all get it;
    only error bodies (status >= 400, small JSON) are buffered.
    """

    def __init__(self, app: ASGIApp, paths: frozenset[str] = ARGUS_PATHS) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def flagged(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held = message
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = _with_success_false(b"".join(chunks))
            headers = MutableHeaders(raw=list(held["headers"]))
            headers["content-length"] = str(len(body))
            await send({**held, "headers": headers.raw})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, flagged)


def _with_success_false(body: bytes) -> bytes:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(value, dict):
        return body
    return orjson.dumps({"success": False, **value})
