"""Wires metrics and alerts to the running source and services for the app's lifespan.

``OpsRuntime.start`` runs after the services started: it starts the event-loop watchdog, registers the
executor's call observer and the hub listener (metrics, last tick per market) and starts the alert
monitor; ``stop`` undoes all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from qmtgate.config import Settings
from qmtgate.ops.activity import MarketActivity
from qmtgate.ops.alerts import AlertMonitor, AlertSender
from qmtgate.ops.loopwatch import LoopWatch
from qmtgate.ops.metrics import GatewayMetrics


class OpsRuntime:
    def __init__(self, settings: Settings, metrics: GatewayMetrics | None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.activity = metrics.activity if metrics is not None else MarketActivity()
        self.monitor: AlertMonitor | None = None
        self.loop_watch: LoopWatch | None = None
        self._undo: list[Any] = []

    async def start(self, source: Any, services: Any) -> None:
        self.loop_watch = LoopWatch(
            asyncio.get_running_loop(), on_lag=self.metrics.loop_lag.observe if self.metrics else None
        )
        self.loop_watch.start()
        self._undo.append(self.loop_watch.stop)
        hub = getattr(services, "hub", None)
        if hub is not None:
            hub.listeners.append(self.activity.listener)
            self._undo.append(lambda: hub.listeners.remove(self.activity.listener))
        executor = getattr(source, "executor", None)
        if self.metrics is not None:
            self.metrics.bind(source, services, tuple(self.settings.quotes.markets))
            self._undo.append(self.metrics.unbind)
            if executor is not None:
                observer = self.metrics.call_observer()
                executor.call_observers.append(observer)
                self._undo.append(lambda: executor.call_observers.remove(observer))
        alerts = self.settings.alerts
        on_sent = (
            (lambda alert, outcome: self.metrics.alerts.labels(alert.kind, outcome).inc())
            if self.metrics
            else None
        )
        calendar = getattr(services, "calendar", None)
        self.monitor = AlertMonitor(
            alerts,
            AlertSender(alerts.webhooks, alerts.max_per_minute, on_sent=on_sent),
            source,
            markets=self.settings.quotes.markets if self.settings.quotes.enabled else (),
            last_tick_age=self.activity.age,
            is_trading_day=calendar.is_trading_day if calendar is not None else None,
            error_count=lambda: _error_count(source, self.metrics),
        )
        await self.monitor.start()

    def bind_trading(self, service: Any, protect: Any = None) -> None:
        """Trading started (docs/trading.md): its metrics, and alerts on disconnects / unknown outcomes."""
        if self.metrics is not None:
            hook = self.metrics.bind_trading(service, protect)
            self._undo.append(lambda: service.metric_hooks.remove(hook))
        if self.monitor is not None:
            self.monitor.bind_trading(service)

    async def stop(self) -> None:
        if self.monitor is not None:
            await self.monitor.stop()
            self.monitor = None
        while self._undo:
            with contextlib.suppress(Exception):
                self._undo.pop()()


def _error_count(source: Any, metrics: GatewayMetrics | None) -> int:
    """Upstream call errors + 5xx answers so far (monotonic)."""
    total = 0
    executor = source.status().executor
    if executor is not None:
        total += sum(call.errors for call in executor.calls.values())
    if metrics is not None:
        for family in metrics.http_requests.collect():
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("status", "").startswith("5"):
                    total += int(sample.value)
    return total
