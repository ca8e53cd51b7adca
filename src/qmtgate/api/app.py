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

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from qmtgate.api import qmt_bridge
from qmtgate.api.docs_ui import install_offline_docs
from qmtgate.api.fastlane import FullTickFastLane
from qmtgate.api.middleware import (
    AccessMiddleware,
    SecurityMiddleware,
    ServerTimingMiddleware,
    SourceHeaderMiddleware,
)
from qmtgate.api.openapi import DESCRIPTION, TAGS
from qmtgate.api.responses import OrjsonResponse
from qmtgate.api.routers import (
    calendar,
    compat_argus,
    compat_qmt_bridge,
    downloads,
    health,
    index,
    market,
    metrics,
    recorded,
    reference,
    stream,
    xtcompat,
)
from qmtgate.api.runtime import GatewayRuntime
from qmtgate.api.services import Services
from qmtgate.bus.runtime import start_nats
from qmtgate.config import Settings, load_settings, package_version
from qmtgate.errors import install_error_handlers
from qmtgate.hub.supervisor import SourceSupervisor, SupervisorConfig
from qmtgate.ops.allocator import pin_mmap_threshold
from qmtgate.ops.gc_tuning import QuietCollector, freeze_when_live
from qmtgate.ops.metrics import GatewayMetrics
from qmtgate.ops.redact import install_log_redaction
from qmtgate.ops.runtime import OpsRuntime
from qmtgate.ops.startup import start_banner
from qmtgate.record.runtime import start_recording
from qmtgate.security.deps import READ
from qmtgate.security.guard import SecurityGuard
from qmtgate.security.openapi import install_security_openapi
from qmtgate.security.refusal_log import RefusalSampler
from qmtgate.source.base import MarketSource
from qmtgate.source.factory import ImportModule, open_source

