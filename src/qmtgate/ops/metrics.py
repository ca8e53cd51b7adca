"""Prometheus metrics of one gateway, on a per-app registry (several apps in one process never clash).

Two kinds of series:

* **events**, counted when they happen: event-loop lag (``ops.loopwatch``), HTTP requests (latency histogram per method and route *template*,
  so cardinality stays bounded), xtdata calls (latency histogram and errors per function, observed by the
  executor's worker thread), WebSocket connections, callback-to-wire latency of stream frames,
  authentication failures, rate-limited requests, alerts;
* **state**, read at scrape time from the running components (cheap snapshots, never an upstream call):
  executor queue depth per lane and state, WebSocket clients, delivered / conflated / skipped stream
  updates and dropped clients, source connection state and epoch, last-tick age per market, quote cache.

Metric names are part of the operations contract (docs/operations.md); do not rename.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from qmtgate.ops.activity import MarketActivity

#: Request latency buckets (seconds): sub-millisecond snapshots up to long history reads.
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
XTDATA_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0, 600.0)
#: fine between 10 and 100 ms, where a whole-market burst's way to the sockets lies (its p99 read "49.x"
#: for anything between 25 and 50 ms with one bucket there)
STREAM_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.015,
    0.02,
    0.025,
    0.03,
    0.04,
    0.05,
    0.06,
    0.075,
    0.1,
    0.15,
    0.2,
    0.25,
    0.35,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    30.0,
)
#: Order round trip (seconds): the SDK's answer to order_stock_async, loopback paper broker to a remote QMT.
ORDER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LOOP_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SOURCE_STATES = ("starting", "ready", "degraded", "unavailable", "stopped")


class GatewayMetrics:
    """The metric objects of one app; ``bind`` tells the scrape-time collector what to read."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "qmtgate_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=r
        )
        self.http_latency = Histogram(
            "qmtgate_http_request_duration_seconds",
            "Time from receiving a request to sending the response head.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.xtdata_latency = Histogram(
            "qmtgate_xtdata_call_duration_seconds",
            "Run time of upstream (xtdata) calls on the executor thread.",
            ["function", "lane"],
            buckets=XTDATA_BUCKETS,
            registry=r,
        )
        self.xtdata_errors = Counter(
            "qmtgate_xtdata_call_errors", "Upstream (xtdata) calls that raised.", ["function"], registry=r
        )
        self.ws_connections = Counter(
            "qmtgate_ws_connections", "WebSocket connections accepted.", ["route"], registry=r
        )
        self.stream_latency = Histogram(
            "qmtgate_stream_callback_to_wire_seconds",
            "From the source callback delivering a burst to its frame being written to a client.",
            buckets=STREAM_BUCKETS,
            registry=r,
        )
        self.auth_failures = Counter(
            "qmtgate_auth_failures",
            "Refused authentications: missing, invalid, locked_out, key_in_url, forbidden.",
            ["reason"],
            registry=r,
        )
        self.rate_limited = Counter(
            "qmtgate_rate_limited", "Requests refused by a rate limit.", ["limit"], registry=r
        )
        self.alerts = Counter("qmtgate_alerts", "Alerts raised.", ["kind", "outcome"], registry=r)
        self.loop_lag = Histogram(
            "qmtgate_event_loop_lag_seconds",
            "Delay before the event loop ran a callback posted by the loop watchdog (every 0.25 s).",
            buckets=LOOP_LAG_BUCKETS,
            registry=r,
        )
        self.gc_pause = Histogram(
            "qmtgate_gc_pause_seconds",
            "Garbage collections run between bursts by the quiet collector, by generation; overdue ones ran"
            " while frames were on their way because they had waited too long.",
            ["generation", "overdue"],
            buckets=LOOP_LAG_BUCKETS,
            registry=r,
        )
        self.trading_orders = Counter(
            "qmtgate_trading_orders",
            "Orders sent to the SDK, by outcome: accepted, rejected, unknown (docs/trading.md).",
            ["outcome"],
            registry=r,
        )
        self.trading_refusals = Counter(
            "qmtgate_trading_refusals",
            "Trading requests refused before the SDK, by risk rule or error code.",
            ["code"],
            registry=r,
        )
        self.trading_latency = Histogram(
            "qmtgate_trading_order_round_trip_seconds",
            "From sending an order to the SDK to its answer (order id or rejection; unknown at the timeout).",
            buckets=ORDER_BUCKETS,
            registry=r,
        )
        self.protect_triggers = Counter(
            "qmtgate_trading_protect_triggers",
            "Protective orders fired, by kind and the outcome of their sell.",
            ["kind", "outcome"],
            registry=r,
        )
        self.activity = MarketActivity()
        self._state = _StateCollector()
        r.register(self._state)

    def bind(self, source: Any, services: Any, markets: tuple[str, ...] = ()) -> None:
        """Start reading ``source`` and ``services`` at scrape time (the app's lifespan calls this)."""
        self._state.source = source
        self._state.services = services
        self._state.activity = self.activity
        self._state.markets = markets

    def unbind(self) -> None:
        self._state.source = self._state.services = self._state.supervisor = None
        self._state.recorder = None
        self._state.trading = self._state.protect = None
        self._state.nats = None

    def bind_trading(self, service: Any, protect: Any = None) -> Callable[[str, str, float], None]:
        """Count the trading service's orders, refusals and protective triggers and export its state
        (connected, halted, protections) at scrape time. Returns the hook it registered."""
        self._state.trading, self._state.protect = service, protect

        def hook(name: str, label: str, value: float) -> None:
            if name == "order":
                self.trading_orders.labels(label).inc()
                self.trading_latency.observe(value)
            elif name == "refused":
                self.trading_refusals.labels(label).inc()
            elif name == "protect":
                kind, _, outcome = label.partition(":")
                self.protect_triggers.labels(kind, outcome).inc()

        service.metric_hooks.append(hook)
        return hook

    def bind_recorder(self, recorder: Any) -> None:
        """Export the in-gateway recorder's progress and completeness (docs/recording.md)."""
        self._state.recorder = recorder

    def gc_collected(self, generation: int, seconds: float, overdue: bool) -> None:
        """The quiet collector's report of one collection (see ``ops.gc_tuning``)."""
        self.gc_pause.labels(str(generation), "true" if overdue else "false").observe(seconds)

    def bind_nats(self, publisher: Any) -> None:
        """Export the NATS publisher's counters: published, dropped while the bus was away (docs/nats.md)."""
        self._state.nats = publisher

    def bind_supervisor(self, supervisor: Any) -> None:
        """Export the source supervisor's staleness and recovery counters (docs/reliability.md)."""
        self._state.supervisor = supervisor

    def call_observer(self) -> Callable[[str, str, float, bool], None]:
        """An executor observer: ``(function, lane, seconds, ok)`` from the worker thread."""
        latency, errors = self.xtdata_latency, self.xtdata_errors

        def observe(function: str, lane: str, seconds: float, ok: bool) -> None:
            latency.labels(function, lane).observe(seconds)
            if not ok:
                errors.labels(function).inc()

        return observe

    def on_security_event(self, kind: str, reason: str) -> None:
        if kind == "auth_failure":
            self.auth_failures.labels(reason).inc()
        elif kind == "rate_limited":
            self.rate_limited.labels(reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(self) -> None:
        self.source: Any = None
        self.services: Any = None
        self.activity: MarketActivity | None = None
        self.markets: tuple[str, ...] = ()
        self.supervisor: Any = None
        self.recorder: Any = None
        self.trading: Any = None
        self.protect: Any = None
        self.nats: Any = None

    def describe(self) -> list[Any]:
        return []  # series depend on the running components; collected at scrape time only

    def collect(self) -> Iterator[Any]:
        source, services = self.source, self.services
        if source is not None:
            yield from _source_metrics(source)
        if source is not None and self.supervisor is not None:
            yield from _reliability_metrics(source, self.supervisor)
        if services is not None and getattr(services, "hub", None) is not None:
            yield from _stream_metrics(services.hub)
        if services is not None and getattr(services, "quotes", None) is not None:
            stats = services.quotes.stats()
            g = GaugeMetricFamily("qmtgate_quote_cache_codes", "Codes held by the last-value quote cache.")
            g.add_metric([], stats.codes)
            yield g
            g = GaugeMetricFamily("qmtgate_quote_cache_live", "1 while the quote cache is live.")
            g.add_metric([], 1.0 if stats.live else 0.0)
            yield g
        if self.recorder is not None:
            yield from _recorder_metrics(self.recorder)
        if self.trading is not None:
            yield from _trading_metrics(self.trading, self.protect)
        if self.nats is not None:
            yield from _nats_metrics(self.nats)
        if self.activity is not None:
            g = GaugeMetricFamily(
                "qmtgate_market_last_tick_age_seconds",
                "Seconds since the market's last tick (absent before its first).",
                labels=["market"],
            )
            for market in sorted({*self.markets, *self.activity.markets()}):
                age = self.activity.age(market)
                if age is not None:
                    g.add_metric([market], age)
            yield g


def _source_metrics(source: Any) -> Iterator[Any]:
    status = source.status()
    g = GaugeMetricFamily(
        "qmtgate_source_connected", "1 while the market source is connected.", labels=["source"]
    )
    g.add_metric([status.name], 1.0 if status.connected else 0.0)
    yield g
    g = GaugeMetricFamily("qmtgate_source_state", "1 for the source's current state.", labels=["state"])
    for state in SOURCE_STATES:
        g.add_metric([state], 1.0 if status.state.value == state else 0.0)
    yield g
    g = GaugeMetricFamily("qmtgate_source_epoch", "Connections made so far (a reconnect adds one).")
    g.add_metric([], float(status.connection))
    yield g
    executor = status.executor
    if executor is None:
        return
    depth = GaugeMetricFamily("qmtgate_executor_queue_depth", "Queued xtdata jobs per lane.", labels=["lane"])
    rejected = CounterMetricFamily(
        "qmtgate_executor_rejected", "Jobs refused because the lane was full.", labels=["lane"]
    )
    timeouts = CounterMetricFamily(
        "qmtgate_executor_timeouts", "Jobs whose caller stopped waiting.", labels=["lane"]
    )
    for lane, stats in executor.lanes.items():
        depth.add_metric([lane], stats.depth)
        rejected.add_metric([lane], stats.rejected)
        timeouts.add_metric([lane], stats.timeouts)
    yield depth
    yield rejected
    yield timeouts
    g = GaugeMetricFamily("qmtgate_executor_degraded", "1 while an xtdata call overran its deadline.")
    g.add_metric([], 1.0 if executor.state.value == "degraded" else 0.0)
    yield g


def _reliability_metrics(source: Any, supervisor: Any) -> Iterator[Any]:
    """Staleness per market and per streamed code (market-clock seconds of silence inside a trading
    session; 0 outside sessions), and connection-loss / recovery counters."""
    report = supervisor.report()
    g = GaugeMetricFamily(
        "qmtgate_stream_staleness_seconds",
        "Market-clock seconds without a tick from a subscribed market during the current trading session.",
        labels=["market"],
    )
    for market, seconds in report.market_staleness.items():
        g.add_metric([market], seconds)
    yield g
    g = GaugeMetricFamily(
        "qmtgate_stream_symbol_staleness_seconds",
        "Market-clock seconds without an update of an explicitly streamed code during the trading session.",
        labels=["channel", "code"],
    )
    for (channel, code), seconds in report.symbol_staleness.items():
        g.add_metric([channel, code], seconds)
    yield g
    g = GaugeMetricFamily(
        "qmtgate_stream_halted_symbols",
        "Explicitly streamed codes that are suspended or halted now: quiet, not stale (staleness 0).",
    )
    g.add_metric([], float(len(getattr(report, "quiet_symbols", ()))))
    yield g
    g = GaugeMetricFamily("qmtgate_stream_stale", "1 while a subscribed market is stale.", labels=["market"])
    for market in report.market_staleness:
        g.add_metric([market], 1.0 if market in report.stale_markets else 0.0)
    yield g
    for name, value, text in (
        ("qmtgate_source_disconnects", getattr(source, "disconnects", 0), "Connections to the source lost."),
        (
            "qmtgate_source_reconnects",
            getattr(source, "reconnects", 0),
            "Connections to the source regained.",
        ),
        (
            "qmtgate_source_subscription_renewals",
            report.market_renewals,
            "Times every upstream subscription was renewed because a market went silent while connected.",
        ),
        (
            "qmtgate_source_symbol_renewals",
            report.symbol_renewals,
            "Single-code upstream subscriptions renewed because the code went silent.",
        ),
        (
            "qmtgate_source_resubscribe_retries",
            report.resubscribe_retries,
            "Upstream resubscribes retried after failing.",
        ),
    ):
        c = CounterMetricFamily(name, text)
        c.add_metric([], float(value))
        yield c
    outage = getattr(source, "last_outage_seconds", None)
    if outage is not None:
        g = GaugeMetricFamily("qmtgate_source_last_outage_seconds", "Length of the last source outage.")
        g.add_metric([], outage)
        yield g


def _stream_metrics(hub: Any) -> Iterator[Any]:
    g = GaugeMetricFamily("qmtgate_ws_clients", "Connected streaming clients.")
    g.add_metric([], len(hub.clients))
    yield g
    totals = hub.delivery_totals()
    for name, key, text in (
        ("qmtgate_stream_frames_delivered", "frames_sent", "Data frames written to clients."),
        ("qmtgate_stream_updates_delivered", "updates_sent", "Updates (rows) written to clients."),
        ("qmtgate_stream_conflations", "conflations", "Times a slow client's queue was conflated."),
        ("qmtgate_stream_updates_skipped", "updates_skipped", "Intermediate updates dropped by conflation."),
        ("qmtgate_stream_clients_dropped", "dropped_clients", "Clients disconnected for being too slow."),
        ("qmtgate_stream_updates_published", "updates", "Updates published by the hub."),
        (
            "qmtgate_stream_merged_batches",
            "merged_batches",
            "Tick batches merged into the next one because the hub fell behind the source.",
        ),
    ):
        c = CounterMetricFamily(name, text)
        c.add_metric([], float(totals.get(key, 0)))
        yield c


def _nats_metrics(publisher: Any) -> Iterator[Any]:
    """The NATS publisher's delivery and what it dropped while the bus was away (``bus.publisher``)."""
    info = publisher.info()
    for name, key, text in (
        ("qmtgate_nats_published_messages", "published_messages", "Messages the NATS server confirmed."),
        (
            "qmtgate_nats_published_updates",
            "published_updates",
            "Tick/bar updates the NATS server confirmed.",
        ),
        (
            "qmtgate_nats_dropped_messages",
            "dropped_messages",
            "Messages dropped: the buffer was full while NATS was away.",
        ),
        ("qmtgate_nats_dropped_updates", "dropped_updates", "Updates in the dropped messages."),
        (
            "qmtgate_nats_resent_messages",
            "resent_messages",
            "Messages sent again after a connection died unconfirmed.",
        ),
        (
            "qmtgate_nats_conflated_updates",
            "conflated_updates",
            "Updates the hub conflated away for the publisher.",
        ),
        ("qmtgate_nats_reconnects", "disconnects", "Connections to NATS lost (each followed by reconnects)."),
        (
            "qmtgate_nats_cpu_seconds",
            "cpu_seconds",
            "CPU seconds of the publisher's own work on the event loop.",
        ),
    ):
        c = CounterMetricFamily(name, text)
        c.add_metric([], float(info[key]))
        yield c
    for name, key, text in (
        ("qmtgate_nats_connected", "connected", "1 while connected to NATS."),
        (
            "qmtgate_nats_active",
            "active",
            "1 while publishing data (0: a standby waiting for the active's heartbeat).",
        ),
        ("qmtgate_nats_buffered_messages", "buffered_messages", "Messages waiting for NATS."),
        ("qmtgate_nats_buffered_bytes", "buffered_bytes", "Bytes waiting for NATS."),
    ):
        g = GaugeMetricFamily(name, text)
        g.add_metric([], float(info[key]))
        yield g


def _recorder_metrics(recorder: Any) -> Iterator[Any]:
    """The recorder's counters and what today's recording is known to miss (no database read)."""
    r, w = recorder.stats, recorder.writer.stats
    c = CounterMetricFamily("qmtgate_recorder_ticks", "Ticks stored by the recorder.")
    c.add_metric([], w.rows_written)
    yield c
    c = CounterMetricFamily("qmtgate_recorder_backfill_ticks", "Ticks stored from the source's tick history.")
    c.add_metric([], r.backfill_rows)
    yield c
    c = CounterMetricFamily("qmtgate_recorder_backfill_failures", "Backfill attempts that failed (retried).")
    c.add_metric([], r.backfill_failures)
    yield c
    c = CounterMetricFamily("qmtgate_recorder_holes_filled", "Holes of today filled from the tick history.")
    c.add_metric([], r.holes_filled)
    yield c
    g = GaugeMetricFamily("qmtgate_recorder_holes", "Holes of today the recording is known to miss.")
    g.add_metric([], r.holes_open)
    yield g
    g = GaugeMetricFamily(
        "qmtgate_recorder_missing_seconds", "Session seconds of today the recording is known to miss."
    )
    g.add_metric([], r.missing_seconds)
    yield g
    g = GaugeMetricFamily("qmtgate_recorder_backfill_done", "1 once nothing fillable is left to backfill.")
    g.add_metric([], 1.0 if r.backfill_state in ("done", "off") else 0.0)
    yield g
    g = GaugeMetricFamily("qmtgate_recorder_backlog", "Batches waiting for the recording writer.")
    g.add_metric([], recorder.backlog())
    yield g


def _trading_metrics(service: Any, protect: Any) -> Iterator[Any]:
    """The trading lane's state: connection, kill switch, unknown outcomes, protective orders."""
    g = GaugeMetricFamily("qmtgate_trading_connected", "1 while the trader is connected and subscribed.")
    g.add_metric([], 1.0 if service.lane.connected and service.connect_error is None else 0.0)
    yield g
    g = GaugeMetricFamily("qmtgate_trading_halted", "1 while the kill switch refuses new orders.")
    g.add_metric([], 1.0 if service.halted else 0.0)
    yield g
    c = CounterMetricFamily("qmtgate_trading_disconnects", "Times the trader reported on_disconnected.")
    c.add_metric([], float(service.disconnects))
    yield c
    c = CounterMetricFamily(
        "qmtgate_trading_unknown_outcomes", "Orders whose outcome became unknown (never retried; reconciled)."
    )
    c.add_metric([], float(len(service.unknown_coids)))
    yield c
    flush = service.audit.flush_stats()
    c = CounterMetricFamily(
        "qmtgate_trading_audit_flushes",
        "fsyncs of the audit WAL made off the order path (trading.audit_sync = normal).",
    )
    c.add_metric([], float(flush["flushes"]))
    yield c
    g = GaugeMetricFamily(
        "qmtgate_trading_audit_last_flush_seconds",
        "How long the last audit fsync took: the disk's share of the power-cut window.",
    )
    g.add_metric([], float(flush["last_flush_s"]))
    yield g
    c = CounterMetricFamily(
        "qmtgate_trading_audit_checkpoints",
        "PASSIVE checkpoints of the audit WAL made off the order path (at most one per second).",
    )
    c.add_metric([], float(flush["checkpoints"]))
    yield c
    if protect is None:
        return
    g = GaugeMetricFamily("qmtgate_trading_protections", "Protective orders by status.", labels=["status"])
    counts: dict[str, int] = {}
    for p in list(protect.protections.values()):
        counts[p.status] = counts.get(p.status, 0) + 1
    for status, n in sorted(counts.items()):
        g.add_metric([status], float(n))
    yield g
    g = GaugeMetricFamily(
        "qmtgate_trading_protections_stale",
        "Armed protective orders without a fresh quote: they cannot fire now.",
    )
    g.add_metric([], float(protect.stale_count()))
    yield g
    c = CounterMetricFamily(
        "qmtgate_trading_protect_stale_ticks", "Quotes of protected codes ignored because they were stale."
    )
    c.add_metric([], float(protect.stale_skips))
    yield c
    c = CounterMetricFamily(
        "qmtgate_trading_protect_halted_ticks",
        "Quotes of protected codes ignored because the code was suspended or halted (its last price is "
        "not a tradable price).",
    )
    c.add_metric([], float(getattr(protect, "halted_skips", 0)))
    yield c
