"""Reference data: sectors and their members, instrument details and types, dividend factors."""

from __future__ import annotations

from typing import Annotated

import pyarrow as pa
from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from qmtgate.api.deps import ServicesDep, TabularFormatDep
from qmtgate.api.encoding import tabular_response
from qmtgate.api.openapi import ERRORS, tabular
from qmtgate.api.params import parse_codes, parse_range
from qmtgate.api.schemas import (
    DividendsResponse,
    InstrumentResponse,
    InstrumentsResponse,
    InstrumentTypeResponse,
    NameList,
    SectorMembers,
)
from qmtgate.codes import classify
from qmtgate.source.convert import DETAIL_SCHEMA, detail_row, dividend_table
from qmtgate.source.history import xt_day

router = APIRouter(tags=["reference"], responses=ERRORS)

CodePath = Annotated[
    str, Path(description="Security code.", openapi_examples={"pufa": {"value": "600000.SH"}})
]

_DETAIL_TYPES: dict[str, pa.DataType] = {
    "code": pa.string(),
    "name": pa.string(),
    "exchange": pa.string(),
    "kind": pa.string(),
    "list_date": pa.string(),
    "delist_date": pa.string(),
    "trading_day": pa.string(),
    "pre_close": pa.float64(),
    "limit_up": pa.float64(),
    "limit_down": pa.float64(),
    "price_tick": pa.float64(),
    "float_shares": pa.float64(),
    "total_shares": pa.float64(),
    "volume_multiple": pa.int64(),
    "suspended_days": pa.int64(),
    "resumed_today": pa.bool_(),
}
assert list(_DETAIL_TYPES) == list(DETAIL_SCHEMA)


@router.get("/sectors", response_model=NameList, summary="Sector names")
async def sectors(services: ServicesDep) -> NameList:
    names = await services.source.sector_list()
    return NameList(source=services.source.name, count=len(names), data=names)


@router.get(
    "/sectors/{sector}/members",
    response_model=SectorMembers,
    summary="Codes in a sector",
    description="Unknown sector names are a 404 (xtquant itself would answer an empty list).",
)
async def sector_members(
    services: ServicesDep,
    sector: Annotated[str, Path(description="Sector name.", openapi_examples={"a": {"value": "沪深A股"}})],
) -> SectorMembers:
    members = await services.sector_members(sector)
    return SectorMembers(source=services.source.name, sector=sector, count=len(members), data=members)


@router.get(
    "/instruments",
    response_class=Response,
    responses=tabular(InstrumentsResponse, "Normalized instrument details, one row per code."),
    summary="Instrument details of many codes",
    description="At most `max_codes_per_request` codes (default 1000). xtquant's DBL_MAX/INT_MAX sentinels "
    "and special dates become null.",
)
async def instruments(
    services: ServicesDep,
    fmt: TabularFormatDep,
    codes: Annotated[
        list[str],
        Query(
            description="Security codes, comma-separated and/or repeated.",
            openapi_examples={"two": {"value": ["600000.SH,000001.SZ"]}},
        ),
    ],
) -> Response:
    code_list = parse_codes(codes, limit=services.settings.max_codes_per_request)
    details = await services.require_known(code_list)
    rows = [detail_row(code, details[code]) for code in code_list]
    table = pa.table(
        {name: pa.array([row[name] for row in rows], kind) for name, kind in _DETAIL_TYPES.items()}
    )
    return tabular_response(table, fmt=fmt, source=services.source.name)


@router.get("/instruments/{code}", response_model=InstrumentResponse, summary="Instrument detail of one code")
async def instrument(services: ServicesDep, code: CodePath) -> InstrumentResponse:
    (normalized,) = parse_codes([code], limit=1, param="code")
    details = await services.require_known([normalized])
    return InstrumentResponse.model_validate(
        {"source": services.source.name, "data": detail_row(normalized, details[normalized])}
    )


@router.get(
    "/instruments/{code}/type",
    response_model=InstrumentTypeResponse,
    summary="Instrument type of one code",
    description="`type` is xtquant's get_instrument_type (only the true flags); `kind` is qmtgate's class.",
)
async def instrument_type(services: ServicesDep, code: CodePath) -> InstrumentTypeResponse:
    (normalized,) = parse_codes([code], limit=1, param="code")
    await services.require_exists([normalized])
    flags = await services.source.instrument_type(normalized)
    return InstrumentTypeResponse(
        source=services.source.name,
        code=normalized,
        kind=classify(normalized),
        type={name: bool(value) for name, value in flags.items() if value},
    )


@router.get(
    "/dividends/{code}",
    response_class=Response,
    responses=tabular(DividendsResponse, "Ex-rights events, oldest first."),
    summary="Dividend factors of one code",
    description="From xtquant get_divid_factors: cash dividends, bonus/transfer/rights shares per share, and "
    "the ex-rights factor, one row per ex-date.",
)
async def dividends(
    services: ServicesDep,
    fmt: TabularFormatDep,
    code: CodePath,
    start: Annotated[str | None, Query(description="First ex-date (YYYYMMDD or ISO).")] = None,
    end: Annotated[str | None, Query(description="Last ex-date (YYYYMMDD or ISO).")] = None,
) -> Response:
    (normalized,) = parse_codes([code], limit=1, param="code")
    lo, hi = parse_range(start, end)
    await services.require_exists([normalized])
    frame = await services.source.divid_factors(
        normalized, xt_day(lo.day if lo else None), xt_day(hi.day if hi else None)
    )
    table = dividend_table(normalized, frame)
    return tabular_response(table, fmt=fmt, source=services.source.name, meta={"code": normalized})
