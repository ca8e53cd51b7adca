"""K-lines and snapshots, normalized (snake_case, shares, yuan, ts + local time), JSON / Arrow / CSV."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from qmtgate.api.deps import ServicesDep, TabularFormatDep
from qmtgate.api.encoding import TabularFormat, off_loop, rows_response, tabular_response
from qmtgate.api.openapi import ERRORS, tabular
from qmtgate.api.params import (
    DividendType,
    KlinePeriod,
    Moment,
    parse_codes,
    parse_fields,
    parse_range,
    split_list,
)
from qmtgate.api.schemas import KlineResponse, SnapshotResponse
from qmtgate.api.services import Services
from qmtgate.codes import classify
from qmtgate.errors import BadRequest, TooLarge
from qmtgate.security.budget import charge, row_cost
from qmtgate.source.convert import KLINE_FIELDS, SNAPSHOT_FIELDS, bars_table
from qmtgate.source.history import BARS_PER_SESSION

router = APIRouter(tags=["market"], responses=ERRORS)

CODES_DESCRIPTION = (
    "Security codes, comma-separated and/or repeated (600000.SH, sh600000, 600000.XSHG, 600000...)."
)
PeriodQuery = Annotated[KlinePeriod, Query(description="K-line period (xtquant spelling).")]
StartQuery = Annotated[
    str | None,
    Query(
        description="First bar time, inclusive: YYYYMMDD, YYYYMMDDHHMMSS, YYYY-MM-DD or ISO 8601 "
        "(Asia/Shanghai unless an offset is given).",
        openapi_examples={"date": {"value": "20250102"}, "iso": {"value": "2025-01-02T09:30:00+08:00"}},
    ),
]
EndQuery = Annotated[
    str | None,
    Query(description="Last bar time, inclusive (a bare date covers that whole day). Default: now."),
]
CountQuery = Annotated[
    int | None,
    Query(
        ge=1,
        le=1_000_000,
        description="Last N bars (per code) ending at end. Default when start is not given: 1000.",
        openapi_examples={"sixty": {"value": 60}},
    ),
]
DividendQuery = Annotated[DividendType, Query(description="Price adjustment (xtquant dividend_type).")]
FillQuery = Annotated[
    bool, Query(description="Fill bars of suspended sessions with the previous close (xtquant fill_data).")
]
KlineFieldsQuery = Annotated[
    str | None,
    Query(description=f"Comma-separated subset of: {', '.join(KLINE_FIELDS)} (code, ts, time always sent)."),
]


@router.get(
    "/klines",
    response_class=Response,
    responses=tabular(KlineResponse, "Bars of every code, one row per (code, bar), oldest first per code."),
    summary="K-lines of one or many codes",
    description="One long table over all codes. Batch limit: `limits.max_history_codes` codes (default "
    "500) and `limits.max_kline_rows` rows as Arrow (default 1,000,000), `limits.max_text_rows` as JSON or "
    "CSV (default 200,000), estimated before reading; a larger request is refused (`too_large`) with how "
    "to page it (`details.max_bars_per_code`, `details.hint`). Missing history "
    "is downloaded first (minute data is empty in QMT until downloaded); today's bar is included while the "
    "session is forming. An unknown code is a 404 naming it; a valid code with no session in the range "
    "has no rows.",
)
async def klines(
    services: ServicesDep,
    fmt: TabularFormatDep,
    codes: Annotated[
        list[str],
        Query(
            description=CODES_DESCRIPTION,
            openapi_examples={"two": {"value": ["600000.SH,000001.SZ"]}},
        ),
    ],
    period: PeriodQuery = KlinePeriod["1d"],  # type: ignore[valid-type]
    start: StartQuery = None,
    end: EndQuery = None,
    count: CountQuery = None,
    dividend_type: DividendQuery = DividendType["none"],  # type: ignore[valid-type]
    fields: KlineFieldsQuery = None,
    fill_data: FillQuery = True,
) -> Response:
    code_list = parse_codes(codes, limit=services.settings.limits.max_history_codes)
    return await _klines(
        services, fmt, code_list, period.value, start, end, count, dividend_type.value, fields, fill_data
    )


@router.get(
    "/klines/{code}",
    response_class=Response,
    responses=tabular(KlineResponse, "Bars of one code, oldest first."),
    summary="K-lines of one code",
)
async def klines_one(
    services: ServicesDep,
    fmt: TabularFormatDep,
    code: Annotated[
        str, Path(description="Security code.", openapi_examples={"pufa": {"value": "600000.SH"}})
    ],
    period: PeriodQuery = KlinePeriod["1d"],  # type: ignore[valid-type]
    start: StartQuery = None,
    end: EndQuery = None,
    count: CountQuery = None,
    dividend_type: DividendQuery = DividendType["none"],  # type: ignore[valid-type]
    fields: KlineFieldsQuery = None,
    fill_data: FillQuery = True,
) -> Response:
    code_list = parse_codes([code], limit=1, param="code")
    return await _klines(
        services, fmt, code_list, period.value, start, end, count, dividend_type.value, fields, fill_data
    )


async def _klines(
    services: Services,
    fmt: TabularFormatDep,
    codes: list[str],
    period: str,
    start: str | None,
    end: str | None,
    count: int | None,
    dividend_type: str,
    fields: str | None,
    fill_data: bool,
) -> Response:
    lo, hi = parse_range(start, end)
    selected = parse_fields(fields, KLINE_FIELDS)
    if lo is None and count is None:
        count = services.settings.limits.default_kline_count
    await services.require_exists(codes)
    await check_kline_rows(services, len(codes), period, lo, hi, count, fmt)
    bars = await services.history.kline_parts(
        codes,
        period,
        lo.ms if lo else None,
        hi.ms if hi else None,
        count,
        dividend_type,
        fill_data,
    )
    meta = {"period": period, "dividend_type": dividend_type, "fill_data": fill_data, "codes": codes}
    rows = sum(len(part) for parts in bars.values() for part in parts)
    return await off_loop(
        rows,
        lambda: tabular_response(bars_table(bars, selected), fmt=fmt, source=services.source.name, meta=meta),
    )


async def check_kline_rows(
    services: Services,
    codes: int,
    period: str,
    lo: Moment | None,
    hi: Moment | None,
    count: int | None,
    fmt: TabularFormat = TabularFormat.JSON,
) -> None:
    """Refuse a request whose estimated size exceeds ``limits.max_kline_rows`` (``max_text_rows`` for JSON
    and CSV) before reading anything, saying how to page; else charge its rows to the key's cost bucket."""
    arrow = fmt is TabularFormat.ARROW
    limits = services.settings.limits
    limit = limits.max_kline_rows if arrow else min(limits.max_kline_rows, limits.max_text_rows)
    per_code = float(count) if count is not None else math.inf
    if lo is not None:
        session = await services.calendar.session()
        last = hi.day if hi is not None else session.today
        sessions = len(await services.calendar.between(lo.day, last))
        per_code = min(per_code, math.ceil(sessions * BARS_PER_SESSION[period]) + 1)
    rows = codes * per_code
    if rows > limit:
        raise TooLarge(
            f"the answer would hold about {rows:,.0f} rows, more than the limit of {limit:,}; "
            "page through it: narrow the range (start/end), lower count, or split the codes",
            {
                "estimated_rows": None if math.isinf(rows) else int(rows),
                "limit": limit,
                "bars_per_code": None if math.isinf(per_code) else int(per_code),
                "max_bars_per_code": max(1, limit // max(1, codes)),
                "hint": "ask for at most max_bars_per_code bars per code (count=, or start/end spanning "
                "fewer sessions), then continue from the bar before the oldest one received (end=)"
                + ("" if arrow else f"; as Arrow (format=arrow) up to {limits.max_kline_rows:,} rows"),
            },
        )
    charge(codes, units=rows * row_cost(arrow))


# -- snapshots ---------------------------------------------------------------------------------------

MARKETS_PATTERN = r"^\s*(SH|SZ|BJ)\s*(,\s*(SH|SZ|BJ)\s*)*$"
KINDS_PATTERN = r"^\s*(stock|etf|fund|index|bond|other)\s*(,\s*(stock|etf|fund|index|bond|other)\s*)*$"
SNAPSHOT_COLUMNS = ["code", "ts", "time"]


@router.get(
    "/snapshots",
    response_class=Response,
    responses=tabular(SnapshotResponse, "Latest L1 snapshot per code (5 bid/ask levels)."),
    summary="Snapshots of codes, a sector or whole markets",
    description="Give exactly one of `codes` (at most `max_codes_per_request`, default 1000), `sector` "
    "(e.g. 沪深A股) or `markets` (SH,SZ,BJ; optionally filtered by `kinds`). Served from the last-value "
    "cache fed by one whole-market subscription, so a whole-market answer costs no upstream call; while "
    "the cache is not live the source is asked. Codes without a snapshot this session are listed in "
    "`missing`.",
)
async def snapshots(
    services: ServicesDep,
    fmt: TabularFormatDep,
    codes: Annotated[
        list[str] | None,
        Query(description=CODES_DESCRIPTION, openapi_examples={"two": {"value": ["600000.SH,000001.SZ"]}}),
    ] = None,
    sector: Annotated[
        str | None,
        Query(
            min_length=1,
            description="Sector name (see /api/v1/sectors).",
            openapi_examples={"a_shares": {"value": "沪深A股"}},
        ),
    ] = None,
    markets: Annotated[
        str | None,
        Query(
            pattern=MARKETS_PATTERN,
            description="Whole markets, comma-separated: SH, SZ, BJ.",
            openapi_examples={"all": {"value": "SH,SZ,BJ"}},
        ),
    ] = None,
    kinds: Annotated[
        str | None,
        Query(
            pattern=KINDS_PATTERN,
            description="Keep only these instrument classes (comma-separated): stock, etf, fund, index, bond, "
            "other (by the exchanges' numbering plan).",
        ),
    ] = None,
    fields: Annotated[
        str | None,
        Query(description=f"Comma-separated subset of: {', '.join(SNAPSHOT_FIELDS)} (code, ts always sent)."),
    ] = None,
) -> Response:
    given = [name for name, value in (("codes", codes), ("sector", sector), ("markets", markets)) if value]
    if len(given) != 1:
        raise BadRequest(
            "give exactly one of codes, sector or markets" + (f" (got {', '.join(given)})" if given else ""),
            {"given": given},
        )
    columns = [*SNAPSHOT_COLUMNS, *parse_fields(fields, [f for f in SNAPSHOT_FIELDS if f != "time"])]
    wanted = set(split_list(kinds)) if kinds else None
    from_cache = services.cache_live()
    if markets:
        market_list = split_list(markets)
        charge(services.market_count(market_list, wanted))  # a market counts as its instruments
        if from_cache and services.quotes is not None:  # the same bytes for every request of a burst
            key = ("snapshots", tuple(market_list), tuple(sorted(wanted or ())), tuple(columns), fmt)
            return await services.answers.get(
                key,
                services.quotes.version,
                lambda: _market_snapshot(services, fmt, market_list, wanted, columns),
            )
        rows = await services.market_snapshot_rows(market_list, wanted)
        missing: list[str] = []
    else:
        if codes:
            code_list = parse_codes(codes, limit=services.settings.max_codes_per_request)
            await services.require_exists(code_list)
        else:
            code_list = await services.sector_members(sector or "")
        if wanted is not None:
            code_list = [code for code in code_list if classify(code) in wanted]
        charge(len(code_list))  # a sector counts as its members
        if sector and from_cache and services.quotes is not None:  # e.g. 沪深A股: once per burst too
            key = ("sector", tuple(code_list), tuple(columns), fmt)  # its members as of this request
            return await services.answers.get(
                key, services.quotes.version, lambda: _codes_snapshot(services, fmt, code_list, columns)
            )
        rows, missing = await services.snapshot_rows(code_list)
    meta = {"from_cache": from_cache, "missing": missing}
    return await off_loop(
        len(rows), lambda: rows_response(rows, columns, fmt=fmt, source=services.source.name, meta=meta)
    )


async def _market_snapshot(
    services: Services, fmt: TabularFormat, markets: list[str], kinds: set[str] | None, columns: list[str]
) -> Response:
    """The whole-market answer from the live cache, encoded (shared through ``services.answers``)."""
    rows = await services.market_snapshot_rows(markets, kinds)
    meta = {"from_cache": True, "missing": []}
    return await off_loop(
        len(rows), lambda: rows_response(rows, columns, fmt=fmt, source=services.source.name, meta=meta)
    )


async def _codes_snapshot(
    services: Services, fmt: TabularFormat, codes: list[str], columns: list[str]
) -> Response:
    """A sector's answer from the live cache, encoded (shared through ``services.answers``)."""
    rows, missing = await services.snapshot_rows(codes)
    meta = {"from_cache": True, "missing": missing}
    return await off_loop(
        len(rows), lambda: rows_response(rows, columns, fmt=fmt, source=services.source.name, meta=meta)
    )
