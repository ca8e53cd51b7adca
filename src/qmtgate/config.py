"""qmtgate settings: CLI flags > ``QMTGATE_*`` environment > optional TOML file > defaults.

Nothing is read at import time; call :func:`load_settings` (the CLI does) and pass the frozen result down.

Environment variables use the ``QMTGATE_`` prefix and ``__`` for nesting, e.g. ``QMTGATE_PORT=9000``,
``QMTGATE_SIM__SEED=7``, ``QMTGATE_EXECUTOR__HISTORY_TIMEOUT=60``. The TOML file has the same keys::

    host = "127.0.0.1"
    port = 8000
    source = "auto"

    [sim]
    seed = 7
    speed = 60.0
    clock = "replay"
    start = "20250102093000"
"""

from __future__ import annotations

import datetime as dt
import enum
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

#: Environment variable naming a TOML file when ``--config`` is not given.
CONFIG_ENV_VAR = "QMTGATE_CONFIG"

_toml_file: ContextVar[Path | None] = ContextVar("qmtgate_toml_file", default=None)


class SourceKind(str, enum.Enum):
    """Which market-data source serves: ``auto`` tries xtquant (QMT) and falls back to the simulator."""

    SIM = "sim"
    XTQUANT = "xtquant"
    AUTO = "auto"
    REPLAY = "replay"  # a recorded session from a recording database (replay.db, replay.date)


class SimClock(str, enum.Enum):
    """How simulated time advances (the modes of the simulator's MarketClock)."""

    LIVE = "live"  # wall time in session; outside sessions replays the last session so prices move
    REAL = "real"  # wall time exactly as real QMT: nothing moves outside sessions
    REPLAY = "replay"  # replays the session day of ``sim.start`` from its time of day, at ``sim.speed``
    MANUAL = "manual"  # stands still until advanced explicitly (tests)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SimSettings(_Frozen):
    """Options of the built-in simulated market."""

    seed: int = Field(
        0, description="Seed of the simulated market; the same seed gives the same market. Default 0."
    )
    speed: float = Field(
        1.0,
        gt=0,
        description="Simulated seconds per wall-clock second while replaying (live/replay). Default 1.",
    )
    clock: SimClock = Field(
        SimClock.LIVE, description="Clock mode: live | real | replay | manual. Default live."
    )
    start: str | None = Field(
        None,
        pattern=r"^\d{8}(\d{6})?$",
        description="Replay start 'YYYYMMDD[HHMMSS]' Asia/Shanghai (session day, time of day) for clock='replay'; "
        "None = the latest session from 09:30:00.",
    )
    wall_time: str | None = Field(
        None,
        pattern=r"^\d{14}$",
        description="Pretend the wall clock reads this Asia/Shanghai time 'YYYYMMDDHHMMSS' at start and runs on "
        "from it (env QMTGATE_SIM__WALL_TIME): tests and demos of e.g. an after-hours start at any hour. "
        "None = the real wall clock.",
    )
    # the paper broker behind the simulated xtquant.xttrader (docs/simulator.md, "Trading")
    paper_accounts: tuple[str, ...] = Field(
        ("8880001",), description="Stock accounts the paper broker knows (others answer as unknown)."
    )
    paper_starting_cash: float = Field(
        1_000_000.0, ge=0, description="Cash of a fresh paper account, 元. Default 1,000,000."
    )
    paper_db: str | None = Field(
        None,
        description="SQLite file keeping the paper accounts across restarts; None = in memory. It must "
        "exist unless paper_create is true (the recordings' --create rule).",
    )
    paper_create: bool = Field(False, description="Create paper_db if it does not exist. Default false.")


class XtquantSettings(_Frozen):
    """How to reach QMT's xtdata service."""

    ip: str = Field("", description="xtdata.connect ip; '' = local discovery (xtquant's default).")
    port: int | None = Field(
        None, ge=1, le=65535, description="xtdata.connect port; None = discovered instances, then 58610."
    )
    connect_timeout: float = Field(
        15.0, gt=0, description="Seconds one connect attempt may take. Default 15."
    )
    reconnect_interval: float = Field(
        5.0,
        gt=0,
        description="Longest wait (seconds) between reconnect attempts while QMT is unreachable; attempts "
        "back off from 0.25 s up to it. Default 5.",
    )
    probe_interval: float = Field(
        2.0,
        ge=0,
        description="Seconds between connection probes (one cheap get_full_tick) while connected, so a drop "
        "without a status callback is noticed; 0 disables. Default 2.",
    )
    stale_seconds: float = Field(
        15.0,
        gt=0,
        description="A subscribed market with no update for this many market-clock seconds during a "
        "continuous-trading session is stale: the connection is probed and, if it answers, every "
        "subscription is renewed. Default 15 (QMT pushes every ~3 s).",
    )
    symbol_stale_seconds: float = Field(
        60.0,
        gt=0,
        description="The same for one explicitly streamed code (its own upstream subscription is renewed). "
        "Default 60 (a quiet or suspended code is normal).",
    )


