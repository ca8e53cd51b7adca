"""Recorded data: 1m K-lines and ticks from the recording database, JSON / Arrow / CSV.

The recording is the one the gateway writes (``recorder.enabled``), the one it replays (``--source
replay``), or ``recorder.db`` opened read-only. Same units and encodings as the live routes: volume in
shares, amount in yuan, ``ts`` epoch ms UTC plus exchange-local ``time`` (docs/recording.md).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, Response

from qmtgate.api.deps import TabularFormatDep
from qmtgate.api.encoding import TabularFormat, off_loop, tabular_response
from qmtgate.api.openapi import ERRORS
from qmtgate.api.params import parse_codes, parse_fields, parse_moment, parse_range
from qmtgate.errors import InvalidDate, InvalidPeriod, NotFound
from qmtgate.record.store import BAR_FIELDS, RECORDED_PERIODS, TICK_FIELDS, RecordingReader
from qmtgate.security.budget import charge, row_cost

router = APIRouter(prefix="/recorded", tags=["recorded"], responses=ERRORS)

CodesQuery = Annotated[list[str], Query(description="Security codes, comma-separated and/or repeated.")]
StartQuery = Annotated[
    str | None, Query(description="First time, inclusive (YYYYMMDD, YYYYMMDDHHMMSS, ISO 8601; CST).")
]
EndQuery = Annotated[str | None, Query(description="Last time, inclusive (a bare date covers the day).")]
CountQuery = Annotated[int | None, Query(ge=1, le=1_000_000, description="Last N rows per code.")]
MAX_CODES = 500


def reader(request: Request) -> RecordingReader:
    found: RecordingReader | None = getattr(request.app.state, "recording", None)
    if found is None:
        raise NotFound(
            "no recording is configured: set recorder.db (or serve --source replay --db FILE)",
            {"feature": "recorded"},
        )
    return found


def _meta(rec: RecordingReader, codes: list[str], **extra: Any) -> dict[str, Any]:
    return {"recording": rec.path.name, "codes": codes, **extra}


@router.get("/days", response_class=Response, summary="Sessions in the recording")
async def days(request: Request, fmt: TabularFormatDep) -> Response:
    rec = reader(request)
    table = await asyncio.to_thread(rec.days)
    return tabular_response(table, fmt=fmt, source="recording", meta={"recording": rec.path.name})


@router.get(
    "/klines",
    response_class=Response,
    summary="Recorded 1m K-lines",
    description="Bars built by the recorder from the recorded ticks (bar END time in `ts`, as the live "
    "K-lines). Give `start`/`end` and/or `count` (last N per code).",
)
async def klines(
    request: Request,
    fmt: TabularFormatDep,
    codes: CodesQuery,
    period: Annotated[str, Query(description="Recorded period: 1m.")] = "1m",
    start: StartQuery = None,
    end: EndQuery = None,
    count: CountQuery = None,
    fields: Annotated[str | None, Query(description=f"Subset of: {', '.join(BAR_FIELDS)}.")] = None,
) -> Response:
    rec = reader(request)
    if period not in RECORDED_PERIODS:
        raise InvalidPeriod(
            f"the recording holds {', '.join(RECORDED_PERIODS)} bars, not {period!r}",
            {"period": period, "allowed": list(RECORDED_PERIODS)},
        )
    code_list = parse_codes(codes, limit=MAX_CODES)
    lo, hi = parse_range(start, end)
    selected = parse_fields(fields, BAR_FIELDS)
    table = await asyncio.to_thread(
        rec.bars, code_list, period, lo.ms if lo else None, hi.ms if hi else None, count, selected
    )
    charge(len(code_list), units=table.num_rows * row_cost(fmt is TabularFormat.ARROW))
    return await off_loop(
        table.num_rows,
        lambda: tabular_response(
            table, fmt=fmt, source="recording", meta=_meta(rec, code_list, period=period)
        ),
    )


@router.get("/ticks", response_class=Response, summary="Recorded ticks (L1 snapshots)")
async def ticks(
    request: Request,
    fmt: TabularFormatDep,
    codes: CodesQuery,
    start: StartQuery = None,
    end: EndQuery = None,
    count: CountQuery = None,
    fields: Annotated[str | None, Query(description=f"Subset of: {', '.join(TICK_FIELDS)}.")] = None,
) -> Response:
    rec = reader(request)
    code_list = parse_codes(codes, limit=MAX_CODES)
    lo, hi = parse_range(start, end)
    if lo is None and count is None:
        count = 1000
    selected = parse_fields(fields, TICK_FIELDS)
    table = await asyncio.to_thread(
        rec.ticks, code_list, lo.ms if lo else None, hi.ms if hi else None, count, selected
    )
    charge(len(code_list), units=table.num_rows * row_cost(fmt is TabularFormat.ARROW))
    return await off_loop(
        table.num_rows,
        lambda: tabular_response(table, fmt=fmt, source="recording", meta=_meta(rec, code_list)),
    )


@router.get(
    "/completeness",
    summary="What each recorded day is known to miss",
    description="Per recorded day: `known` (false for days recorded before completeness was kept), "
    "`complete`, `scopes` (whole markets or codes recorded), `missing_seconds` (session seconds the "
    "worst scope misses) and `holes` (spans of market time no live recording or backfill covers, with "
    "the scopes that miss them). A running recorder fills today's holes from the source's tick history "
    "while the source has it (docs/recording.md, Completeness).",
)
async def completeness(
    request: Request,
    date: Annotated[str | None, Query(description="Only this day (YYYYMMDD or YYYY-MM-DD).")] = None,
) -> JSONResponse:
    rec = reader(request)
    day = None
    if date is not None:
        moment = parse_moment(date, "date")
        if moment is None:
            raise InvalidDate("date is blank; give YYYYMMDD or YYYY-MM-DD", {"date": date})
        day = moment.day
    rows = await asyncio.to_thread(rec.completeness, day)
    recorder = getattr(request.app.state, "recorder", None)
    body: dict[str, Any] = {"recording": rec.path.name, "days": rows}
    if recorder is not None:
        stats = recorder.stats
        body["recorder"] = {
            "backfill_state": stats.backfill_state,
            "backfill_attempts": stats.backfill_attempts,
            "backfill_failures": stats.backfill_failures,
            "backfill_error": stats.backfill_error,
            "holes_filled": stats.holes_filled,
            "holes_open": stats.holes_open,
        }
    return JSONResponse(body, headers={"X-QMTGate-Source": "recording"})
