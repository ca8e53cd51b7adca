"""Every REST operation of the gateway as a pure request description plus a decoder.

``Client`` (sync) and ``AsyncClient`` (asyncio) share these functions: each builds a :class:`Call` from the
method's arguments; the two clients only differ in how they send it. Decoding lives here too, so a
DataFrame from either client is the same object type, dtypes and columns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa

ARROW = "application/vnd.apache.arrow.stream"
JSON = "application/json"
LOCAL_TZ = "Asia/Shanghai"
V1 = "/api/v1"


@dataclass(frozen=True)
class Answer:
    """What a decoder sees: status, content type, body bytes."""

    status: int
    content_type: str
    content: bytes

    def json(self) -> Any:
        return orjson.loads(self.content) if self.content else None


@dataclass(frozen=True)
class Call:
    """One HTTP request and how to turn its answer into a Python value."""

    method: str
    path: str
    decode: Callable[[Answer], Any]
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    tabular: bool = False  # Arrow can be asked for; otherwise JSON
    #: HTTP statuses that are an answer rather than an error (e.g. 404 -> None for "maybe" lookups)
    accept_status: tuple[int, ...] = ()
    #: safe to send twice (reads): may take the sync client's keep-alive fast path and be retried once
    idempotent: bool = True


# -- decoding ----------------------------------------------------------------------------------------


def _join(values: str | Iterable[str] | None) -> str | None:
    if values is None:
        return None
    if isinstance(values, str):
        return values
    return ",".join(values)


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


def read_arrow(content: bytes) -> pa.Table:
    return pa.ipc.open_stream(content).read_all()


def table_meta(table: pa.Table) -> dict[str, Any]:
    """The request metadata the gateway put into an Arrow answer (``qmtgate.meta``)."""
    raw = (table.schema.metadata or {}).get(b"qmtgate.meta")
    return json.loads(raw) if raw else {}


def frame(answer: Answer) -> pd.DataFrame:
    """A tabular answer (Arrow or JSON records) as a DataFrame; ``time`` becomes tz-aware Asia/Shanghai."""
    if answer.content_type.startswith(ARROW):
        return read_arrow(answer.content).to_pandas()
    body = answer.json()
    df = pd.DataFrame.from_records(body.get("data") or [])
    if "time" in df.columns and len(df) and isinstance(df["time"].iloc[0], str):
        df["time"] = pd.to_datetime(df["time"], format="ISO8601", utc=True).dt.tz_convert(LOCAL_TZ)
    return df


def table(answer: Answer) -> tuple[pa.Table, dict[str, Any]]:
    """A tabular answer as an Arrow table plus its metadata (JSON answers are converted)."""
    if answer.content_type.startswith(ARROW):
        t = read_arrow(answer.content)
        return t, table_meta(t)
    body = answer.json()
    rows = body.pop("data", []) or []
    return pa.Table.from_pylist(rows), body


def body(answer: Answer) -> Any:
    return answer.json()


def data(answer: Answer) -> Any:
    return answer.json()["data"]


def maybe_data(answer: Answer) -> Any:
    """``data`` of a 200, None for the accepted error statuses (e.g. an unknown code)."""
    return answer.json()["data"] if answer.status < 300 else None


# -- health and capabilities ---------------------------------------------------------------------------


def health() -> Call:
    """Liveness: ``{"status", "source", "version", "time_ms"}``."""
    return Call("GET", f"{V1}/health/live", body)


def ready() -> Call:
    """Readiness (200 or 503, same body): state, executor, quote cache."""
    return Call("GET", f"{V1}/health/ready", body, accept_status=(503,))


def capabilities() -> Call:
    """Markets, periods, formats, limits and features of the gateway's source."""
    return Call("GET", f"{V1}/capabilities", body)


# -- market data ---------------------------------------------------------------------------------------