class ExecutorSettings(_Frozen):
    """Deadlines (seconds, queue wait + run time) and queue bounds (jobs) of the xtdata executor lanes."""

    control_timeout: float = Field(5.0, gt=0, description="Status/connect calls, seconds. Default 5.")
    snapshot_timeout: float = Field(
        5.0, gt=0, description="get_full_tick and reference lookups, seconds. Default 5."
    )
    history_timeout: float = Field(
        30.0, gt=0, description="get_market_data_ex and similar, seconds. Default 30."
    )
    download_timeout: float = Field(600.0, gt=0, description="One download chunk, seconds. Default 600.")
    control_queue: int = Field(64, ge=1, description="Max queued control calls. Default 64.")
    snapshot_queue: int = Field(256, ge=1, description="Max queued snapshot calls. Default 256.")
    history_queue: int = Field(64, ge=1, description="Max queued history calls. Default 64.")
    download_queue: int = Field(16, ge=1, description="Max queued download chunks. Default 16.")
    merge_window: float = Field(
        0.005,
        ge=0,
        le=0.1,
        description="A snapshot call waits until no other snapshot request has arrived for this many "
        "seconds, so that a burst shares one get_full_tick. Default 0.005; 0 disables.",
    )
    merge_window_max: float = Field(
        0.02, ge=0, le=0.5, description="The longest such wait, seconds. Default 0.02."
    )
    join_window: float = Field(
        0.02,
        ge=0,
        le=0.5,
        description="A snapshot request that arrives while a get_full_tick asking for all of its codes "
        "runs, begun at most this many seconds before, is answered by that call. Codes of small requests "
        "that shared a call are asked for again by the next calls for hot_seconds, so pollers that ask "
        "together share one call however the clients spread their requests. Default 0.02; 0 disables.",
    )
    hot_seconds: float = Field(
        5.0, ge=0, le=300, description="How long such codes stay in later calls, seconds. Default 5."
    )
    hot_max: int = Field(
        1000, ge=0, le=10_000, description="At most this many such codes are added to a call. Default 1000."
    )


class LimitSettings(_Frozen):
    """Request limits of the REST API (documented in docs/rest.md; exceeding one answers 422 ``too_large``)."""

    max_history_codes: int = Field(
        500, ge=1, description="Most codes one K-line request may name. Default 500."
    )
    max_kline_rows: int = Field(
        1_000_000,
        ge=1,
        description="Most rows one K-line answer may hold, estimated from codes x sessions x bars per session "
        "before any upstream call; a larger request is refused with how to page it. Default 1,000,000.",
    )
    max_text_rows: int = Field(
        200_000,
        ge=1,
        description="Most rows one K-line answer may hold as JSON or CSV (~200 bytes a row, ~40x the CPU of "
        "Arrow to encode); larger answers are refused with how to page, or asked for as Arrow (up to "
        "max_kline_rows). Default 200,000.",
    )
    default_kline_count: int = Field(
        1000,
        ge=1,
        description="Bars per code when a K-line request gives neither start nor count. Default 1000.",
    )
    inline_download_codes: int = Field(
        50,
        ge=0,
        description="A read that first needs a download for at most this many codes downloads on the history "
        "lane (inline); larger ones use the download lane. Default 50.",
    )
    history_cache_rows: int = Field(
        5_000_000,
        ge=0,
        description="Bars of complete sessions kept in memory to answer repeated K-line reads (0 disables). "
        "Default 5,000,000.",
    )
    max_job_codes: int = Field(6000, ge=1, description="Most codes one download job may name. Default 6000.")
    max_tick_codes: int = Field(
        10_000,
        ge=1,
        description="Most codes one get_full_tick request (POST /api/v1/xt/full_tick) may name; the market "
        "tokens SH, SZ, BJ stand for whole markets and count for the key's quota and cost. Default 10,000.",
    )
    jobs_kept: int = Field(
        100, ge=1, description="Finished download jobs remembered for status. Default 100."
    )


class QuoteCacheSettings(_Frozen):
    """The whole-market quote cache (the stream hub's last-value cache, fed by one whole-market
    subscription) and the process tuning that keeps its bursts cheap. ``[quotes]`` / ``QMTGATE_QUOTES__*``;
    the older name ``[hub]`` / ``QMTGATE_HUB__*`` is still read (the new name wins where both are set)."""

    enabled: bool = Field(
        True, description="Subscribe to whole-market quotes and serve snapshots from the cache. Default true."
    )
    markets: tuple[Literal["SH", "SZ", "BJ"], ...] = Field(
        ("SH", "SZ", "BJ"), description="Markets of the whole-market subscription. Default SH, SZ, BJ."
    )
    apply_chunk: int = Field(
        1000,
        ge=1,
        description="Ignored: the quote cache is the stream hub's last-value cache, written once per burst "
        "with the burst's publish (issue 18). Accepted so existing settings keep loading.",
    )
    gc_freeze: bool = Field(
        True,
        description=(
            "Once the quote feed is live (with the quote cache off: once the source is connected), move"
            " everything allocated at start-up (the simulator's market,"
            " reference data) out of the garbage collector's reach (gc.freeze) and make young collections"
            " rarer, so full collections stop pausing the stream for hundreds of ms. Applied by"
            " `qmtgate serve` only (an embedded app leaves the process alone). Default true."
        ),
    )
    gc_when_quiet: bool = Field(
        True,
        description=(
            "After the freeze, run the garbage collector's collections between bursts (when no frame is"
            " waiting to be written) instead of letting CPython start one in the middle of a burst's"
            " publish, which held every client's frame back by 35-57 ms. Collections are deferred at"
            " most 2 s. Needs gc_freeze. Default true."
        ),
    )
    mmap_threshold: int = Field(
        4 * 1024 * 1024,
        ge=0,
        description=(
            "On Linux (glibc), fix the allocator's mmap threshold at this many bytes, so that freed"
            " large buffers (the simulator's ~14 MB segment arrays) go back to the operating system"
            " instead of raising the process's resident memory for good; 0 leaves glibc's dynamic"
            " threshold. Lower values also return the ~0.5 MB burst buffers but make every such"
            " allocation a fresh mapping (the simulator then starts ~2.5x slower). No effect on Windows"
            " or macOS. Default 4 MiB."
        ),
    )


