"""History downloads as background jobs: queued, run one at a time, cancellable, and verified.

A download that "succeeds" proves nothing: xtquant's ``download_history_data2`` can return without having
fetched anything (no permission, a quiet server, a range with no sessions). So every job ends with a
verification read of the last bar of the range per code, and reports which codes really have data, which are
empty for a good reason (listed after the range, no session in it) and which are missing. Jobs run on the
download lane in short chunks, so snapshots and interactive reads keep their priority.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qmtgate.errors import NotFound, QmtgateError
from qmtgate.source.calendar import CalendarService, day_end_ms
from qmtgate.source.history import HistoryService, xt_day, xt_time
from qmtgate.source.ledger import DOWNLOAD_BASE

logger = logging.getLogger(__name__)

#: Codes listed in a job's answer (missing/empty lists are cut to this length; counts stay exact).
_LIST_LIMIT = 50


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    VERIFYING = "verifying"
    SUCCEEDED = "succeeded"  # every code that could have data has data
    FAILED = "failed"  # the download raised, or data did not land for some codes
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass
class DownloadJob:
    id: str
    codes: tuple[str, ...]
    period: str
    start: dt.date | None
    end: dt.date | None
    state: JobState = JobState.QUEUED
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    started_ms: int | None = None
    finished_ms: int | None = None
    finished_codes: int = 0
    current_code: str | None = None
    verification: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def to_dict(self) -> dict[str, Any]:
        total = len(self.codes)
        return {
            "id": self.id,
            "state": self.state.value,
            "period": self.period,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "codes": total,
            "progress": {
                "finished": self.finished_codes,
                "total": total,
                "percent": round(100.0 * self.finished_codes / total, 1) if total else 100.0,
                "code": self.current_code,
            },
            "created_ms": self.created_ms,
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
            "verification": self.verification,
            "error": self.error,
        }


class DownloadJobs:
    """FIFO queue of download jobs with one worker task; finished jobs are kept for ``kept`` submissions."""

    def __init__(self, history: HistoryService, calendar: CalendarService, *, kept: int = 100) -> None:
        self._history = history
        self._calendar = calendar
        self._kept = kept
        self._jobs: OrderedDict[str, DownloadJob] = OrderedDict()
        self._queue: asyncio.Queue[str] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._ids = itertools.count(1)

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._work(), name="qmtgate-download-jobs")

    async def stop(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for job in self._jobs.values():
            if not job.state.finished:
                self._finish(job, JobState.CANCELLED, {"code": "cancelled", "message": "gateway stopped"})

    def submit(
        self, codes: Sequence[str], period: str, start: dt.date | None, end: dt.date | None
    ) -> DownloadJob:
        if self._queue is None:
            raise RuntimeError("DownloadJobs.start() was not called")
        job_id = f"dl-{int(time.time())}-{next(self._ids)}"
        job = DownloadJob(job_id, tuple(codes), period, start, end)
        self._jobs[job_id] = job
        self._prune()
        self._queue.put_nowait(job_id)
        return job

    def get(self, job_id: str) -> DownloadJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no download job {job_id!r}", {"job_id": job_id})
        return job

    def list(self) -> list[DownloadJob]:
        return list(reversed(self._jobs.values()))

    def cancel(self, job_id: str) -> DownloadJob:
        """Cancel a queued or running job (a chunk already inside xtdata finishes, nothing after it runs)."""
        job = self.get(job_id)
        if job.state.finished:
            return job
        task = self._running.get(job_id)
        if task is not None:
            task.cancel()
        self._finish(job, JobState.CANCELLED, {"code": "cancelled", "message": "cancelled by request"})
        return job

    async def wait(self, job_id: str, timeout: float) -> DownloadJob:
        job = self.get(job_id)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(job.done.wait(), timeout)
        return job

    # -- worker ----------------------------------------------------------------------------------------

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            job_id = await self._queue.get()
            job = self._jobs.get(job_id)
            if job is None or job.state.finished:
                continue
            task = asyncio.create_task(self._run(job), name=f"qmtgate-{job_id}")
            self._running[job_id] = task
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():  # the worker itself is being cancelled
                    raise
            except Exception:  # _run reports its own failures; this is a bug guard
                logger.exception("download job %s crashed", job_id)
            finally:
                self._running.pop(job_id, None)

    async def _run(self, job: DownloadJob) -> None:
        job.state = JobState.RUNNING
        job.started_ms = int(time.time() * 1000)
        try:
            session = await self._calendar.session()
            last = session.last_complete
            if last is None:
                raise _JobError("no_session", "the calendar has no complete session yet")
            hi = min(job.end, last) if job.end is not None else last
            lo = job.start
            if lo is not None and lo > hi:
                # Nothing complete in the range (e.g. it starts today): nothing to download, nothing to verify.
                job.finished_codes = len(job.codes)
                job.verification = _verification(0, [], [], [], lo, hi)
                job.verification["note"] = "no complete session in the range yet"
                self._finish(job, JobState.SUCCEEDED)
                return
            base = DOWNLOAD_BASE[job.period]
            chunk = 20
            for i in range(0, len(job.codes), chunk):
                part = job.codes[i : i + chunk]
                offset = i

                def progress(report: Any, offset: int = offset) -> None:
                    job.finished_codes = min(len(job.codes), offset + int(report.finished))
                    job.current_code = report.code or job.current_code

                await self._history.download(part, base, lo, hi, urgent=False, progress=progress)
                job.finished_codes = min(len(job.codes), i + len(part))
            job.state = JobState.VERIFYING
            job.verification = await self._verify(job, lo, hi)
            if job.verification["missing_count"]:
                raise _JobError(
                    "download_incomplete",
                    f"no data landed for {job.verification['missing_count']} code(s)",
                    {"missing": job.verification["missing"]},
                )
            self._finish(job, JobState.SUCCEEDED)
        except asyncio.CancelledError:
            self._finish(job, JobState.CANCELLED, {"code": "cancelled", "message": "cancelled by request"})
            raise
        except _JobError as e:
            self._finish(job, JobState.FAILED, {"code": e.code, "message": e.message, "details": e.details})
        except QmtgateError as e:
            self._finish(
                job, JobState.FAILED, {"code": e.code.value, "message": e.message, "details": e.details}
            )

    async def _verify(self, job: DownloadJob, lo: dt.date | None, hi: dt.date) -> dict[str, Any]:
        """Read the last bar of the range per code; explain empty answers by listing dates and sessions."""
        source = self._history.source
        with_data: list[str] = []
        empty: list[str] = []
        for i in range(0, len(job.codes), 200):
            part = list(job.codes[i : i + 200])
            frames = await source.history(
                part,
                job.period,
                xt_day(lo),
                xt_time(day_end_ms(hi)),
                1,
                "none",
                True,
                fields=("time",),
            )
            for code in part:
                frame = frames.get(code)
                (with_data if frame is not None and len(frame) else empty).append(code)
        explained: list[str] = []
        missing: list[str] = []
        if empty:
            details = await source.instrument_details(empty)
            for code in empty:
                listed = _listing_day((details.get(code) or {}).get("OpenDate"))
                first = max(d for d in (lo, listed) if d is not None) if (lo or listed) else None
                sessions = await self._calendar.between(first, hi)
                (missing if sessions else explained).append(code)
        return _verification(len(job.codes), with_data, explained, missing, lo, hi)

    def _finish(self, job: DownloadJob, state: JobState, error: dict[str, Any] | None = None) -> None:
        if job.state.finished:
            return
        job.state = state
        job.error = error
        job.current_code = None
        job.finished_ms = int(time.time() * 1000)
        job.done.set()

    def _prune(self) -> None:
        finished = [job_id for job_id, job in self._jobs.items() if job.state.finished]
        for job_id in finished[: max(0, len(self._jobs) - self._kept)]:
            del self._jobs[job_id]


def _verification(
    checked: int, with_data: list[str], empty: list[str], missing: list[str], lo: dt.date | None, hi: dt.date
) -> dict[str, Any]:
    return {
        "checked": checked,
        "with_data": len(with_data),
        "empty": empty[:_LIST_LIMIT],
        "empty_count": len(empty),
        "missing": missing[:_LIST_LIMIT],
        "missing_count": len(missing),
        "start": lo.isoformat() if lo else None,
        "end": hi.isoformat(),
        "note": None,
    }


class _JobError(Exception):
    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def _listing_day(value: Any) -> dt.date | None:
    text = str(value or "")
    if len(text) != 8 or not text.isdigit() or text.startswith(("1970", "0")):
        return None
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None
