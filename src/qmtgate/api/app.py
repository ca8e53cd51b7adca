"""The FastAPI application factory and its single lifespan.

``create_app(settings, source=None)`` builds a fresh app; nothing happens at import time. The lifespan
starts the market source (which starts its xtdata executor), then the services on top of it (calendar,
history, download jobs, the whole-market quote cache and its subscription) before the first request, and
stops them in reverse order after the last connection closed. Pass ``source`` to serve a prepared source
(tests, embedding); otherwise the factory picks one from ``settings.source``.

Routes: ``/api/v1`` (health, market, reference, calendar, downloads; docs/rest.md) and the qmt-bridge and
Argus compat routes.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from qmtgate.api.middleware import ServerTimingMiddleware, SourceHeaderMiddleware
from qmtgate.api.openapi import DESCRIPTION, TAGS
from qmtgate.api.responses import OrjsonResponse
from qmtgate.api.routers import (
    calendar,
    compat_argus,
    compat_qmt_bridge,
    downloads,
    health,
    market,
    reference,
    stream,
)
from qmtgate.api.services import Services
from qmtgate.config import Settings, load_settings, package_version
from qmtgate.errors import install_error_handlers
from qmtgate.source.base import MarketSource
from qmtgate.source.factory import ImportModule, open_source

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings | None = None,
    source: MarketSource | None = None,
    *,
    import_module: ImportModule = importlib.import_module,
) -> FastAPI:
    """Build the app. ``import_module`` is how the source factory imports xtquant/the simulator (tests)."""
    settings = settings if settings is not None else load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if source is None:
                active = await open_source(settings, import_module)
            else:
                active = source
                await active.start()
            stack.push_async_callback(active.stop)
            app.state.source = active
            stack.callback(setattr, app.state, "source", None)
            services = Services.build(settings, active)
            await services.start()
            stack.push_async_callback(services.stop)
            app.state.services = services
            stack.callback(setattr, app.state, "services", None)
            app.state.hub = services.hub
            stack.callback(setattr, app.state, "hub", None)
            yield

    app = FastAPI(
        title="qmtgate",
        version=package_version(),
        summary="LAN gateway to QMT/miniQMT (xtquant) market data, with a built-in simulated A-share market.",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
    )
    app.state.settings = settings
    app.state.source = None
    app.state.services = None
    app.state.hub = None
    install_error_handlers(app)
    app.add_middleware(SourceHeaderMiddleware, source_name=lambda: _source_name(app))
    app.add_middleware(ServerTimingMiddleware)
    for router in (health.router, market.router, reference.router, calendar.router, downloads.router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(stream.router)
    app.include_router(compat_qmt_bridge.router)
    app.include_router(compat_argus.router)
    return app


def _source_name(app: FastAPI) -> str | None:
    source = getattr(app.state, "source", None)
    return source.name if source is not None else None