class StreamSettings(_Frozen):
    """WebSocket streaming limits (see qmtgate.hub)."""

    ring_capacity: int = Field(
        500_000,
        ge=1000,
        description="Updates kept for resume after a reconnect (~100 whole-market bursts of the A-shares: 5 min at one per 3 s). Default 500000.",
    )
    outbox_frames: int = Field(
        64,
        ge=2,
        description="Frames queued per client before its updates are conflated (one frame per 3 s burst). Default 64.",
    )
    max_lag_seconds: float = Field(
        30.0, gt=0, description="A client behind for longer than this (seconds) is disconnected. Default 30."
    )
    max_codes_per_client: int = Field(
        2000,
        ge=1,
        description="Explicit codes one connection may subscribe (whole markets do not count). Default 2000.",
    )
    max_clients: int = Field(200, ge=1, description="Concurrent streaming connections. Default 200.")

    def hub_config(self) -> Any:
        from qmtgate.hub.stream import HubConfig

        return HubConfig(
            ring_capacity=self.ring_capacity,
            outbox_frames=self.outbox_frames,
            max_lag_seconds=self.max_lag_seconds,
            max_codes_per_client=self.max_codes_per_client,
            max_clients=self.max_clients,
        )


Scope = Literal["read", "stream", "admin", "trade"]


class ApiKeySettings(_Frozen):
    """One API key as stored: never the key itself, only a salted SHA-256 of its secret part.

    Written by ``qmtgate keys create`` (into ``auth.keys_file``) or pasted into ``[[auth.keys]]``. The key a
    client sends is ``qg_<id>_<secret>``; ``id`` finds the record in O(1), the secret is compared in constant
    time. The optional quotas override the gateway defaults for this key only.
    """

    id: str = Field(pattern=r"^[0-9a-f]{8,32}$", description="Public key id (the part after 'qg_').")
    name: str = Field("", max_length=200, description="Who or what uses the key (free text).")
    scopes: tuple[Scope, ...] = Field(
        ("read",), description="read | stream | admin | trade (trading routes; docs/trading.md)."
    )
    salt: str = Field(pattern=r"^[0-9a-f]{16,128}$", description="Hex salt of the hash.")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex sha256(salt || secret).")
    created: str = Field("", description="ISO 8601 creation time (informational).")
    revoked: str | None = Field(None, description="ISO 8601 revocation time; a revoked key is refused.")
    rate: float | None = Field(
        None, gt=0, description="Requests per second for this key (default: rate_limit)."
    )
    burst: int | None = Field(None, ge=1, description="Bucket size for this key (default: rate_limit).")
    max_batch_codes: int | None = Field(
        None, ge=1, description="Most codes one REST request of this key may name (default: no extra limit)."
    )
    max_stream_codes: int | None = Field(
        None, ge=1, description="Most codes one WebSocket of this key may subscribe (default: stream limit)."
    )


class AuthSettings(_Frozen):
    """API keys (docs/security.md). Auth is on when keys are configured inline or a key file is named."""

    enabled: bool | None = Field(
        None,
        description="Force auth on/off; None (default) = on when `keys` or `keys_file` is set. Off means every "
        "route is open (only acceptable on loopback).",
    )
    keys_file: Path | None = Field(
        None, description="JSON key file written by `qmtgate keys`; re-read when it changes (revocation)."
    )
    keys: tuple[ApiKeySettings, ...] = Field((), description="Inline hashed keys (in addition to the file).")
    public_docs: bool = Field(
        False, description="Serve /docs, /redoc and /openapi.json without a key. Default false."
    )
    lockout_failures: int = Field(
        10, ge=1, description="Bad keys from one address within lockout_window before it is locked out."
    )
    lockout_window: float = Field(
        60.0, gt=0, description="Seconds over which bad keys are counted. Default 60."
    )
    lockout_seconds: float = Field(300.0, gt=0, description="How long a lockout lasts, seconds. Default 300.")

    @property
    def active(self) -> bool:
        if self.enabled is not None:
            return self.enabled
        return bool(self.keys) or self.keys_file is not None


