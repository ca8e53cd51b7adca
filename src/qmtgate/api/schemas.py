"""Response models shared by routers (they document the wire format in OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable error code, e.g. 'source_timeout'.")
    message: str = Field(description="Human-readable explanation; may change between versions.")
    details: Any = Field(None, description="Optional structured context (offending codes, limits...).")


class ErrorEnvelope(BaseModel):
    """The one error shape every failure uses."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the error envelope for the given status codes."""
    return {status: {"model": ErrorEnvelope, "description": "Error envelope"} for status in statuses}


class LiveResponse(BaseModel):
    status: Literal["ok"] = "ok"
    source: str = Field(description="Which source serves: 'xtquant' (real QMT) or 'simulated'.")
    version: str = Field(description="qmtgate version.")
    time_ms: int = Field(description="Server time, epoch milliseconds (UTC).")


class ExecutorInfo(BaseModel):
    state: str = Field(description="running | degraded | faulted | stopped | new.")
    queue_depths: dict[str, int] = Field(description="Queued upstream calls per lane.")
    current_call: str | None = Field(None, description="Upstream function running right now.")
    current_running_seconds: float | None = Field(None, description="How long it has been running, seconds.")
    degraded_call: str | None = Field(None, description="Call that overran its deadline, if degraded.")


class ReadyResponse(BaseModel):
    ready: bool = Field(description="True when the source is connected and its executor healthy.")
    source: str
    state: str = Field(description="starting | ready | degraded | unavailable | stopped.")
    connected: bool
    message: str | None = None
    since_ms: int | None = Field(None, description="When the state last changed, epoch milliseconds.")
    executor: ExecutorInfo | None = None


class CapabilitiesResponse(BaseModel):
    source: str
    markets: list[str]
    periods: list[str]
    dividend_types: list[str]
    features: dict[str, bool] = Field(description="Feature -> supported by this source.")
    max_codes_per_request: int
    formats: list[str] = Field(description="Media types tabular endpoints can produce (Accept header).")
