"""qmt-bridge 2.1.3 ``/api/download/*`` for the data qmtgate serves: K-line history, sectors, holidays.

``batch`` runs a download job (the same jobs as ``/api/v1/downloads``) and waits up to 30 s for it, like the
legacy ``/api/download``; ``sector_data`` and ``holiday`` answer ``ok`` once the source serves that data
(the gateway keeps it itself). Downloads of data qmtgate does not serve are in ``unsupported``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from qmtgate.api.deps import ServicesDep
from qmtgate.api.openapi import ERRORS
from qmtgate.api.params import KlinePeriod, parse_codes, parse_range
from qmtgate.errors import InvalidDate, SourceUnavailable
from qmtgate.security.deps import READ
from qmtgate.source.convert import DAILY_PERIODS

# starting a download is `read`, as the legacy /api/download and POST /api/v1/downloads (docs/security.md)
router = APIRouter(prefix="/api/download", tags=["compat: qmt-bridge"], responses=ERRORS, dependencies=[READ])


class BatchBody(BaseModel):
    stocks: list[str] = Field(examples=[["600000.SH", "000001.SZ"]])
    period: KlinePeriod = KlinePeriod["1d"]  # type: ignore[valid-type]
    start_time: str = Field(
        "", description="YYYYMMDD; '' = the whole history (daily) / required for minutes."
    )
    end_time: str = Field("", description="YYYYMMDD; '' = up to the last complete session.")


@router.post("/batch", summary="Download history of many codes (qmt-bridge download_batch)")
async def batch(services: ServicesDep, body: BatchBody) -> dict[str, Any]:
    codes = parse_codes(body.stocks, limit=services.settings.limits.max_history_codes, param="stocks")
    lo, hi = parse_range(
        body.start_time[:8] or None, body.end_time[:8] or None, start_param="start_time", end_param="end_time"
    )
    period = body.period.value
    if lo is None and period not in DAILY_PERIODS:
        raise InvalidDate(f"start_time is required for {period} downloads", {"period": period})
    await services.require_exists(codes)
    job = services.jobs.submit(codes, period, lo.day if lo else None, hi.day if hi else None)
    job = await services.jobs.wait(job.id, timeout=30.0)
    status = {"succeeded": "ok", "failed": "failed", "cancelled": "failed"}.get(job.state.value, "running")
    return {"status": status, "stocks": codes, "period": period, "job_id": job.id, "error": job.error}


@router.post("/sector_data", summary="Sector lists (qmt-bridge download_sector_data)")
async def sector_data(services: ServicesDep) -> dict[str, Any]:
    if not await services.source.sector_list():
        raise SourceUnavailable("the source lists no sectors", {"source": services.source.name})
    return {"status": "ok"}


@router.post("/holiday", summary="Holiday table (qmt-bridge download_holiday_data)")
async def holiday(services: ServicesDep) -> dict[str, Any]:
    if not await services.source.holidays():
        raise SourceUnavailable("the source has no holiday table", {"source": services.source.name})
    return {"status": "ok"}