class RateLimitSettings(_Frozen):
    """Token buckets, applied while auth is on: one per key and one per client address (429 + Retry-After)."""

    per_key_rate: float = Field(50.0, gt=0, description="Requests per second per key. Default 50.")
    per_key_burst: int = Field(100, ge=1, description="Bucket size per key. Default 100.")
    per_address_rate: float = Field(100.0, gt=0, description="Requests per second per address. Default 100.")
    per_address_burst: int = Field(200, ge=1, description="Bucket size per address. Default 200.")
    unauthenticated_rate: float = Field(
        2.0,
        gt=0,
        description="Requests per second per address without a valid key (missing or wrong); beyond it "
        "429 instead of 401. Default 2.",
    )
    unauthenticated_burst: int = Field(
        30, ge=1, description="Bucket size per address for requests without a valid key. Default 30."
    )
    cost_rate: float = Field(
        20_000.0,
        gt=0,
        description="Cost units per second per key, one unit per row or code an answer covers (bars, "
        "snapshots, ticks; sectors and markets expanded). Default 20,000.",
    )
    cost_burst: int = Field(
        400_000,
        ge=1,
        description="Cost bucket size per key; a request larger than this waits for a full bucket. Default "
        "400,000.",
    )


class HttpLimitSettings(_Frozen):
    """Limits the HTTP server applies to every connection before the app (and authentication) sees it.

    Enforced by :mod:`qmtgate.security.http_guard` (uvicorn's httptools protocol has none of its own):
    a head over a limit is answered 431, a body over the limit 413, a head not complete in time 408, each
    with the error envelope, and the connection is closed (docs/security.md).
    """

    max_head_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="Most bytes of one request's line and headers. Default 64 KiB (431 beyond it).",
    )
    max_headers: int = Field(100, ge=8, description="Most header lines per request. Default 100 (431).")
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Most bytes of one request body (Content-Length or chunked). Default 1 MiB (413).",
    )
    head_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a connection may take to send a complete request head, counted from the "
        "connection (or the first byte of a keep-alive request). Default 10 (408, then closed).",
    )
    body_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a request body may take to arrive after its head (a slow body holds a connection "
        "and a request like a slow head). Default 30 (408, then closed).",
    )
    max_pending_per_address: int = Field(
        256,
        ge=1,
        description="Connections one client address may hold open before any of their first request heads "
        "is complete (before a key can be known). Default 256; further ones are refused (429).",
    )
    refused_log_per_minute: int = Field(
        20,
        ge=1,
        description="Log records per client address and minute for refused requests (bad heads, missing or "
        "wrong keys, rate limits); the rest are counted in the next record. Default 20.",
    )


class TlsSettings(_Frozen):
    """HTTPS: both files or neither. `qmtgate cert` makes a self-signed pair and prints its fingerprint."""

    cert_file: Path | None = Field(None, description="PEM certificate (chain) file.")
    key_file: Path | None = Field(None, description="PEM private key file.")


class MetricsSettings(_Frozen):
    """Prometheus ``/metrics``."""

    enabled: bool = Field(True, description="Serve /metrics and collect metrics. Default true.")
    public: bool = Field(
        False, description="Serve /metrics without a key even when auth is on (else: admin scope)."
    )


class LogSettings(_Frozen):
    """Log format and files (docs/operations.md)."""

    format: Literal["text", "json"] = Field("text", description="Console/file format. Default text.")
    file: Path | None = Field(None, description="Also write logs here, rotated by size. Default none.")
    max_bytes: int = Field(
        20_000_000, ge=10_000, description="Rotate the log file at this size. Default 20 MB."
    )
    backups: int = Field(10, ge=0, description="Rotated files kept. Default 10.")
    access: bool = Field(
        True, description="One log record per HTTP request / WebSocket (request id, key id, route, status)."
    )


class WebhookSettings(_Frozen):
    """One alert receiver."""

    url: str = Field(pattern=r"^https?://", description="Webhook URL.")
    format: Literal["json", "wecom", "dingtalk", "feishu"] = Field("json", description="Payload format.")
    secret: str | None = Field(None, description="DingTalk/Feishu signing secret (加签), if enabled there.")


class AlertSettings(_Frozen):
    """Webhook alerts on source disconnects, stale markets in trading hours and repeated errors."""

    webhooks: tuple[WebhookSettings, ...] = Field((), description="Receivers; none = alerts are only logged.")
    check_interval: float = Field(1.0, gt=0, description="Seconds between checks. Default 1.")
    stale_seconds: float = Field(
        60.0, gt=0, description="A market with no tick for this long during a session is stale. Default 60."
    )
    error_threshold: int = Field(20, ge=1, description="Errors within error_window that raise an alert.")
    error_window: float = Field(60.0, gt=0, description="Seconds over which errors are counted. Default 60.")
    repeat_seconds: float = Field(
        3600.0, gt=0, description="Remind about a condition still active after this long. Default 3600."
    )
    max_per_minute: int = Field(10, ge=1, description="Hard cap on alerts sent per minute. Default 10.")


class RecorderSettings(_Frozen):
    """The in-gateway recorder (docs/recording.md): ticks and 1m bars into a DuckDB file."""

    enabled: bool = Field(False, description="Record while serving. Default false.")
    db: Path | None = Field(
        None, description="Recording database; must exist unless `create` is true. Also what /recorded reads."
    )
    create: bool = Field(False, description="Create `db` when it does not exist. Default false.")
    markets: tuple[Literal["SH", "SZ", "BJ"], ...] = Field(
        ("SH", "SZ", "BJ"), description="Whole markets to record. Default SH, SZ, BJ."
    )
    sectors: tuple[str, ...] = Field((), description="Sectors to record (members resolved at start).")
    codes: tuple[str, ...] = Field((), description="Codes to record.")
    backfill: bool = Field(
        True, description="On start, fetch today's missed ticks from the source's tick history. Default true."
    )
    batch_rows: int = Field(20_000, ge=1, description="Rows per database insert at most. Default 20000.")
    flush_seconds: float = Field(
        0.5, gt=0, description="Longest wait before queued rows are written. Default 0.5."
    )
    queue_batches: int = Field(
        1024, ge=1, description="Bursts queued for the writer thread before the recorder waits. Default 1024."
    )


