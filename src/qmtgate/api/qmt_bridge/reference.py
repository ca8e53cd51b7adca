"""qmt-bridge 2.1.3 reference routes: ``/api/sector``, ``/api/calendar``, ``/api/instrument``, ``/api/meta``,
``/api/utility``, with its server's parameters and JSON keys.

Its calendar answers keep xtdata's types: ``trading_dates`` are epoch ms (Asia/Shanghai midnight), and so are
``prev_trading_date`` / ``next_trading_date`` (its server picks them from ``get_trading_dates``), while
``trading_calendar`` and ``holidays`` are ``YYYYMMDD`` text. Unlike its server, prev/next are strictly
before/after ``date`` (qmt-bridge skipped a day when ``date`` was not a trading day).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from typing import Annotated, Any

from fastapi import APIRouter, Query

from qmtgate.api.deps import ServicesDep
from qmtgate.api.openapi import ERRORS
from qmtgate.api.params import parse_codes
from qmtgate.api.routers.xtcompat import MarketQuery, TimeQuery, _check_times
from qmtgate.api.services import Services
from qmtgate.config import package_version
from qmtgate.errors import InvalidDate, NotFound, Unsupported
from qmtgate.security.budget import charge
from qmtgate.source.convert import CST, day_start_ms

router = APIRouter(prefix="/api", tags=["compat: qmt-bridge"], responses=ERRORS)

StockQuery = Annotated[
    str, Query(description="Security code.", openapi_examples={"pufa": {"value": "600000.SH"}})
]
StocksQuery = Annotated[
    str,
    Query(description="Comma-separated codes.", openapi_examples={"two": {"value": "600000.SH,000001.SZ"}}),
]
SectorQuery = Annotated[
    str, Query(min_length=1, description="Sector name.", openapi_examples={"a": {"value": "沪深A股"}})
]
DateQuery = Annotated[str, Query(pattern=r"^(\d{8})?$", description="YYYYMMDD; '' = today.")]

#: xtdata.get_markets() (a static dict in the SDK).
XT_MARKETS = {
    "SH": "上交所", "SZ": "深交所", "BJ": "北交所", "HK": "港交所", "HGT": "沪港通", "SGT": "深港通",
    "IF": "中金所", "SF": "上期所", "DF": "大商所", "ZF": "郑商所", "GF": "广期所", "INE": "能源交易所",
    "SHO": "上证期权", "SZO": "深证期权", "BKZS": "板块指数",
}  # fmt: skip
#: xtdata.get_period_list() names and descriptions.
XT_PERIODS = (
    ("tick", "分笔数据"), ("1m", "1分钟线"), ("5m", "5分钟线"), ("15m", "15分钟线"), ("30m", "30分钟线"),
    ("1h", "1小时线"), ("1d", "日线"), ("1w", "周线"), ("1mon", "月线"), ("1q", "季线"), ("1hy", "半年线"),
    ("1y", "年线"),
)  # fmt: skip


async def _one(services: Services, stock: str) -> tuple[str, dict[str, Any]]:
    (code,) = parse_codes([stock], limit=1, param="stock")
    return code, (await services.require_known([code]))[code]


def _day(value: str) -> dt.date:
    try:
        return dt.datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise InvalidDate(f"invalid date {value!r}; expected YYYYMMDD", {"value": value}) from None


async def _today(services: Services) -> dt.date:
    return dt.datetime.fromtimestamp(services.source.now_ms() / 1000, CST).date()


# -- sectors -------------------------------------------------------------------------------------------


@router.get("/sector/list", summary="Sector names (qmt-bridge get_sector_list)")
async def sector_list(services: ServicesDep) -> dict[str, Any]:
    return {"sectors": await services.source.sector_list()}


@router.get("/sector/stocks", summary="Codes in a sector, with a count (qmt-bridge get_sector_stocks_v2)")
async def sector_stocks_v2(
    services: ServicesDep,
    sector: SectorQuery,
    real_timetag: Annotated[int, Query(description="Epoch ms of a past day; -1 = now.")] = -1,
) -> dict[str, Any]:
    if real_timetag != -1:
        # the sources answer today's membership only: saying so beats a silently wrong list
        raise Unsupported("sector membership on a past day (real_timetag) is not served", {"sector": sector})
    stocks = await services.sector_members(sector)
    charge(len(stocks))  # a sector counts as its members
    return {"sector": sector, "count": len(stocks), "stocks": stocks}


# -- calendar ------------------------------------------------------------------------------------------


@router.get("/calendar/trading_dates", summary="Trading days as epoch ms (qmt-bridge get_trading_dates)")
async def trading_dates(
    services: ServicesDep,
    market: MarketQuery,
    start_time: TimeQuery = "",
    end_time: TimeQuery = "",
    count: Annotated[int, Query(ge=-1, le=100_000)] = -1,
) -> dict[str, Any]:
    _check_times(start_time, end_time)
    return {
        "market": market,
        "dates": await services.source.trading_dates(market, start_time, end_time, count),
    }


@router.get("/calendar/holidays", summary="Exchange holidays, YYYYMMDD (qmt-bridge get_holidays)")
async def holidays(services: ServicesDep) -> dict[str, Any]:
    return {"holidays": await services.source.holidays()}


@router.get(
    "/calendar/trading_calendar",
    summary="Trading days incl. coming ones, YYYYMMDD (qmt-bridge get_trading_calendar)",
)
async def trading_calendar(
    services: ServicesDep, market: MarketQuery, start_time: TimeQuery = "", end_time: TimeQuery = ""
) -> dict[str, Any]:
    _check_times(start_time, end_time)
    if end_time:
        await services.calendar.check(_day(end_time[:8]))
    return {
        "market": market,
        "calendar": await services.source.trading_calendar(market, start_time, end_time),
    }


@router.get("/calendar/is_trading_date", summary="Is a day a trading day? (qmt-bridge is_trading_date)")
async def is_trading_date(
    services: ServicesDep, market: MarketQuery, date: Annotated[str, Query(pattern=r"^\d{8}$")]
) -> dict[str, Any]:
    day = _day(date)
    await services.calendar.check(day)
    return {"market": market, "date": date, "is_trading": await services.calendar.is_trading_day(day)}


@router.get("/calendar/prev_trading_date", summary="Trading day before a date, epoch ms (qmt-bridge)")
async def prev_trading_date(
    services: ServicesDep, market: MarketQuery, date: DateQuery = ""
) -> dict[str, Any]:
    day = _day(date) if date else await _today(services)
    prev = await services.calendar.shift(day, -1)
    return {"market": market, "prev_trading_date": day_start_ms(prev) if prev else None}


@router.get("/calendar/next_trading_date", summary="Trading day after a date, epoch ms (qmt-bridge)")
async def next_trading_date(
    services: ServicesDep, market: MarketQuery, date: DateQuery = ""
) -> dict[str, Any]:
    day = _day(date) if date else await _today(services)
    following = await services.calendar.shift(day, 1)
    return {"market": market, "next_trading_date": day_start_ms(following) if following else None}


@router.get("/calendar/trading_dates_count", summary="Number of trading days in a range (qmt-bridge)")
async def trading_dates_count(
    services: ServicesDep, market: MarketQuery, start_time: TimeQuery = "", end_time: TimeQuery = ""
) -> dict[str, Any]:
    _check_times(start_time, end_time)
    return {"market": market, "count": len(await services.source.trading_dates(market, start_time, end_time))}


# -- instruments ---------------------------------------------------------------------------------------


@router.get("/instrument/batch_detail", summary="Instrument details (qmt-bridge get_batch_instrument_detail)")
async def batch_detail(
    services: ServicesDep, stocks: StocksQuery, iscomplete: bool = False
) -> dict[str, Any]:
    codes = parse_codes(stocks, limit=services.settings.max_codes_per_request, param="stocks")
    charge(len(codes))
    await services.require_known(codes)
    details = await services.source.instrument_details(codes, iscomplete)
    return {"data": {code: details[code] for code in codes}}


@router.get("/instrument/type", summary="Instrument type flags (qmt-bridge get_instrument_type)")
async def instrument_type(services: ServicesDep, stock: StockQuery) -> dict[str, Any]:
    code, _ = await _one(services, stock)
    return {"stock": code, "type": await services.source.instrument_type(code)}


# -- meta ----------------------------------------------------------------------------------------------


@router.get("/meta/markets", summary="Market codes and names (qmt-bridge get_markets)")
async def markets() -> dict[str, Any]:
    return {"markets": dict(XT_MARKETS)}


@router.get("/meta/periods", summary="Periods (qmt-bridge get_periods)")
async def periods() -> dict[str, Any]:
    return {"periods": [{"name": name, "desc": desc} for name, desc in XT_PERIODS]}


@router.get("/meta/stock_list", summary="Codes of a category (qmt-bridge get_stock_list_by_category)")
async def stock_list(services: ServicesDep, category: SectorQuery) -> dict[str, Any]:
    stocks = await services.sector_members(category)
    return {"category": category, "count": len(stocks), "stocks": stocks}


@router.get("/meta/last_trade_date", summary="Latest trading day, epoch ms (qmt-bridge get_last_trade_date)")
async def last_trade_date(services: ServicesDep, market: MarketQuery) -> dict[str, Any]:
    days = await services.source.trading_dates(market, count=1)
    if not days:
        raise NotFound(f"no trading days for market {market!r}", {"market": market})
    return {"market": market, "last_trade_date": days[-1]}


@router.get("/meta/version", summary="Server version (qmt-bridge get_server_version): qmtgate's")
async def version() -> dict[str, Any]:
    return {"version": package_version()}


@router.get("/meta/xtdata_version", summary="xtquant version of the source (qmt-bridge get_xtdata_version)")
async def xtdata_version(services: ServicesDep) -> dict[str, Any]:
    name = services.source.name
    version = name  # "simulated" / "replay": no xtquant behind them
    if name == "xtquant":
        try:
            version = importlib.metadata.version("xtquant")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
    return {"xtdata_version": version}


@router.get("/meta/connection_status", summary="Is the source connected? (qmt-bridge get_connection_status)")
async def connection_status(services: ServicesDep) -> dict[str, Any]:
    return {"connected": services.source.is_connected()}


@router.get("/meta/health", summary="Health (qmt-bridge health_check)")
async def health() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/meta/quote_server_status", summary="Source status (qmt-bridge get_quote_server_status)")
async def quote_server_status(services: ServicesDep) -> dict[str, Any]:
    status = services.source.status()
    return {
        "data": {
            "source": services.source.name,
            "state": status.state.value,
            "connected": status.connected,
            "message": status.message,
            "note": status.note,
        }
    }


# -- utility -------------------------------------------------------------------------------------------


@router.get("/utility/stock_name", summary="Name of a code (qmt-bridge get_stock_name)")
async def stock_name(services: ServicesDep, stock: StockQuery) -> dict[str, Any]:
    code, detail = await _one(services, stock)
    return {"stock": code, "name": detail.get("InstrumentName", "")}


@router.get("/utility/batch_stock_name", summary="Names of codes (qmt-bridge get_batch_stock_name)")
async def batch_stock_name(services: ServicesDep, stocks: StocksQuery) -> dict[str, Any]:
    codes = parse_codes(stocks, limit=services.settings.max_codes_per_request, param="stocks")
    details = await services.require_known(codes)
    return {"data": {code: details[code].get("InstrumentName", "") for code in codes}}


@router.get("/utility/code_to_market", summary="Market and type of a code (qmt-bridge code_to_market)")
async def code_to_market(services: ServicesDep, stock: StockQuery) -> dict[str, Any]:
    code, _ = await _one(services, stock)
    return {
        "stock": code,
        "market": code.rpartition(".")[2],
        "type": await services.source.instrument_type(code),
    }


@router.get("/utility/search", summary="Codes containing a keyword (qmt-bridge search_stocks)")
async def search(
    services: ServicesDep,
    keyword: Annotated[str, Query(min_length=1, description="Part of a code, e.g. 6000.")],
    category: SectorQuery = "沪深A股",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 20,
) -> dict[str, Any]:
    wanted = keyword.upper()
    matches = [s for s in await services.sector_members(category) if wanted in s.upper()][:limit]
    return {"keyword": keyword, "count": len(matches), "stocks": matches}
