"""Liveness, readiness and capabilities.

Liveness answers from the event loop alone: it must keep answering while the xtdata thread is busy or
stuck, or a supervisor would restart a healthy gateway in the middle of a long query. Readiness reads the
source's cached status (never an upstream call). Capabilities are static per source.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response

from qmtgate.api.deps import SourceDep
from qmtgate.api.encoding import MEDIA_TYPES
from qmtgate.api.schemas import (
    CallInfo,
    CapabilitiesResponse,
    ExecutorInfo,
    LiveResponse,
    QuoteCacheInfo,
    ReadyResponse,
)
from qmtgate.config import package_version
from qmtgate.security.deps import READ

router = APIRouter(tags=["health"])


@router.get("/health/live", response_model=LiveResponse, summary="Is the process answering?")
async def live(request: Request) -> LiveResponse:
    source = getattr(request.app.state, "source", None)
    return LiveResponse(
        source=source.name if source is not None else "none",
        version=package_version(),
        time_ms=int(time.time() * 1000),
    )


@router.get(
    "/health/ready",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse, "description": "Not ready; the body says why."}},
    summary="Can the source serve data now?",
    dependencies=[READ],
)
async def ready(source: SourceDep, request: Request, response: Response) -> ReadyResponse:
    status = source.status()
    executor = None
    if status.executor is not None:
        executor = ExecutorInfo(
            state=status.executor.state.value,
            queue_depths=status.executor.queue_depths,
            current_call=status.executor.current_call,
            current_running_seconds=status.executor.current_running_seconds,
            degraded_call=status.executor.degraded_call,
            calls={
                name: CallInfo(
                    count=call.count,
                    requests=call.requests,
                    joined=call.joined,
                    errors=call.errors,
                    mean_seconds=call.mean_seconds,
                    max_seconds=call.max_seconds,
                )
                for name, call in status.executor.calls.items()
            },
        )
    ready, message = status.ready, status.message
    supervisor = getattr(request.app.state, "supervisor", None)
    stale = supervisor.report().stale_markets if supervisor is not None else ()
    if ready and stale:  # connected, but a subscribed market has gone quiet in trading hours
        ready = False
        message = "no quotes during trading hours from " + ", ".join(stale) + "; renewing subscriptions"
    if not ready:
        response.status_code = 503
    return ReadyResponse(
        ready=ready,
        source=status.name,
        state=status.state.value,
        connected=status.connected,
        message=message,
        note=status.note,
        since_ms=int(status.since * 1000) if status.since is not None else None,
        executor=executor,
        quotes=_quotes(request),
    )


def _quotes(request: Request) -> QuoteCacheInfo | None:
    services = getattr(request.app.state, "services", None)
    return QuoteCacheInfo(**services.cache_info()) if services is not None else None


@router.get(
    "/capabilities",
    response_model=CapabilitiesResponse,
    summary="What the active source supports",
    dependencies=[READ],
)
async def capabilities(source: SourceDep, request: Request) -> CapabilitiesResponse:
    caps = source.capabilities().to_dict()
    services = getattr(request.app.state, "services", None)
    features = dict(caps["features"])
    features["quote_cache"] = bool(
        services is not None and services.quotes is not None and features["subscribe"]
    )
    features["download_jobs"] = features["download"]
    caps["features"] = features
    limits = services.settings.limits if services is not None else None
    return CapabilitiesResponse(
        **caps,
        formats=list(MEDIA_TYPES.values()),
        max_history_codes=limits.max_history_codes if limits else None,
        max_kline_rows=limits.max_kline_rows if limits else None,
        max_text_rows=limits.max_text_rows if limits else None,
    )