class ReplaySettings(_Frozen):
    """``--source replay``: serve one recorded session."""

    db: Path | None = Field(None, description="Recording database to replay.")
    date: str | None = Field(
        None,
        pattern=r"^\d{4}-?\d{2}-?\d{2}$",
        description="Session to replay, YYYYMMDD or YYYY-MM-DD. Default: the newest recorded day.",
    )
    speed: float = Field(1.0, gt=0, description="Recorded seconds per wall-clock second. Default 1.")
    start: str | None = Field(
        None, pattern=r"^\d{2}:?\d{2}(:?\d{2})?$", description="Start time HH:MM[:SS] (default: first tick)."
    )

    def day(self) -> dt.date:
        if self.date is None:
            raise ValueError("replay.date is required with --source replay")
        text = self.date.replace("-", "")
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))


class WebSettings(_Frozen):
    """What a web browser may reach (docs/security.md, "Host and Origin"): the ``Host`` names accepted (against
    DNS rebinding) and the page origins allowed to call the gateway (cross-origin WebSockets and requests)."""

    allowed_hosts: tuple[str, ...] = Field(
        (),
        description="Host names accepted besides localhost and loopback addresses ('*' = any). Default: none "
        "when bound to loopback; bound to another address, every name unless this list is set.",
    )
    allowed_origins: tuple[str, ...] = Field(
        (),
        description="Page origins (scheme://host[:port]) allowed to open WebSockets or send requests from a "
        "browser ('*' = any). Default: none (same-origin and non-browser clients only).",
    )


class TradingRiskSettings(_Frozen):
    """Pre-trade risk limits, checked before the SDK sees an order (docs/trading.md)."""

    max_order_value: float = Field(1_000_000.0, gt=0, description="Most 元 one order may be worth.")
    max_orders_per_second: int = Field(5, ge=1, description="Most orders accepted per second.")
    max_orders_per_day: int = Field(500, ge=1, description="Most orders accepted per trading day.")
    allow_codes: tuple[str, ...] = Field((), description="Only these codes may be traded (empty: any).")
    deny_codes: tuple[str, ...] = Field((), description="These codes may never be traded.")
    check_trading_hours: bool = Field(
        True, description="Refuse orders outside the sessions that accept them."
    )
    dry_run: bool = Field(False, description="Run every check and send nothing (answers status 'dry_run').")
    min_order_value: float = Field(
        0.0, ge=0, description="Least 元 one order may be worth (minimum trade amount)."
    )
    max_position_value: float | None = Field(
        None, gt=0, description="Most 元 one code's position may be worth after a buy (None: no limit)."
    )
    max_position_ratio: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Most share of total asset one code's position may be after a buy (None: no limit).",
    )
    max_price_deviation: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Fat-finger check: a limit buy above last x (1 + it) or a limit sell below last x (1 - it) "
        "is refused (None: off). Protective sells are exempt: their band sets how far they cross.",
    )


class TradingProtectSettings(_Frozen):
    """Protective orders held by the gateway (docs/trading.md, "Protective orders")."""

    enabled: bool = Field(True, description="Watch protective orders (they act only while trading is on).")
    band: float = Field(
        0.02,
        gt=0,
        lt=0.2,
        description="Default protective band: a triggered sell is a limit at last x (1 - band), on the tick "
        "grid, never below the day's lower limit.",
    )
    stale_seconds: float = Field(
        10.0,
        gt=0,
        description="A quote older than this (market clock) triggers nothing: the protection waits for a "
        "fresh one and reports itself stale.",
    )
    act_when_halted: bool = Field(
        True,
        description="Protective sells still go out while the kill switch refuses new orders (they only "
        "reduce positions); false suspends them too.",
    )