def klines(
    codes: str | Sequence[str],
    period: str = "1d",
    start: str | None = None,
    end: str | None = None,
    count: int | None = None,
    dividend_type: str = "none",
    fields: str | Sequence[str] | None = None,
    fill_data: bool = True,
) -> Call:
    """K-lines of codes as one long DataFrame (normalized: volume in shares, ``time`` tz-aware)."""
    params = {
        "codes": _join(codes),
        "period": period,
        "start": start,
        "end": end,
        "count": count,
        "dividend_type": dividend_type,
        "fields": _join(fields),
        "fill_data": fill_data,
    }
    return Call("GET", f"{V1}/klines", frame, _clean(params), tabular=True)


def snapshots(
    codes: str | Sequence[str] | None = None,
    *,
    sector: str | None = None,
    markets: str | Sequence[str] | None = None,
    kinds: str | Sequence[str] | None = None,
    fields: str | Sequence[str] | None = None,
) -> Call:
    """Latest L1 snapshots of codes, a sector or whole markets (exactly one of them)."""
    params = {
        "codes": _join(codes),
        "sector": sector,
        "markets": _join(markets),
        "kinds": _join(kinds),
        "fields": _join(fields),
    }
    return Call("GET", f"{V1}/snapshots", frame, _clean(params), tabular=True)


# -- reference -------------------------------------------------------------------------------------------


def sectors() -> Call:
    """Sector names."""
    return Call("GET", f"{V1}/sectors", data)


def sector_members(sector: str) -> Call:
    """Codes of a sector (``NotFound`` for an unknown sector)."""
    return Call("GET", f"{V1}/sectors/{sector}/members", data)


def instruments(codes: str | Sequence[str]) -> Call:
    """Instrument reference rows (name, list date, limits, shares...)."""
    return Call("GET", f"{V1}/instruments", frame, {"codes": _join(codes)}, tabular=True)


def instrument(code: str) -> Call:
    """One instrument's reference fields as a dict."""
    return Call("GET", f"{V1}/instruments/{code}", data)


def instrument_type(code: str) -> Call:
    """``{"code", "kind", "type"}`` where ``type`` is xtquant's ``get_instrument_type`` dict."""
    return Call("GET", f"{V1}/instruments/{code}/type", body)


def dividends(code: str, start: str | None = None, end: str | None = None) -> Call:
    """Ex-rights events of a code."""
    return Call("GET", f"{V1}/dividends/{code}", frame, _clean({"start": start, "end": end}), tabular=True)


# -- calendar --------------------------------------------------------------------------------------------


def trading_dates(
    market: str = "SH", start: str | None = None, end: str | None = None, count: int | None = None
) -> Call:
    """Trading days as a DataFrame (``date``, ``ts``, ``time``)."""
    params = _clean({"market": market, "start": start, "end": end, "count": count})
    return Call("GET", f"{V1}/calendar/trading-dates", frame, params, tabular=True)


def holidays(start: str | None = None, end: str | None = None) -> Call:
    """Exchange holidays as a DataFrame."""
    params = _clean({"start": start, "end": end})
    return Call("GET", f"{V1}/calendar/holidays", frame, params, tabular=True)


def calendar_day(date: str, market: str = "SH", n: int = 1) -> Call:
    """Whether ``date`` trades, and the previous / next trading days."""
    return Call("GET", f"{V1}/calendar/days/{date}", body, {"market": market, "n": n})


# -- downloads -------------------------------------------------------------------------------------------


def submit_download(
    codes: str | Sequence[str], period: str = "1d", start: str | None = None, end: str | None = None
) -> Call:
    """Start a background download job; returns the job dict (``id``, ``state`` ...)."""
    codes_list = [codes] if isinstance(codes, str) else list(codes)
    return Call(
        "POST",
        f"{V1}/downloads",
        body,
        body={"codes": codes_list, "period": period, "start": start, "end": end},
    )


def download_job(job_id: str) -> Call:
    """State and progress of a download job."""
    return Call("GET", f"{V1}/downloads/{job_id}", body)


def download_jobs() -> Call:
    """Recent download jobs, newest first."""
    return Call("GET", f"{V1}/downloads", body)


def cancel_download(job_id: str) -> Call:
    """Cancel a download job."""
    return Call("DELETE", f"{V1}/downloads/{job_id}", body, idempotent=False)


# -- xtquant-shaped routes (used by qmtgate.remote) -----------------------------------------------------


