"""OpenAPI text shared by the routers: the API description, tags and response declarations."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from qmtgate.api.encoding import ARROW_STREAM, CSV
from qmtgate.api.schemas import ErrorEnvelope

DESCRIPTION = """
Market data of QMT/miniQMT (xtquant) over HTTP, or of the built-in simulated A-share market.

**Which source answered** is stated in every answer: the `X-QMTGate-Source` header (`xtquant` or
`simulated`), the `source` key of JSON bodies, and the `qmtgate.source` metadata of Arrow streams.

**Formats.** Tabular answers (K-lines, snapshots, instruments, dividends, calendars) are JSON by default,
an Arrow IPC stream with `Accept: application/vnd.apache.arrow.stream` (zstd-compressed; the fast path
for bulk data), or CSV with `Accept: text/csv`. `?format=json|arrow|csv` overrides the header.

**Normalized schema and units** (`/api/v1`): snake_case names; `ts` = epoch milliseconds UTC and `time` =
the same instant in Asia/Shanghai (ISO 8601 `+08:00` in JSON/CSV, `timestamp[ms, tz=Asia/Shanghai]` in
Arrow); prices and amounts in **yuan**; volumes in **shares** (xtquant's lots x 100); missing values are
null, never 0. Daily bars are stamped 00:00 Asia/Shanghai of the session; intraday bars at their END time.

**Codes** are accepted as `600000.SH`, `sh600000`, `SH600000`, `600000.XSHG`, `600000.SSE` or bare
`600000` (bare digits follow the exchanges' numbering plan for stocks/funds/bonds; indices need a
suffix: `000001.SH` is the SSE Composite, `000001` is Ping An Bank). A code the source does not know is a
404 naming it.

**Dates** (`start`, `end`, ...): `YYYYMMDD`, `YYYYMMDDHHMMSS`, `YYYY-MM-DD` or ISO 8601, Asia/Shanghai
unless an offset is given; a bare date as `end` covers the whole day.

**Errors** always have one shape: `{"error": {"code", "message", "details"}}`, with a stable `code`
(`unknown_code` 404, `invalid_code`/`invalid_period`/`invalid_date`/`invalid_field`/`too_large`/
`validation_error` 422, `unsupported` 501, `source_unavailable`/`source_busy` 503, `source_timeout` 504).

**Compat routes** (`/api/history`, `/api/full_tick`, `/hist_kline`, ...) answer in the shapes that the
qmt-bridge client (QMTClient 2.1.3) and Argus clients read, with xtquant's own field names and units
(volume in lots), over the same services.
"""

TAGS: list[dict[str, Any]] = [
    {"name": "health", "description": "Liveness, readiness and what the active source supports."},
    {"name": "market", "description": "K-lines and live snapshots."},
    {"name": "reference", "description": "Sectors, instruments, instrument types and dividend factors."},
    {"name": "calendar", "description": "Trading days, holidays, previous/next trading day."},
    {"name": "downloads", "description": "History downloads as background jobs, verified when done."},
    {"name": "compat: qmt-bridge", "description": "Routes and shapes read by qmt-bridge's QMTClient 2.1.3."},
    {"name": "compat: argus", "description": "Routes and shapes of the Argus QMT data agent."},
]

#: Every route can answer these; declared so that clients (and schemathesis) know their shape.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": text}
    for status, text in {
        400: "Bad request (e.g. conflicting parameters).",
        404: "Unknown code, sector, job or route.",
        406: "The Accept header names no format this route produces.",
        422: "A parameter value is invalid (code, period, date, field, limits).",
        501: "The active source does not support this.",
        502: "The upstream call failed.",
        503: "The source is not connected or busy; see Retry-After.",
        504: "The upstream call did not answer in time.",
    }.items()
}


#: What the trading routes can answer besides 200 (docs/trading.md, "What happens on every failure").
TRADING_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": text}
    for status, text in {
        400: "Bad request (e.g. both or neither of order_id and client_order_id).",
        404: "No such order, protection or code.",
        409: "Refused in this state: the kill switch is on, a client_order_id was used for another order, "
        "the SDK refused a cancel, a protection is no longer open.",
        422: "Invalid body, or a pre-trade risk rule refused the order (details.rule).",
        503: "The trader is not connected (details.reason) or the lane is busy; see Retry-After.",
        504: "The trading lane did not answer in time.",
    }.items()
}


def tabular(model: type[BaseModel], description: str) -> dict[int | str, dict[str, Any]]:
    """The 200 answer of a tabular route: ``model`` as JSON, or an Arrow IPC stream, or CSV."""
    return {
        200: {
            "model": model,
            "description": description,
            "content": {
                # JSON first: it is the default answer (and tools that read one media type take the first).
                "application/json": {},
                ARROW_STREAM: {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "(Arrow IPC stream: same columns; time as timestamp[ms, tz=Asia/Shanghai])",
                },
                CSV: {"schema": {"type": "string"}, "example": "code,ts,time,...\n"},
            },
        }
    }