class TradingSettings(_Frozen):
    """The trading lane (docs/trading.md). Off by default. Unset fields also come from the ``MINIQMT_*``
    environment names existing xttrader services use (lowest precedence above the defaults)."""

    enabled: bool = Field(False, description="Mount /api/v1/trading and connect XtQuantTrader. Default off.")
    account_id: str = Field("", max_length=64, description="The QMT account id (MINIQMT_ACCOUNT_ID).")
    account_type: Literal["STOCK", "CREDIT"] = Field(
        "STOCK", description="STOCK | CREDIT (MINIQMT_ACCOUNT_TYPE)."
    )
    userdata_path: str = Field(
        "", description="miniQMT's userdata_mini folder (MINIQMT_USERDATA_PATH); any name on the simulator."
    )
    session_policy: Literal["time", "fixed"] = Field(
        "time", description="time: a new session id per connect (from the clock); fixed: `session_id`."
    )
    session_id: int = Field(0, ge=0, description="Session id when session_policy = fixed.")
    audit_path: Path = Field(Path("trading-audit.sqlite"), description="SQLite audit trail (WAL), created.")
    audit_sync: Literal["normal", "full"] = Field(
        "normal",
        description="normal: every audit row is committed to the OS before the gateway answers (survives a "
        "gateway crash) and fsynced within audit_flush_ms (a power cut loses at most that window; claims are "
        "rebuilt from QMT's orders at start); full: one fsync per commit (adds the disk's fsync time to "
        "every order).",
    )
    audit_flush_ms: int = Field(
        50, ge=1, le=10_000, description="audit_sync=normal: longest time a written row waits for its fsync."
    )
    response_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds to wait for the SDK's answer to an order; then the outcome is unknown.",
    )
    events_ring: int = Field(
        10_000, ge=1, le=10_000_000, description="Account events kept for a WebSocket resume (`since`)."
    )
    events_max_pending: int = Field(
        4096,
        ge=16,
        le=1_000_000,
        description="Messages queued to one WebSocket past which it is closed (4001) rather than lose "
        "an account event; it resumes with `since`.",
    )
    allow_loopback_without_auth: bool = Field(
        False,
        description="With auth off, trading routes refuse every request unless this is true (loopback tests).",
    )
    risk: TradingRiskSettings = Field(default_factory=TradingRiskSettings, description="Pre-trade risk.")
    protect: TradingProtectSettings = Field(
        default_factory=TradingProtectSettings, description="Protective orders (stop-loss, take-profit)."
    )

    @model_validator(mode="before")
    @classmethod
    def _miniqmt_env(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        names = {
            "enabled": "MINIQMT_ENABLED",
            "account_id": "MINIQMT_ACCOUNT_ID",
            "account_type": "MINIQMT_ACCOUNT_TYPE",
            "userdata_path": "MINIQMT_USERDATA_PATH",
        }
        for field_name, env_name in names.items():
            value = os.environ.get(env_name)
            if field_name not in data and value not in (None, ""):
                data[field_name] = value.strip().upper() if field_name == "account_type" else value
        return data


#: Hikyuu's own default addresses (hikyuu/gui/spot_server.py). The IPC name is the same on Windows: NNG maps
#: ``ipc://<name>`` to the named pipe ``\\.\pipe\<name>`` there (any character but a backslash is allowed),
#: which is exactly what Hikyuu's consumer dials by default on every platform.
HIKYUU_IPC = "ipc:///tmp/hikyuu_real.ipc"
HIKYUU_TCP = "tcp://127.0.0.1:9200"


def _hhmm(text: str) -> dt.time:
    hh, _, mm = text.strip().partition(":")
    return dt.time(int(hh), int(mm))


def tcp_host(address: str) -> str | None:
    """The host of a ``tcp://host:port`` address (``*`` and ``""`` mean every interface), else None."""
    if not address.startswith(("tcp://", "tcp4://", "tcp6://")):
        return None
    rest = address.split("://", 1)[1]
    if rest.startswith("["):
        return rest[1 : rest.index("]")]
    return rest.rsplit(":", 1)[0]


def is_loopback_address(address: str) -> bool:
    """IPC names are local to the machine; a TCP address is local when its host is a loopback one."""
    import ipaddress

    if address.startswith("ipc://"):
        return True
    host = tcp_host(address)
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", "", "0.0.0.0", a LAN name: every interface or another machine


class HikyuuSettings(_Frozen):
    """The Hikyuu-compatible NNG feed (docs/hikyuu.md): FlatBuffers ``SpotList`` messages on ``:spot:``."""

    enabled: bool = Field(
        False, description="Publish the Hikyuu feed while serving (also --hikyuu). Default off."
    )
    addresses: tuple[str, ...] = Field(
        (HIKYUU_IPC, HIKYUU_TCP),
        min_length=1,
        description="NNG addresses the publisher listens on (ipc:// or tcp://). Default Hikyuu's own: "
        f"{HIKYUU_IPC} and {HIKYUU_TCP}.",
    )
    allow_lan: bool = Field(
        False,
        description="Acknowledge that a non-loopback tcp address serves quotes to anyone who can reach it: "
        "NNG has no authentication and the feed carries no key. Needed for e.g. tcp://0.0.0.0:9200.",
    )
    markets: tuple[Literal["SH", "SZ", "BJ"], ...] = Field(
        ("SH", "SZ", "BJ"),
        description="Whole markets to publish. Default SH, SZ, BJ (empty with sectors/codes).",
    )
    sectors: tuple[str, ...] = Field((), description="Sectors to publish (members resolved at start).")
    codes: tuple[str, ...] = Field((), description="Codes to publish.")
    open_bracket: bool = Field(
        True, description="Send the whole subscribed market once at `open_time` (Hikyuu's first minute bar)."
    )
    open_time: dt.time = Field(dt.time(9, 30), description="Market time (CST) of the opening bracket.")
    full_interval: float = Field(
        60.0,
        ge=0,
        description="Seconds between whole-market brackets from the last-value cache inside `full_windows` "
        "(a consumer that connects late has the complete market after the next one); 0 = off. Default 60.",
    )
    full_windows: tuple[str, ...] = Field(
        ("09:30-11:30", "13:00-15:00"),
        description="Market-time windows (CST, HH:MM-HH:MM) of the periodic brackets.",
    )
    records_per_message: int = Field(
        1000, ge=1, le=100_000, description="Most Spot records in one SpotList message. Default 1000."
    )
    queue_bursts: int = Field(
        16, ge=1, description="Bursts queued for the encoder thread before the hub conflates. Default 16."
    )

    @model_validator(mode="after")
    def _check(self) -> HikyuuSettings:
        for address in self.addresses:
            if not address.startswith(("ipc://", "tcp://", "tcp4://", "tcp6://")):
                raise ValueError(f"hikyuu.addresses: {address!r} is not an ipc:// or tcp:// address")
            if tcp_host(address) is not None and ":" not in address.split("://", 1)[1].lstrip("["):
                raise ValueError(f"hikyuu.addresses: {address!r} has no port")
        lan = [a for a in self.addresses if not is_loopback_address(a)]
        if lan and not self.allow_lan:
            raise ValueError(
                f"hikyuu.addresses {lan} are reachable from other machines and the feed has no authentication; "
                "set hikyuu.allow_lan = true to acknowledge it (docs/hikyuu.md)"
            )
        for window in self.full_windows:
            lo, sep, hi = window.partition("-")
            try:
                if not sep or _hhmm(lo) >= _hhmm(hi):
                    raise ValueError
            except ValueError:
                raise ValueError(f"hikyuu.full_windows: {window!r} is not HH:MM-HH:MM") from None
        if not (self.markets or self.sectors or self.codes):
            raise ValueError("hikyuu: nothing to publish: give markets, sectors or codes")
        return self

    def windows(self) -> list[tuple[dt.time, dt.time]]:
        return [(_hhmm(lo), _hhmm(hi)) for lo, _, hi in (w.partition("-") for w in self.full_windows)]


class NatsSettings(_Frozen):
    """Publishing to a NATS bus (docs/nats.md). Off unless ``url`` is set (``qmtgate serve --nats URL``)."""

    url: str | None = Field(
        None, description="NATS server URL(s), comma-separated (nats://host:4222, tls://...). None: off."
    )
    gateway_id: str = Field(
        "",
        max_length=64,
        description="This gateway's id in every subject (one token: no '.', '*', '>'). Empty: the host name.",
    )
    markets: tuple[Literal["SH", "SZ", "BJ"], ...] = Field(
        ("SH", "SZ", "BJ"), description="Markets whose ticks are published."
    )
    ticks: bool = Field(True, description="One JSON message per tick on qmtgate.<gw>.tick.<market>.<symbol>.")
    batches: bool = Field(
        True, description="One Arrow message per burst per market on qmtgate.<gw>.batch.<market>."
    )
    batch_compression: Literal["lz4", "zstd", "none"] = Field(
        "lz4",
        description="Compression of the Arrow batches' buffers: lz4 (default; ~4x smaller, fast to decode), "
        "zstd (smallest, for a slow link), none (largest, no decoding cost: consumers on loopback or a fast LAN).",
    )
    bar_periods: tuple[str, ...] = Field((), description="Bar periods published for bar_codes (1m, 5m, ...).")
    bar_codes: tuple[str, ...] = Field((), description="Codes whose bars are published.")
    buffer_messages: int = Field(
        200_000, ge=1, description="Messages kept while the bus is away; beyond it the oldest are dropped."
    )
    buffer_bytes: int = Field(256 * 1024 * 1024, ge=1024, description="Bytes kept while the bus is away.")
    reconnect_delay: float = Field(0.1, gt=0, description="First reconnect delay (s), doubled per failure.")
    max_reconnect_delay: float = Field(5.0, gt=0, description="Longest reconnect delay (s).")
    flush_timeout: float = Field(2.0, gt=0, description="Seconds the server has to confirm a sent chunk.")
    heartbeat_seconds: float = Field(1.0, gt=0, description="Heartbeat period on qmtgate.<gw>.status.")
    standby_of: str | None = Field(
        None, description="Publish data only while this gateway's heartbeat is missing (active/standby)."
    )
    standby_timeout: float = Field(3.0, gt=0, description="Seconds without the active's heartbeat.")
    creds_file: Path | None = Field(None, description="NATS .creds file (JWT + nkey seed).")
    nkey_seed_file: Path | None = Field(None, description="NATS nkey seed file.")
    user: str | None = Field(None, description="User name (with password).")
    password: str | None = Field(None, description="Password of user.")
    token: str | None = Field(None, description="Authentication token.")
    tls_ca_file: Path | None = Field(None, description="CA bundle to verify the NATS server (tls:// URLs).")
    tls_cert_file: Path | None = Field(None, description="Client certificate (mutual TLS).")
    tls_key_file: Path | None = Field(None, description="Client certificate key.")
    jetstream: bool = Field(
        False, description="Create/update a JetStream stream keeping this gateway's subjects."
    )
    stream_max_age_seconds: float = Field(
        3 * 86400.0, gt=0, description="JetStream retention by age (s). Default 3 days."
    )
    stream_max_bytes: int = Field(
        20 * 1024**3, ge=-1, description="JetStream retention by size (bytes, -1: unlimited). Default 20 GiB."
    )
    stream_replicas: int = Field(1, ge=1, le=5, description="JetStream replicas (a cluster: 3).")

    @property
    def enabled(self) -> bool:
        return bool(self.url)


class Settings(BaseSettings):
    """All qmtgate settings; frozen once loaded."""

    model_config = SettingsConfigDict(
        env_prefix="QMTGATE_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    host: str = Field(
        "127.0.0.1", description="Bind address. Default loopback; binding a LAN address exposes the API."
    )
    port: int = Field(8000, ge=0, le=65535, description="TCP port; 0 = any free port. Default 8000.")
    source: SourceKind = Field(
        SourceKind.AUTO, description="Market-data source: sim | xtquant | auto. Default auto."
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="Log level of qmtgate and uvicorn. Default info."
    )
    max_codes_per_request: int = Field(
        1000, ge=1, description="Most codes one snapshot/history/detail request may name. Default 1000."
    )
    download_chunk_size: int = Field(
        20,
        ge=1,
        description="Codes per download_history_data2 call; smaller lets snapshots interleave. Default 20.",
    )
    static_refresh_time: dt.time = Field(
        dt.time(9, 0),
        description="CST time of day at which cached reference data (instrument details, sectors, calendars) "
        "is refreshed. Default 09:00.",
    )
    sim: SimSettings = Field(default_factory=SimSettings, description="Simulated-market options.")
    xtquant: XtquantSettings = Field(default_factory=XtquantSettings, description="QMT connection options.")
    executor: ExecutorSettings = Field(
        default_factory=ExecutorSettings, description="xtdata executor limits."
    )
    limits: LimitSettings = Field(default_factory=LimitSettings, description="REST request limits.")
    quotes: QuoteCacheSettings = Field(
        default_factory=QuoteCacheSettings,
        description="Whole-market quote cache and process tuning (formerly [hub], still accepted).",
    )
    stream: StreamSettings = Field(default_factory=StreamSettings, description="WebSocket streaming options.")
    recorder: RecorderSettings = Field(default_factory=RecorderSettings, description="Tick/bar recorder.")
    replay: ReplaySettings = Field(default_factory=ReplaySettings, description="Replay source options.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="API keys.")
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings, description="Rate limits.")
    tls: TlsSettings = Field(default_factory=TlsSettings, description="HTTPS certificate and key.")
    http: HttpLimitSettings = Field(
        default_factory=HttpLimitSettings, description="HTTP head, body and connection limits."
    )
    metrics: MetricsSettings = Field(default_factory=MetricsSettings, description="Prometheus metrics.")
    log: LogSettings = Field(default_factory=LogSettings, description="Log format and files.")
    alerts: AlertSettings = Field(default_factory=AlertSettings, description="Webhook alerts.")
    web: WebSettings = Field(default_factory=WebSettings, description="Host and Origin checks (browsers).")
    trading: TradingSettings = Field(default_factory=TradingSettings, description="Trading lane (off).")
    hikyuu: HikyuuSettings = Field(
        default_factory=HikyuuSettings, description="Hikyuu-compatible NNG feed (docs/hikyuu.md); off."
    )
    nats: NatsSettings = Field(default_factory=NatsSettings, description="NATS publisher (off).")

    @model_validator(mode="before")
    @classmethod
    def _hub_is_quotes(cls, data: Any) -> Any:
        """``hub`` is the old name of ``quotes``: its values are taken where ``quotes`` does not set them."""
        if isinstance(data, dict) and "hub" in data:
            data = dict(data)
            old, new = data.pop("hub"), data.get("quotes")
            data["quotes"] = {**_as_dict(old), **_as_dict(new)}
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: CLI flags (init kwargs), then environment, then the TOML file. No .env files.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, _LegacyEnv(settings_cls)]
        toml_file = _toml_file.get()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    return dict(value)