def xt_market_data(
    codes: Sequence[str],
    period: str = "1d",
    start_time: str = "",
    end_time: str = "",
    count: int = -1,
    dividend_type: str = "none",
    fill_data: bool = True,
) -> Call:
    """K-lines in xtquant fields and units: (Arrow table ``code`` + fields, metadata with ``unknown``)."""
    params = {
        "codes": ",".join(codes),
        "period": period,
        "start_time": start_time,
        "end_time": end_time,
        "count": count,
        "dividend_type": dividend_type,
        "fill_data": fill_data,
    }
    return Call("GET", f"{V1}/xt/market_data", table, _clean(params), tabular=True)


def xt_full_tick(codes: Sequence[str]) -> Call:
    """``{code: xtquant tick dict}`` for codes and market tokens; codes without data absent."""
    return Call("POST", f"{V1}/xt/full_tick", data, body={"codes": list(codes)})


def xt_instrument_detail(codes: Sequence[str], iscomplete: bool = False) -> Call:
    """``{code: xtquant detail dict | None}``."""
    return Call(
        "GET",
        f"{V1}/xt/instrument_detail",
        data,
        _clean({"codes": ",".join(codes), "iscomplete": iscomplete}),
    )


def xt_trading_dates(market: str, start_time: str = "", end_time: str = "", count: int = -1) -> Call:
    """Trading days as epoch ms (``get_trading_dates``)."""
    params = {"market": market, "start_time": start_time, "end_time": end_time, "count": count}
    return Call("GET", f"{V1}/xt/trading_dates", data, params)


def xt_trading_calendar(market: str, start_time: str = "", end_time: str = "") -> Call:
    """Trading days as ``YYYYMMDD`` (``get_trading_calendar``)."""
    params = {"market": market, "start_time": start_time, "end_time": end_time}
    return Call("GET", f"{V1}/xt/trading_calendar", data, params)


def xt_holidays() -> Call:
    """Holidays as ``YYYYMMDD`` (``get_holidays``)."""
    return Call("GET", f"{V1}/xt/holidays", data)


def xt_divid_factors(code: str, start_time: str = "", end_time: str = "") -> Call:
    """Ex-rights factors in xtquant columns: (Arrow table with ``date`` + fields, metadata)."""
    params = {"code": code, "start_time": start_time, "end_time": end_time}
    return Call("GET", f"{V1}/xt/divid_factors", table, params, tabular=True)


# -- trading (docs/trading.md; the key needs the ``trade`` scope, the gateway ``trading.enabled``) ---------


#: ``body`` under a name the builders below can use beside their request ``body``
body_of = body


def records(answer: Answer) -> pd.DataFrame:
    """A JSON list of objects (the trading routes' answers) as a DataFrame."""
    return pd.DataFrame.from_records(answer.json() or [])


def new_client_order_id() -> str:
    """A fresh ``client_order_id`` (24 characters at most, as the gateway requires): random, so two
    processes never collide, and made once per order so every retry of that order carries it."""
    import secrets

    return "q" + secrets.token_hex(11)


def trading_place(
    code: str,
    side: str,
    volume: int,
    price: float | None = 0.0,
    *,
    price_type: str = "limit",
    market_type: str | None = None,
    client_order_id: str | None = None,
    strategy_name: str = "",
    remark: str = "",
) -> Call:
    """Place an order: ``side`` "buy" | "sell", ``volume`` in shares, ``price_type`` "limit" | "market" |
    "latest" (a limit at the last price, as xttrader's LATEST_PRICE);
    ``market_type`` a market order's type (``best5_cancel`` by default, ``best5_limit``, ``peer_best``,
    ``own_best``, ``ioc``, ``fok``: docs/trading.md). Answer: ``{"client_order_id", "status": "accepted" |
    "rejected" | "unknown" | "dry_run", "order_id", "seq", "error_msg"?, "replayed"?}``. Without
    ``client_order_id`` one is generated (and returned). The call is safe to resend: the gateway answers a
    repeated ``client_order_id`` with the first outcome and never sends a second order, so a transport
    retry cannot double it."""
    body = {
        **_order(code, side, volume, price, price_type, market_type),
        "strategy_name": strategy_name,
        "remark": remark,
        "client_order_id": client_order_id or new_client_order_id(),
    }
    return Call("POST", f"{V1}/trading/orders", body_of, body=body, idempotent=True)


