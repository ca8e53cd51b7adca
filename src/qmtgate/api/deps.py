"""Shared FastAPI dependencies: settings, the market source, and the tabular answer format.

All are ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop per
request that cost ~20 % of a one-code snapshot's server time.

Tests swap any of them with ``app.dependency_overrides[get_source] = ...``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from qmtgate.api.encoding import TabularFormat, negotiate
from qmtgate.api.services import Services
from qmtgate.config import Settings
from qmtgate.errors import SourceUnavailable
from qmtgate.source.base import MarketSource


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_source(request: Request) -> MarketSource:
    source: MarketSource | None = getattr(request.app.state, "source", None)
    if source is None:
        raise SourceUnavailable("no market source is running")
    return source


async def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise SourceUnavailable("the gateway is not started")
    return services


async def get_tabular_format(
    request: Request,
    format: Annotated[
        TabularFormat | None,
        Query(description="Answer format; overrides the Accept header (json | arrow | csv)."),
    ] = None,
) -> TabularFormat:
    return negotiate(request.headers.get("accept"), format.value if format is not None else None)


SettingsDep = Annotated[Settings, Depends(get_settings)]
SourceDep = Annotated[MarketSource, Depends(get_source)]
TabularFormatDep = Annotated[TabularFormat, Depends(get_tabular_format)]
ServicesDep = Annotated[Services, Depends(get_services)]
