"""The A-share trading calendar: trading dates, holidays, and one day's previous/next trading day."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from qmtgate.api.deps import ServicesDep, TabularFormatDep
from qmtgate.api.encoding import tabular_response
from qmtgate.api.openapi import ERRORS, tabular
from qmtgate.api.params import Market, parse_day, parse_range
from qmtgate.api.schemas import DatesResponse, TradingDayResponse
from qmtgate.source.convert import dates_table

router = APIRouter(prefix="/calendar", tags=["calendar"], responses=ERRORS)

MarketQuery = Annotated[Market, Query(description="SH, SZ or BJ (the three exchanges share one calendar).")]


@router.get(
    "/trading-dates",
    response_class=Response,
    responses=tabular(DatesResponse, "Trading days, ascending."),
    summary="Trading days in a range",
    description="Past sessions and, when the source publishes them, the coming trading days up to the end "
    "of the year the holiday table covers. Default range: everything up to today.",
)
async def trading_dates(
    services: ServicesDep,
    fmt: TabularFormatDep,
    market: MarketQuery = Market.SH,
    start: Annotated[str | None, Query(description="First day (YYYYMMDD or ISO).")] = None,
    end: Annotated[str | None, Query(description="Last day (YYYYMMDD or ISO). Default: today.")] = None,
    count: Annotated[
        int | None, Query(ge=1, le=100_000, description="Only the last N days of the range.")
    ] = None,
) -> Response:
    lo, hi = parse_range(start, end)
    session = await services.calendar.session()
    days = await services.calendar.between(lo.day if lo else None, hi.day if hi else session.today)
    if count is not None:
        days = days[-count:]
    return tabular_response(
        dates_table(days), fmt=fmt, source=services.source.name, meta={"market": market.value}
    )


@router.get(
    "/holidays",
    response_class=Response,
    responses=tabular(DatesResponse, "Exchange holidays (weekdays without a session), ascending."),
    summary="Exchange holidays",
)
async def holidays(
    services: ServicesDep,
    fmt: TabularFormatDep,
    start: Annotated[str | None, Query(description="First day (YYYYMMDD or ISO).")] = None,
    end: Annotated[str | None, Query(description="Last day (YYYYMMDD or ISO).")] = None,
) -> Response:
    lo, hi = parse_range(start, end)
    days = sorted(
        {dt.datetime.strptime(str(text), "%Y%m%d").date() for text in await services.source.holidays()}
    )
    days = [d for d in days if (lo is None or d >= lo.day) and (hi is None or d <= hi.day)]
    return tabular_response(dates_table(days), fmt=fmt, source=services.source.name, meta={"market": None})


@router.get(
    "/days/{date}",
    response_model=TradingDayResponse,
    summary="Is a day a trading day; previous and next trading day",
    description="`n` picks the n-th previous/next trading day (default 1). Dates outside the published "
    "calendar are a 422.",
)
async def trading_day(
    services: ServicesDep,
    date: Annotated[
        str, Path(description="YYYYMMDD or YYYY-MM-DD.", openapi_examples={"day": {"value": "20250102"}})
    ],
    market: MarketQuery = Market.SH,
    n: Annotated[int, Query(ge=1, le=10_000, description="Offset for previous/next.")] = 1,
) -> TradingDayResponse:
    day = parse_day(date)
    await services.calendar.check(day)
    previous = await services.calendar.shift(day, -n)
    following = await services.calendar.shift(day, n)
    return TradingDayResponse(
        source=services.source.name,
        market=market.value,
        date=day.isoformat(),
        is_trading_day=await services.calendar.is_trading_day(day),
        n=n,
        previous_trading_day=previous.isoformat() if previous else None,
        next_trading_day=following.isoformat() if following else None,
    )
