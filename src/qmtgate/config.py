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

from pydantic import BaseModel, ConfigDict, Field
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
        "None = the latest session from 09:29:00.",
    )


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
        5.0, gt=0, description="Seconds between reconnect attempts while QMT is unreachable. Default 5."
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


class LimitSettings(_Frozen):
    """Request limits of the REST API (documented in docs/rest.md; exceeding one answers 422 ``too_large``)."""

    max_history_codes: int = Field(
        500, ge=1, description="Most codes one K-line request may name. Default 500."
    )
    max_kline_rows: int = Field(
        2_000_000,
        ge=1,
        description="Most rows one K-line answer may hold, estimated from codes x sessions x bars per session "
        "before any upstream call. Default 2,000,000.",
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
    jobs_kept: int = Field(
        100, ge=1, description="Finished download jobs remembered for status. Default 100."
    )


class HubSettings(_Frozen):
    """The last-value quote cache fed by one whole-market subscription."""

    enabled: bool = Field(
        True, description="Subscribe to whole-market quotes and serve snapshots from the cache. Default true."
    )
    markets: tuple[Literal["SH", "SZ", "BJ"], ...] = Field(
        ("SH", "SZ", "BJ"), description="Markets of the whole-market subscription. Default SH, SZ, BJ."
    )
    apply_chunk: int = Field(
        1000, ge=1, description="Quotes applied per event-loop turn when a push is large. Default 1000."
    )


class StreamSettings(_Frozen):
    """WebSocket streaming limits (see qmtgate.hub)."""

    ring_capacity: int = Field(
        500_000,
        ge=1000,
        description="Updates kept for resume after a reconnect (~90 s of the whole market). Default 500000.",
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
    hub: HubSettings = Field(default_factory=HubSettings, description="Quote cache options.")
    stream: StreamSettings = Field(default_factory=StreamSettings, description="WebSocket streaming options.")

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
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _toml_file.get()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


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
