"""Prometheus ``/metrics`` (admin scope when auth is on, unless ``metrics.public``); not in the OpenAPI."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from qmtgate.errors import NotFound
from qmtgate.ops.metrics import CONTENT_TYPE
from qmtgate.security.deps import ADMIN

router = APIRouter(include_in_schema=False)


@router.get("/metrics", dependencies=[ADMIN])
async def metrics(request: Request) -> Response:
    registry = getattr(request.app.state, "metrics", None)
    if registry is None:
        raise NotFound("metrics are disabled (metrics.enabled = false)")
    return Response(registry.render(), media_type=CONTENT_TYPE)