class _LegacyEnv(PydanticBaseSettingsSource):
    """``QMTGATE_HUB__<NAME>``: the quote cache's environment variables before the group was named
    ``quotes`` (documented in docs/reliability.md), read as ``hub`` (see ``Settings._hub_is_quotes``)."""

    PREFIX = "QMTGATE_HUB__"

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        import json

        values: dict[str, Any] = {}
        for key, raw in os.environ.items():
            if key.upper().startswith(self.PREFIX) and len(key) > len(self.PREFIX):
                try:
                    value: Any = json.loads(raw)
                except ValueError:
                    value = raw
                if isinstance(value, int | float) and not isinstance(value, bool):
                    value = raw  # let the field's own validation read numbers (and "1"/"0" booleans)
                values[key[len(self.PREFIX) :].lower()] = value
        return {"hub": values} if values else {}


class ConfigFileError(ValueError):
    """The TOML file named by ``--config`` or ``QMTGATE_CONFIG`` does not exist."""


@contextmanager
def _using_toml(path: Path | None) -> Iterator[None]:
    token = _toml_file.set(path)
    try:
        yield
    finally:
        _toml_file.reset(token)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build settings from ``overrides`` (CLI flags; None values are ignored), environment and TOML file.

    Nested overrides are dicts (``sim={"seed": 7}``) and are merged with the other sources key by key.
    """
    path_text = config_file if config_file is not None else os.environ.get(CONFIG_ENV_VAR)
    path = Path(path_text) if path_text else None
    if path is not None and not path.is_file():
        raise ConfigFileError(f"config file not found: {path}")
    values = _drop_none(overrides)
    with _using_toml(path):
        return Settings(**values)


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _drop_none(value)
            if not value:
                continue
        if value is not None:
            cleaned[key] = value
    return cleaned


def package_version() -> str:
    """Installed qmtgate version (from package metadata), or ``0+unknown`` when running from a bare tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qmtgate")
    except PackageNotFoundError:
        return "0+unknown"
