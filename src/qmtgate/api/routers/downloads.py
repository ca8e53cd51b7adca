"""History downloads as background jobs: start, status with progress, list, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from qmtgate.api.deps import ServicesDep
from qmtgate.api.openapi import ERRORS
from qmtgate.api.params import HistoryPeriod, parse_codes, parse_range
from qmtgate.api.schemas import JobList, JobResponse
from qmtgate.api.services import Services
from qmtgate.errors import InvalidDate
from qmtgate.security.deps import ADMIN, READ
from qmtgate.source.jobs import DownloadJob

router = APIRouter(prefix="/downloads", tags=["downloads"], responses=ERRORS)

#: Periods whose download without a start would fetch years of minute or tick data.
_NEEDS_START = frozenset({"1m", "5m", "15m", "30m", "60m", "1h", "tick"})

JobIdPath = Annotated[str, Path(description="Job id from POST /api/v1/downloads.")]


class DownloadRequest(BaseModel):
    codes: list[str] = Field(
        min_length=1,
        description="Security codes (any accepted spelling; comma-separated items are split).",
        examples=[["600000.SH", "000001.SZ"]],
    )
    period: HistoryPeriod = Field(  # type: ignore[valid-type]
        HistoryPeriod["1d"],
        description="Period to download: K-line periods (minute periods download their 1m/5m base) or tick.",
    )
    start: str | None = Field(
        None,
        description="First day (YYYYMMDD or ISO). Required for minute and tick periods; default for daily "
        "periods: the whole history.",
        examples=["20250102"],
    )
    end: str | None = Field(None, description="Last day. Default: the last complete session.")

    model_config = {
        "json_schema_extra": {"examples": [{"codes": ["600000.SH"], "period": "1m", "start": "20250102"}]}
    }


def job_body(services: Services, job: DownloadJob) -> dict[str, Any]:
    return {"source": services.source.name, **job.to_dict()}


@router.post(
    "",
    status_code=202,
    response_model=JobResponse,
    summary="Start a download job",
    description="Queues a background download and answers at once with the job (state `queued`). Jobs run one "
    "at a time on the source's download lane, in chunks, so snapshots and reads keep priority. When the "
    "data is downloaded the job reads the last bar of the range back per code and ends `succeeded` only "
    "if every code that could have data has it (`verification` says which codes are empty and why). "
    "Needs the `read` scope when auth is on (filling QMT's history cache before reading is what every "
    "xtquant script does; jobs queue one at a time, within `limits.max_job_codes`).",
    dependencies=[READ],
)
async def start_download(services: ServicesDep, request: DownloadRequest) -> JobResponse:
    period = request.period.value
    codes = parse_codes(request.codes, limit=services.settings.limits.max_job_codes)
    lo, hi = parse_range(request.start, request.end)
    if lo is None and period in _NEEDS_START:
        raise InvalidDate(
            f"start is required for {period} downloads (years of intraday data otherwise)", {"period": period}
        )
    await services.require_exists(codes)
    job = services.jobs.submit(codes, period, lo.day if lo else None, hi.day if hi else None)
    return JobResponse.model_validate(job_body(services, job))


@router.get("", response_model=JobList, summary="Recent download jobs, newest first", dependencies=[READ])
async def list_downloads(services: ServicesDep) -> JobList:
    jobs = [job_body(services, job) for job in services.jobs.list()]
    return JobList.model_validate({"source": services.source.name, "count": len(jobs), "data": jobs})


@router.get(
    "/{job_id}",
    response_model=JobResponse,
    summary="Status and progress of a download job",
    dependencies=[READ],
)
async def get_download(services: ServicesDep, job_id: JobIdPath) -> JobResponse:
    return JobResponse.model_validate(job_body(services, services.jobs.get(job_id)))


@router.delete(
    "/{job_id}",
    response_model=JobResponse,
    summary="Cancel a download job",
    description="A queued job never starts; a running one stops after the chunk in progress. Cancelling a "
    "finished job changes nothing. Needs the `admin` scope when auth is on.",
    dependencies=[ADMIN],
)
async def cancel_download(services: ServicesDep, job_id: JobIdPath) -> JobResponse:
    return JobResponse.model_validate(job_body(services, services.jobs.cancel(job_id)))