def _order(
    code: str, side: str, volume: int, price: float | None, price_type: str, market_type: str | None
) -> dict[str, Any]:
    """The order's own fields of a place or check body (``market_type`` only when given; no price is 0,
    which market and latest-price orders ignore and a limit order is refused for)."""
    body: dict[str, Any] = {
        "code": code,
        "side": side,
        "volume": int(volume),
        "price_type": price_type,
        "price": float(price or 0.0),
    }
    if market_type is not None:
        body["market_type"] = market_type
    return body


def trading_check(
    code: str,
    side: str,
    volume: int,
    price: float | None = 0.0,
    *,
    price_type: str = "limit",
    market_type: str | None = None,
) -> Call:
    """Every pre-trade check of an order, as :func:`trading_place` would run it now, with nothing sent:
    ``{"passed": True, "value"}`` or ``{"passed": False, "error": {"code", "message", "details"}}``
    (``details["rule"]`` names a risk rule). Safe to repeat: it claims, counts and sends nothing."""
    body = _order(code, side, volume, price, price_type, market_type)
    return Call("POST", f"{V1}/trading/orders/check", body_of, body=body, idempotent=True)


def trading_cancel(order_id: int | None = None, client_order_id: str | None = None) -> Call:
    """Cancel by the order id or the ``client_order_id``: ``{"order_id", "client_order_id", "cancel":
    "requested"}`` (the outcome arrives as an order event / in :func:`trading_orders`)."""
    body = {"order_id": order_id, "client_order_id": client_order_id}
    return Call(
        "POST", f"{V1}/trading/cancel", body_of, body={k: v for k, v in body.items() if v is not None}
    )


def trading_order(client_order_id: str) -> Call:
    """One order's outcome (``status``, ``order_id``...) and its current state (``order``, an XtOrder dict)."""
    return Call("GET", f"{V1}/trading/orders/{client_order_id}", body_of)


def trading_orders() -> Call:
    """Today's orders (XtOrder columns: ``order_id``, ``stock_code``, ``order_status``, ``order_remark``
    (the client_order_id) ...) as a DataFrame."""
    return Call("GET", f"{V1}/trading/orders", records)


def trading_trades() -> Call:
    """Today's trades (XtTrade columns) as a DataFrame."""
    return Call("GET", f"{V1}/trading/trades", records)


def trading_positions() -> Call:
    """Positions (XtPosition columns: ``stock_code``, ``volume``, ``can_use_volume``, ...) as a DataFrame."""
    return Call("GET", f"{V1}/trading/positions", records)


def trading_asset() -> Call:
    """Cash and asset (XtAsset fields) as a dict."""
    return Call("GET", f"{V1}/trading/asset", body_of)


def trading_status() -> Call:
    """The trading lane: ``connected``, ``account_id``, ``halted`` (the kill switch, kept across gateway
    restarts) and ``halted_since_ms``, ``dry_run``, ``connect_error``, ``risk``."""
    return Call("GET", f"{V1}/trading/status", body_of)


def trading_rows(what: str) -> Call:
    """``orders`` / ``trades`` / ``positions`` as a list of dicts (what the drop-in turns into objects)."""
    return Call("GET", f"{V1}/trading/{what}", body_of)


#: The operations both clients expose, by name (one set of method names for sync and async).
OPERATIONS: tuple[Callable[..., Call], ...] = (
    health, ready, capabilities, klines, snapshots, sectors, sector_members, instruments, instrument,
    instrument_type, dividends, trading_dates, holidays, calendar_day, submit_download, download_job,
    download_jobs, cancel_download, xt_market_data, xt_full_tick, xt_instrument_detail, xt_trading_dates,
    xt_trading_calendar, xt_holidays, xt_divid_factors, trading_place, trading_check, trading_cancel,
    trading_order, trading_orders, trading_trades, trading_positions, trading_asset, trading_status,
)  # fmt: skip
