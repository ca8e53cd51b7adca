"""The gateway's runtime: every part the lifespan builds, typed, as the app's ``app.state``.

Why: routers, middlewares and tests reach the gateway's parts through ``app.state``. Those used to be
untyped attributes set here and there by the lifespan; now ``app.state`` is one :class:`GatewayRuntime`
(a Starlette ``State``, so attribute access works as before), declared in one place with the type of each
part. ``qmtgate record`` builds the shared core of it (:class:`qmtgate.record.runtime.Runtime`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.datastructures import State

from qmtgate.config import Settings
from qmtgate.record.runtime import Runtime

if TYPE_CHECKING:
    from qmtgate.api.services import Services
    from qmtgate.bus.publisher import NatsPublisher
    from qmtgate.hikyuu.publisher import HikyuuPublisher
    from qmtgate.hub.supervisor import SourceSupervisor
    from qmtgate.ops.gc_tuning import QuietCollector
    from qmtgate.ops.metrics import GatewayMetrics
    from qmtgate.ops.runtime import OpsRuntime
    from qmtgate.security.guard import SecurityGuard
    from qmtgate.source.trading import TradingService
    from qmtgate.source.trading.protect import ProtectionEngine


class GatewayRuntime(State, Runtime):
    """``app.state`` of a qmtgate app (see the module docstring); parts are None until started."""

    services: Services | None  # routes' services (calendar, history, downloads, the quote cache)
    ops: OpsRuntime | None  # metrics wiring and the alert monitor
    supervisor: SourceSupervisor | None  # staleness of the hub's deliveries
    nats: NatsPublisher | None  # the NATS publisher (nats.url)
    hikyuu: HikyuuPublisher | None  # the Hikyuu-compatible feed (hikyuu.enabled)
    trading: TradingService | None  # the trading lane (trading.enabled)
    protect: ProtectionEngine | None  # protective orders (trading.enabled)
    gc_collector: QuietCollector | None  # the quiet collector (process tuning)
    metrics: GatewayMetrics | None  # set at build time (metrics.enabled)
    security: SecurityGuard  # set at build time

    def __init__(self, settings: Settings) -> None:
        State.__init__(self)
        Runtime.__init__(self, settings)
        self.services = None
        self.ops = None
        self.supervisor = None
        self.nats = None
        self.hikyuu = None
        self.trading = None
        self.protect = None
        self.gc_collector = None
        self.metrics = None