API_PREFIX = "/api/v1"
logger = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    source: MarketSource | None = None,
    *,
    import_module: ImportModule = importlib.import_module,
    process_tuning: bool = False,
) -> FastAPI:
    """Build the app. ``import_module`` is how the source factory imports xtquant/the simulator (tests).

    ``process_tuning`` applies the process-wide tuning of ``[quotes]`` (glibc's mmap threshold, gc.freeze and
    the quiet collector): it changes the whole interpreter, so only the process that owns it asks for it
    (``qmtgate serve``); an app embedded in another program or built by a test leaves the process alone.
    """
    settings = settings if settings is not None else load_settings()
    install_log_redaction()  # uvicorn logs raw query strings: no key may reach a log line (ops/redact.py)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if process_tuning and settings.quotes.mmap_threshold:  # before the source allocates its market
                pin_mmap_threshold(settings.quotes.mmap_threshold)
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
            recording = await start_recording(settings, active, services.hub)  # docs/recording.md
            stack.push_async_callback(recording.stop)
            app.state.recording = recording.reader
            app.state.recorder = recording.recorder
            stack.callback(setattr, app.state, "recording", None)
            if recording.recorder is not None and app.state.metrics is not None:
                app.state.metrics.bind_recorder(recording.recorder)
            if settings.hikyuu.enabled:  # the Hikyuu-compatible NNG feed, a hub client (docs/hikyuu.md)
                from qmtgate.hikyuu.runtime import start_hikyuu

                hikyuu = await start_hikyuu(settings, active, services, app.state.metrics)
                if hikyuu is not None:
                    stack.push_async_callback(hikyuu.stop)
                    app.state.hikyuu = hikyuu
                    stack.callback(setattr, app.state, "hikyuu", None)
            publisher = await start_nats(settings, services.hub)  # docs/nats.md
            app.state.nats = publisher
            if publisher is not None:
                stack.push_async_callback(publisher.stop)
                if app.state.metrics is not None:
                    app.state.metrics.bind_nats(publisher)
            ops = OpsRuntime(settings, app.state.metrics)  # metrics wiring and the alert monitor
            await ops.start(active, services)
            stack.push_async_callback(ops.stop)
            app.state.ops = ops
            if services.hub is not None:  # staleness, silent subscriptions (docs/reliability.md)
                supervisor = SourceSupervisor(
                    active,
                    services.hub,
                    config=SupervisorConfig(
                        stale_seconds=settings.xtquant.stale_seconds,
                        symbol_stale_seconds=settings.xtquant.symbol_stale_seconds,
                    ),
                    is_trading_day=services.calendar.is_trading_day,
                )
                await supervisor.start()
                stack.push_async_callback(supervisor.stop)
                app.state.supervisor = supervisor
                stack.callback(setattr, app.state, "supervisor", None)
                if app.state.metrics is not None:
                    app.state.metrics.bind_supervisor(supervisor)
            if process_tuning and settings.quotes.gc_freeze:
                collector = None
                if settings.quotes.gc_when_quiet:
                    collector = QuietCollector(
                        _stream_quiet(services),
                        on_collect=app.state.metrics.gc_collected if app.state.metrics else None,
                    )
                    stack.push_async_callback(collector.stop)
                    app.state.gc_collector = collector
                    stack.callback(setattr, app.state, "gc_collector", None)
                # With the quote cache off (every read goes to xtdata) start-up is over once the source
                # is connected: without the freeze, each 5,000-code snapshot's rows tipped CPython into a
                # full collection of the simulator's objects every other request (+85 ms).
                live = services.quotes.is_live if services.quotes is not None else active.is_connected
                freezer = asyncio.create_task(
                    freeze_when_live(live, then=collector.start if collector is not None else None),
                    name="qmtgate-gc-freeze",
                )
                stack.callback(freezer.cancel)
            if settings.trading.enabled:  # the trading lane (docs/trading.md), after market data
                from qmtgate.source.trading import TradingService
                from qmtgate.source.trading.lane import simulator_chosen

                # an unset account id means the paper account only where the simulator was chosen
                # (not a Windows gateway that fell back to it: there the account is always named)
                trading = TradingService(settings.trading, paper_default=simulator_chosen(settings))
                trading.calendar = services.calendar
                await trading.start()
                stack.push_async_callback(trading.stop)
                app.state.trading = trading
                stack.callback(setattr, app.state, "trading", None)
                app.state.protect = await _start_protection(settings, trading, services, stack)
                stack.callback(setattr, app.state, "protect", None)
                ops.bind_trading(trading, app.state.protect)
            logger.info("%s", start_banner(settings, active.name))  # where to go next (ops/startup.py)
            yield

    app = FastAPI(
        title="qmtgate",
        version=package_version(),
        summary="LAN gateway to QMT/miniQMT (xtquant) market data, with a built-in simulated A-share market.",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        docs_url=None,  # /docs and /redoc are served offline by install_offline_docs (no CDN)
        redoc_url=None,
    )
    app.state = GatewayRuntime(settings)  # every part, typed (api/runtime.py); filled by the lifespan
    app.state.metrics = GatewayMetrics() if settings.metrics.enabled else None
    app.state.security = SecurityGuard(
        settings, on_event=app.state.metrics.on_security_event if app.state.metrics else None
    )
    install_error_handlers(app)
    # innermost: the drop-in's get_full_tick from the live cache, past routing and validation (fastlane.py)
    app.add_middleware(FullTickFastLane, path=f"{API_PREFIX}/xt/full_tick")
    if settings.trading.enabled:  # orders past routing and dependency solving (trading_fastlane.py)
        from qmtgate.api.trading_fastlane import TradingOrderFastLane

        app.add_middleware(TradingOrderFastLane, path=f"{API_PREFIX}/trading/orders")
    app.add_middleware(SourceHeaderMiddleware, source_name=lambda: _source_name(app))
    # outermost last: timing, then the security gate, then request ids / metrics / access log
    app.add_middleware(ServerTimingMiddleware)
    app.add_middleware(SecurityMiddleware, guard=app.state.security)
    app.add_middleware(compat_argus.ArgusErrorFlag)  # Argus error bodies: "success": false (outside security)
    app.add_middleware(
        AccessMiddleware,
        metrics=app.state.metrics,
        access_log=settings.log.access,
        refusals=RefusalSampler(settings.http.refused_log_per_minute),
    )
    if settings.trading.enabled:  # absent (404) when trading is off; `trade` scope per route
        _check_trading_exposure(settings)
        from qmtgate.api.routers import protect as protect_routes
        from qmtgate.api.routers import trading as trading_routes

        # first: Starlette matches routes in order, and an order should not walk the ~400 data and compat
        # routes before its own (their paths do not overlap /api/v1/trading)
        app.include_router(trading_routes.router, prefix=API_PREFIX)
        app.include_router(protect_routes.router, prefix=API_PREFIX)
    # Scopes (docs/security.md): data and reference routes need `read`; health and downloads declare
    # theirs per route (liveness is open, starting or cancelling a download needs `admin`).
    for router in (health.router, downloads.router):
        app.include_router(router, prefix=API_PREFIX)
    for router in (market.router, reference.router, calendar.router, recorded.router):
        app.include_router(router, prefix=API_PREFIX, dependencies=[READ])
    app.include_router(stream.router)  # WebSockets: `stream` scope, checked in the route
    # qmtgate.remote (xtquant drop-in)
    app.include_router(xtcompat.router, prefix=API_PREFIX, dependencies=[READ])
    app.include_router(compat_qmt_bridge.router, dependencies=[READ])
    for router in qmt_bridge.ROUTERS:  # the rest of qmt-bridge 2.1.3's data methods (api/qmt_bridge)
        app.include_router(router, dependencies=[READ])
    app.include_router(compat_argus.router, dependencies=[READ])
    app.include_router(metrics.router)  # `admin` scope unless metrics.public
    install_offline_docs(app)
    app.include_router(index.router)  # GET /: links to the docs and health (public with the docs)
    install_security_openapi(app)
    return app


async def _start_protection(
    settings: Settings, trading: object, services: Services, stack: AsyncExitStack
) -> object | None:
    """Protective orders (docs/trading.md): the engine, fed by a hub consumer of the codes it watches."""
    if not settings.trading.protect.enabled:
        return None
    from qmtgate.hub.watch import CodeWatch
    from qmtgate.source.trading.protect import ProtectionEngine

    engine = ProtectionEngine(trading, settings.trading.protect)  # type: ignore[arg-type]
    if services.hub is not None:
        watch = CodeWatch(services.hub, engine.on_ticks, name="protect")
        engine.feed = watch
        stack.push_async_callback(watch.stop)
    else:
        logger.warning("protective orders get no quotes: the stream hub is off (hub.enabled = false)")
    await engine.start()
    stack.push_async_callback(engine.stop)
    return engine


def _check_trading_exposure(settings: Settings) -> None:
    """Trading without keys is only for loopback: refuse to build such an app on another address."""
    import ipaddress

    if settings.auth.active or not settings.trading.allow_loopback_without_auth:
        return
    host = settings.host.strip("[]")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"trading.allow_loopback_without_auth needs a loopback bind address, not {settings.host!r}; "
            "configure API keys with the 'trade' scope instead (docs/trading.md)"
        )


def _source_name(app: FastAPI) -> str | None:
    source = getattr(app.state, "source", None)
    return source.name if source is not None else None


def _stream_quiet(services: Services) -> Callable[[], bool]:
    """True between bursts: the stream hub (which also writes the quote cache) has no work on a burst's
    path."""
    hub = services.hub

    def quiet() -> bool:
        return hub is None or hub.quiet()

    return quiet
