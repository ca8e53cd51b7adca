"""Response models shared by routers (they document the wire format in OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from qmtgate.vocab import PHASE_TEXT


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


class CallInfo(BaseModel):
    count: int = Field(description="Upstream calls made (merged snapshot requests count once).")
    requests: int = Field(description="Caller requests served by those calls.")
    joined: int = Field(0, description="Of those, requests that joined a call already running.")
    errors: int = Field(description="Calls that raised.")
    mean_seconds: float = Field(description="Mean call duration, seconds.")
    max_seconds: float = Field(description="Longest call, seconds.")


class ExecutorInfo(BaseModel):
    state: str = Field(description="running | degraded | faulted | stopped | new.")
    queue_depths: dict[str, int] = Field(description="Queued upstream calls per lane.")
    current_call: str | None = Field(None, description="Upstream function running right now.")
    current_running_seconds: float | None = Field(None, description="How long it has been running, seconds.")
    degraded_call: str | None = Field(None, description="Call that overran its deadline, if degraded.")
    calls: dict[str, CallInfo] = Field(default_factory=dict, description="Statistics per xtdata function.")


class ReadyResponse(BaseModel):
    ready: bool = Field(description="True when the source is connected and its executor healthy.")
    source: str
    state: str = Field(description="starting | ready | degraded | unavailable | stopped.")
    connected: bool
    message: str | None = None
    note: str | None = Field(
        None, description="About the data, e.g. that the simulator replays a past session."
    )
    since_ms: int | None = Field(None, description="When the state last changed, epoch milliseconds.")
    executor: ExecutorInfo | None = None
    quotes: QuoteCacheInfo | None = Field(None, description="The whole-market quote cache.")


class CapabilitiesResponse(BaseModel):
    source: str
    markets: list[str]
    periods: list[str]
    dividend_types: list[str]
    features: dict[str, bool] = Field(
        description="Feature -> supported. Unsupported features answer 501 'unsupported', never fake data."
    )
    max_codes_per_request: int = Field(description="Most codes per snapshot/instrument request.")
    max_history_codes: int | None = Field(None, description="Most codes per K-line request.")
    max_kline_rows: int | None = Field(None, description="Most rows per K-line answer (estimated up front).")
    max_text_rows: int | None = Field(None, description="Most rows per K-line answer as JSON or CSV.")
    formats: list[str] = Field(description="Media types tabular endpoints can produce (Accept header).")


# -- shared pieces -----------------------------------------------------------------------------------

SOURCE_FIELD = Field(description="Which source answered: 'xtquant' (real QMT) or 'simulated'.")
TS_DESCRIPTION = "Epoch milliseconds, UTC."
TIME_DESCRIPTION = (
    "Exchange-local time, ISO 8601 with +08:00 (Asia/Shanghai). In Arrow answers a "
    "timestamp[ms, tz=Asia/Shanghai] column."
)


class QuoteCacheInfo(BaseModel):
    enabled: bool = Field(description="Whether the gateway keeps a whole-market quote cache.")
    live: bool = Field(description="True when the cache holds the current subscription's data.")
    codes: int | None = Field(None, description="Codes with a cached snapshot.")
    pushes: int | None = Field(None, description="Upstream tick batches applied.")
    applied: int | None = Field(None, description="Code updates applied to the cache.")
    conflated: int | None = Field(
        None,
        description="Always 0: every batch is applied as it comes (kept for clients that read the field).",
    )
    pending: int | None = Field(None, description="Upstream batches waiting for the stream hub's pump.")
    first_push_ms: int | None = Field(None, description="First push received, epoch ms (server clock).")
    last_push_ms: int | None = Field(None, description="Latest push received, epoch ms (server clock).")
    error: str | None = Field(None, description="Why the subscription is not active, if it failed.")


# -- K-lines -----------------------------------------------------------------------------------------


class KlineRow(BaseModel):
    """One bar. Fields outside ``fields=`` are absent."""

    code: str = Field(description="Security code, e.g. 600000.SH.")
    ts: int = Field(
        description="Bar time, epoch ms UTC. Daily and longer bars: 00:00 Asia/Shanghai of the (last) session "
        "day. Intraday bars: bar END time (the 09:31 bar covers 09:30-09:31; the 09:30 bar carries the "
        "opening auction)."
    )
    time: str = Field(description=TIME_DESCRIPTION)
    open: float | None = Field(None, description="Open, yuan.")
    high: float | None = Field(None, description="High, yuan.")
    low: float | None = Field(None, description="Low, yuan.")
    close: float | None = Field(None, description="Close, yuan (last price while the bar is forming).")
    pre_close: float | None = Field(None, description="Previous close, yuan.")
    volume: int | None = Field(None, description="Volume, SHARES (xtquant reports lots; x100 applied).")
    amount: float | None = Field(None, description="Turnover, yuan.")
    suspend_flag: int | None = Field(
        None, description="0 normal, 1 suspended (bar carried forward), -1 resumed trading that day."
    )


class KlineResponse(BaseModel):
    source: str = SOURCE_FIELD
    period: str = Field(description="K-line period as requested.")
    dividend_type: str = Field(description="Price adjustment applied.")
    fill_data: bool = Field(description="Whether missing bars were filled (xtquant fill_data).")
    codes: list[str] = Field(description="Normalized codes, in request order.")
    count: int = Field(description="Number of rows in data.")
    data: list[KlineRow]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "source": "simulated",
                    "period": "1d",
                    "dividend_type": "none",
                    "fill_data": True,
                    "codes": ["600000.SH"],
                    "count": 1,
                    "data": [
                        {
                            "code": "600000.SH",
                            "ts": 1735747200000,
                            "time": "2025-01-02T00:00:00+08:00",
                            "open": 10.12,
                            "high": 10.25,
                            "low": 10.01,
                            "close": 10.2,
                            "pre_close": 10.1,
                            "volume": 52300400,
                            "amount": 531234567.0,
                            "suspend_flag": 0,
                        }
                    ],
                }
            ]
        }
    }


# -- snapshots ---------------------------------------------------------------------------------------


class SnapshotRow(BaseModel):
    """Latest L1 snapshot of one code. Fields outside ``fields=`` are absent."""

    code: str = Field(description="Security code.")
    ts: int | None = Field(None, description="Snapshot time, epoch ms UTC.")
    time: str | None = Field(None, description=TIME_DESCRIPTION)
    last_price: float | None = Field(None, description="Last price, yuan (null before the first trade).")
    open: float | None = Field(None, description="Today's open, yuan.")
    high: float | None = Field(None, description="Today's high, yuan.")
    low: float | None = Field(None, description="Today's low, yuan.")
    pre_close: float | None = Field(None, description="Previous close, yuan.")
    volume: int | None = Field(None, description="Cumulative volume today, SHARES.")
    amount: float | None = Field(None, description="Cumulative turnover today, yuan.")
    trades: int | None = Field(None, description="Cumulative number of trades today.")
    phase: int | None = Field(
        None,
        description=f"Trading phase (xtquant openInt): {PHASE_TEXT}. A suspended stock (1) stands at the "
        "previous close with no open/high/low, no volume and an empty book.",
    )
    bid_price: list[float | None] | None = Field(None, description="Bid prices, best first, 5 levels, yuan.")
    bid_volume: list[int] | None = Field(None, description="Bid sizes per level, SHARES.")
    ask_price: list[float | None] | None = Field(None, description="Ask prices, best first, 5 levels, yuan.")
    ask_volume: list[int] | None = Field(None, description="Ask sizes per level, SHARES.")


class SnapshotResponse(BaseModel):
    source: str = SOURCE_FIELD
    from_cache: bool = Field(description="True when served by the whole-market quote cache.")
    missing: list[str] = Field(description="Requested codes without a snapshot this session.")
    count: int = Field(description="Number of rows in data.")
    data: list[SnapshotRow]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "source": "simulated",
                    "from_cache": True,
                    "missing": [],
                    "count": 1,
                    "data": [
                        {
                            "code": "000001.SZ",
                            "ts": 1749695400000,
                            "time": "2025-06-12T10:30:00+08:00",
                            "last_price": 14.91,
                            "open": 14.97,
                            "high": 15.14,
                            "low": 14.83,
                            "pre_close": 14.9,
                            "volume": 34355800,
                            "amount": 512345678.0,
                            "trades": 20831,
                            "phase": 13,
                            "bid_price": [14.9, 14.89, 14.88, 14.87, 14.86],
                            "bid_volume": [120300, 88800, 50100, 43000, 91200],
                            "ask_price": [14.91, 14.92, 14.93, 14.94, 14.95],
                            "ask_volume": [65500, 70100, 32400, 81000, 44400],
                        }
                    ],
                }
            ]
        }
    }


# -- reference data ----------------------------------------------------------------------------------


class NameList(BaseModel):
    source: str = SOURCE_FIELD
    count: int
    data: list[str]


class SectorMembers(BaseModel):
    source: str = SOURCE_FIELD
    sector: str = Field(description="Sector name as requested, e.g. 沪深A股.")
    count: int
    data: list[str] = Field(description="Member codes.")


class InstrumentRow(BaseModel):
    code: str = Field(description="Security code.")
    name: str | None = Field(None, description="Short name.")
    exchange: str | None = Field(None, description="SH, SZ or BJ.")
    kind: str | None = Field(None, description="stock, etf, fund, index, bond or other.")
    list_date: str | None = Field(None, description="Listing date YYYY-MM-DD.")
    delist_date: str | None = Field(None, description="Delisting date YYYY-MM-DD; null while listed.")
    trading_day: str | None = Field(None, description="Trading day of these values, YYYY-MM-DD.")
    pre_close: float | None = Field(None, description="Previous close, yuan.")
    limit_up: float | None = Field(None, description="Limit-up price today, yuan; null when unlimited.")
    limit_down: float | None = Field(None, description="Limit-down price today, yuan; null when unlimited.")
    price_tick: float | None = Field(None, description="Minimum price step, yuan.")
    float_shares: float | None = Field(None, description="Free-float shares.")
    total_shares: float | None = Field(None, description="Total shares.")
    volume_multiple: int | None = Field(None, description="Contract multiplier (1 for stocks).")
    suspended_days: int | None = Field(None, description="0 trading; n > 0 suspended for n days.")
    resumed_today: bool | None = Field(None, description="True on the day trading resumes.")


class InstrumentsResponse(BaseModel):
    source: str = SOURCE_FIELD
    count: int
    data: list[InstrumentRow]


class InstrumentResponse(BaseModel):
    source: str = SOURCE_FIELD
    data: InstrumentRow


class InstrumentTypeResponse(BaseModel):
    source: str = SOURCE_FIELD
    code: str
    kind: str = Field(description="stock, etf, fund, index, bond or other (numbering plan).")
    type: dict[str, bool] = Field(
        description="xtquant get_instrument_type flags that are true, e.g. {'stock': true}."
    )


class DividendRow(BaseModel):
    code: str
    ts: int = Field(description="Ex-date 00:00 Asia/Shanghai, epoch ms UTC.")
    time: str = Field(description=TIME_DESCRIPTION)
    ex_date: str = Field(description="Ex-date YYYY-MM-DD.")
    cash: float | None = Field(None, description="Cash dividend per share before tax, yuan.")
    bonus_shares: float | None = Field(None, description="Bonus shares per share (送股).")
    transfer_shares: float | None = Field(
        None, description="Shares transferred from reserves per share (转增)."
    )
    rights_shares: float | None = Field(None, description="Rights-issue shares per share (配股).")
    rights_price: float | None = Field(None, description="Rights-issue price, yuan.")
    factor: float | None = Field(None, description="Ex-rights adjustment factor (xtquant dr).")


class DividendsResponse(BaseModel):
    source: str = SOURCE_FIELD
    code: str
    count: int
    data: list[DividendRow]


# -- calendar ----------------------------------------------------------------------------------------


class DateRow(BaseModel):
    date: str = Field(description="YYYY-MM-DD.")
    ts: int = Field(description="00:00 Asia/Shanghai of the day, epoch ms UTC.")
    time: str = Field(description=TIME_DESCRIPTION)


class DatesResponse(BaseModel):
    source: str = SOURCE_FIELD
    market: str | None = Field(None, description="Market asked for (SH, SZ and BJ share one calendar).")
    count: int
    data: list[DateRow]


class TradingDayResponse(BaseModel):
    source: str = SOURCE_FIELD
    market: str
    date: str = Field(description="The day asked about, YYYY-MM-DD.")
    is_trading_day: bool
    n: int = Field(description="Offset used for previous/next (1 = adjacent trading day).")
    previous_trading_day: str | None = Field(
        description="n-th trading day before date; null before the calendar."
    )
    next_trading_day: str | None = Field(description="n-th trading day after date; null beyond the calendar.")


# -- downloads ---------------------------------------------------------------------------------------


class JobProgress(BaseModel):
    finished: int = Field(description="Codes downloaded so far.")
    total: int = Field(description="Codes in the job.")
    percent: float
    code: str | None = Field(None, description="Code being downloaded now.")


class JobVerification(BaseModel):
    checked: int = Field(description="Codes verified.")
    with_data: int = Field(description="Codes whose last bar in the range could be read back.")
    empty: list[str] = Field(
        description="Codes without data for a good reason (not listed / no session), max 50."
    )
    empty_count: int
    missing: list[str] = Field(description="Codes that should have data but do not (first 50).")
    missing_count: int
    start: str | None = Field(
        None, description="Range start verified, YYYY-MM-DD (null = from the beginning)."
    )
    end: str = Field(description="Range end verified (the last complete session at most), YYYY-MM-DD.")
    note: str | None = None


class JobResponse(BaseModel):
    source: str = SOURCE_FIELD
    id: str
    state: Literal["queued", "running", "verifying", "succeeded", "failed", "cancelled"]
    period: str
    start: str | None
    end: str | None
    codes: int = Field(description="Number of codes in the job.")
    progress: JobProgress
    created_ms: int
    started_ms: int | None
    finished_ms: int | None
    verification: JobVerification | None
    error: dict[str, Any] | None = Field(description="Why the job failed or was cancelled.")


class JobList(BaseModel):
    source: str = SOURCE_FIELD
    count: int
    data: list[JobResponse]


ReadyResponse.model_rebuild()
