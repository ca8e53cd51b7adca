"""The FastAPI application factory and its single lifespan.

``create_app(settings, source=None)`` builds a fresh app; nothing happens at import time. The lifespan
starts the market source (which starts its xtdata executor) before the first request and stops it after
the last connection closed, in reverse order of start. Pass ``source`` to serve a prepared source (tests,
embedding); otherwise the factory picks one from ``settings.source``.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from qmtgate.api.middleware import SourceHeaderMiddleware
from qmtgate.api.responses import OrjsonResponse
from qmtgate.api.routers import health
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
            yield

    app = FastAPI(
        title="qmtgate",
        version=package_version(),
        description="LAN gateway to QMT/miniQMT (xtquant) market data, with a built-in simulated A-share market.",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
    )
    app.state.settings = settings
    app.state.source = None
    install_error_handlers(app)
    app.add_middleware(SourceHeaderMiddleware, source_name=lambda: _source_name(app))
    app.include_router(health.router, prefix=API_PREFIX)
    return app


def _source_name(app: FastAPI) -> str | None:
    source = getattr(app.state, "source", None)
    return source.name if source is not None else None
