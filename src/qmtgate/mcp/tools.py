"""The read tools: quotes, K-lines, instruments, sectors, calendar, market status, recordings, downloads.

Each tool is a thin, documented shape over one or a few gateway routes. Arguments are validated by the SDK
from the signatures (JSON schema with the ``Field`` constraints); what only the gateway knows (an unknown
code, a range too large) comes back as the gateway's own error. Answers are small JSON objects: rows are
capped (with ``truncated`` and the total) and long K-line ranges come with a summary, so an assistant's
context is not flooded by a year of minute bars.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from qmtgate.mcp.gateway import Gateway, plain, records
from qmtgate.mcp.names import NameIndex, resolve_codes
from qmtgate.mcp.summary import breadth, kline_summary, quote_row
from qmtgate.vocab import CST, OPEN_PHASES, phase_name

READ = ToolAnnotations(read_only_hint=True, open_world_hint=True)

Period = Literal["1m", "5m", "15m", "30m", "60m", "1d", "1w", "1mon", "1q", "1hy", "1y"]
Adjust = Literal["none", "front", "back", "front_ratio", "back_ratio"]
Market = Literal["SH", "SZ", "BJ"]

#: The index whose snapshot tells a market's clock and phase.
MARKET_INDEX: dict[str, str] = {"SH": "000001.SH", "SZ": "399001.SZ", "BJ": "899050.BJ"}

CodesArg = Annotated[
    list[str] | None,
    Field(
        description="证券代码或中文名称 / codes or Chinese names, e.g. ['600519', '000001.SZ', '贵州茅台']",
        min_length=1,
        max_length=200,
    ),
]
CodeArg = Annotated[
    str,
    Field(
        description="证券代码或中文名称 / a code (600519, 600519.SH, sh600519) or a Chinese name (贵州茅台)",
        min_length=1,
        max_length=40,
    ),
]
TimeArg = Annotated[
    str | None,
    Field(
        description="时间 YYYYMMDD / YYYYMMDDHHMMSS / ISO 8601 (北京时间) / time, China time", max_length=40
    ),
]


def _one(codes: list[str], what: str) -> str:
    if len(codes) != 1:
        raise ToolError(f"{what} takes one code (code: bad_request)")
    return codes[0]


def register_read_tools(server: MCPServer, gateway: Gateway, names: NameIndex) -> list[str]:
    """Add the read tools to ``server``; returns their names."""

    async def names_of(codes: list[str]) -> dict[str, str]:
        if not codes:
            return {}
        df = await gateway.call("instruments", codes)
        return {c: n for c, n in zip(df["code"], df["name"], strict=True) if isinstance(n, str)}

    @server.tool(
        name="get_quote",
        title="行情快照 / Quote snapshot",
        annotations=READ,
        description=(
            "查询最新行情快照：给出代码/名称列表，或一个板块名（如 沪深300）。返回最新价、涨跌、涨跌幅、开高低、"
            "昨收、成交量(股)、成交额(元)、买一卖一、交易阶段；板块另有涨跌家数汇总，按 sort_by 排序截取 limit 行。\n"
            "Latest quote snapshots of codes/names or of a whole sector (e.g. 沪深300): last price, change, "
            "change %, open/high/low, previous close, volume (shares), amount (yuan), best bid/ask, trading "
            "phase. A sector also gets a breadth summary (up/down/flat) and is sorted by sort_by, cut to limit."
        ),
    )
    async def get_quote(
        codes: CodesArg = None,
        sector: Annotated[
            str | None, Field(description="板块名 / sector name (see list_sectors)", max_length=60)
        ] = None,
        sort_by: Annotated[
            Literal["change_pct", "amount", "volume", "code"], Field(description="排序 / sort key")
        ] = "change_pct",
        descending: Annotated[bool, Field(description="降序 / largest first")] = True,
        limit: Annotated[int, Field(ge=1, le=200, description="最多返回行数 / most rows returned")] = 30,
    ) -> dict[str, Any]:
        if (codes is None) == (sector is None):
            raise ToolError("give either codes or sector, not both and not neither (code: bad_request)")
        resolved: dict[str, str] = {}
        if codes is not None:
            wanted, resolved = await resolve_codes(names, codes)
            df = await gateway.call("snapshots", wanted)
        else:
            df = await gateway.call("snapshots", sector=sector)
        rows = [quote_row(r) for r in records(df)]
        out: dict[str, Any] = {}
        if sector is not None:
            members = list(await gateway.call("sector_members", sector))
            quoted = {r["code"] for r in rows}
            missing = [c for c in members if c not in quoted]
            out["sector"] = sector
            out["summary"] = {"members": len(members), **breadth(rows), "without_quote": len(missing)}
            if missing:
                out["without_quote"] = missing[:20]
            present = [r for r in rows if r[sort_by] is not None]
            absent = [r for r in rows if r[sort_by] is None]
            present.sort(key=lambda r: r[sort_by], reverse=descending)
            rows = present + absent
        shown = rows[:limit]
        named = await names_of([r["code"] for r in shown])
        for r in shown:
            r["name"] = named.get(r["code"])
        out.update(count=len(rows), truncated=len(rows) > len(shown), rows=shown)
        if resolved:
            out["resolved_names"] = resolved
        return out

    @server.tool(
        name="get_klines",
        title="K线 / K-lines",
        annotations=READ,
        description=(
            "查询一只证券的K线：周期 period，区间 start/end 或最近 count 根，复权 adjust（none 不复权, front 前复权, "
            "back 后复权, front_ratio/back_ratio 等比）。先给区间汇总（首末时间、开收、最高最低及时间、区间涨跌幅、"
            "总成交量/额），再给最近 max_rows 根K线（超出则 truncated=true）。成交量单位为股。\n"
            "K-lines of one code: period, range (start/end) or the last count bars, price adjustment. Returns a "
            "summary over the whole range first (first/last time, first open, last close, high/low and when, "
            "return %, total volume/amount), then at most max_rows of the newest bars (truncated=true when cut). "
            "Volume in shares. Without start and count: the last max_rows bars."
        ),
    )
    async def get_klines(
        code: CodeArg,
        period: Annotated[Period, Field(description="周期 / period")] = "1d",
        start: TimeArg = None,
        end: TimeArg = None,
        count: Annotated[
            int | None, Field(ge=1, le=100_000, description="最近N根 / last N bars ending at end")
        ] = None,
        adjust: Annotated[Adjust, Field(description="复权方式 / price adjustment")] = "none",
        max_rows: Annotated[
            int, Field(ge=0, le=1000, description="最多返回K线行数 / most bars returned")
        ] = 60,
    ) -> dict[str, Any]:
        wanted, resolved = await resolve_codes(names, [code])
        if start is None and count is None:
            count = max(max_rows, 1)
        df = await gateway.call(
            "klines", wanted, period=period, start=start, end=end, count=count, dividend_type=adjust
        )
        canonical = str(df["code"].iloc[0]) if len(df) else wanted[0]
        shown = df.iloc[len(df) - max_rows :] if max_rows else df.iloc[0:0]
        out: dict[str, Any] = {
            "code": canonical,
            "period": period,
            "adjust": adjust,
            "summary": kline_summary(df),
            "rows_total": len(df),
            "truncated": len(shown) < len(df),
            "rows": records(
                shown,
                ["time", "open", "high", "low", "close", "pre_close", "volume", "amount", "suspend_flag"],
            ),
        }
        if resolved:
            out["resolved_names"] = resolved
        return out

    @server.tool(
        name="get_instrument",
        title="证券资料 / Instrument detail",
        annotations=READ,
        description=(
            "查询证券基本资料：名称、交易所、类别、上市日、昨收、涨停价、跌停价、最小变动价位、流通股本、总股本、停牌。\n"
            "Instrument detail: name, exchange, kind, list date, previous close, up/down limit prices, price "
            "tick, float and total shares, suspension."
        ),
    )
    async def get_instrument(code: CodeArg) -> dict[str, Any]:
        wanted, resolved = await resolve_codes(names, [code])
        detail = plain(await gateway.call("instrument", _one(wanted, "get_instrument")))
        if resolved:
            detail["resolved_names"] = resolved
        return detail

    @server.tool(
        name="list_sectors",
        title="板块列表 / Sectors",
        annotations=READ,
        description=(
            "列出网关可用的板块名（如 沪深A股、沪深300、SW1银行），可按关键字过滤。\n"
            "Sector names the gateway serves (e.g. 沪深A股, 沪深300, SW1银行), optionally filtered by a substring."
        ),
    )
    async def list_sectors(
        contains: Annotated[str | None, Field(description="名称包含 / name contains", max_length=40)] = None,
    ) -> dict[str, Any]:
        sectors = list(await gateway.call("sectors"))
        if contains:
            sectors = [s for s in sectors if contains.lower() in s.lower()]
        return {"count": len(sectors), "sectors": sectors}

    @server.tool(
        name="get_sector_members",
        title="板块成分 / Sector members",
        annotations=READ,
        description=(
            "查询板块成分股代码（可附名称），最多返回 limit 个。\n"
            "Codes in a sector (with names if asked), at most limit of them."
        ),
    )
    async def get_sector_members(
        sector: Annotated[str, Field(description="板块名 / sector name", min_length=1, max_length=60)],
        with_names: Annotated[bool, Field(description="附带名称 / include names")] = False,
        limit: Annotated[int, Field(ge=1, le=10_000, description="最多返回个数 / most codes returned")] = 500,
    ) -> dict[str, Any]:
        members = list(await gateway.call("sector_members", sector))
        shown = members[:limit]
        out: dict[str, Any] = {
            "sector": sector,
            "count": len(members),
            "truncated": len(shown) < len(members),
        }
        if with_names:
            named = await names_of(shown) if shown else {}
            out["members"] = [{"code": c, "name": named.get(c)} for c in shown]
        else:
            out["members"] = shown
        return out

    @server.tool(
        name="get_trading_calendar",
        title="交易日历 / Trading calendar",
        annotations=READ,
        description=(
            "查询交易日与节假日：区间 start/end（YYYYMMDD），或截止 end 的最近 count 个交易日。\n"
            "Trading days (and exchange holidays) between start and end (YYYYMMDD), or the last count trading "
            "days up to end."
        ),
    )
    async def get_trading_calendar(
        market: Annotated[Market, Field(description="市场 / market")] = "SH",
        start: TimeArg = None,
        end: TimeArg = None,
        count: Annotated[int | None, Field(ge=1, le=5000, description="最近N个交易日 / last N days")] = None,
    ) -> dict[str, Any]:
        if start is None and count is None:
            count = 20
        days = await gateway.call("trading_dates", market, start=start, end=end, count=count)
        dates = [str(d) for d in days["date"]] if len(days) else []
        out: dict[str, Any] = {"market": market, "count": len(dates), "trading_days": dates}
        if dates:
            holidays = await gateway.call(
                "holidays", start=dates[0].replace("-", ""), end=dates[-1].replace("-", "")
            )
            out["holidays"] = [str(d) for d in holidays["date"]] if len(holidays) else []
        return out

    async def market_clock(market: str) -> dict[str, Any] | None:
        """The market's own time and phase, from its index's snapshot (the source's clock, not ours)."""
        df = await gateway.call("snapshots", [MARKET_INDEX[market]])
        if not len(df):
            return None
        row = records(df)[0]
        return {"time": plain(row.get("time")), "phase": row.get("phase")}

    @server.tool(
        name="is_market_open",
        title="是否开市 / Is the market open",
        annotations=READ,
        description=(
            "不给日期：按行情源的时钟回答现在是否在交易（集合竞价/连续竞价），当前交易阶段、今天是否交易日、前后交易日。"
            "给日期（YYYYMMDD）：该日是否交易日及前后交易日。\n"
            "Without a date: whether the market trades right now by the data source's own clock (auction or "
            "continuous session), the current phase, and whether today is a trading day with the previous and "
            "next one. With a date (YYYYMMDD): whether that day trades, and its neighbours."
        ),
    )
    async def is_market_open(
        date: Annotated[str | None, Field(description="日期 / date YYYYMMDD", max_length=10)] = None,
        market: Annotated[Market, Field(description="市场 / market")] = "SH",
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"market": market}
        clock = None
        if date is None:
            clock = await market_clock(market)
            if clock is None or clock["time"] is None:
                raise ToolError(
                    f"no quote for {MARKET_INDEX[market]}: the market clock is unknown (code: no_data)"
                )
            now = dt.datetime.fromisoformat(clock["time"]).astimezone(CST)
            date = now.strftime("%Y%m%d")
            out["market_time"] = now.isoformat()
        day = await gateway.call("calendar_day", date, market=market)
        out.update(
            date=day["date"],
            is_trading_day=day["is_trading_day"],
            previous_trading_day=day["previous_trading_day"],
            next_trading_day=day["next_trading_day"],
        )
        if clock is not None:
            phase = clock["phase"]
            out["phase"] = phase
            out["phase_name"] = phase_name(phase)
            out["open_now"] = bool(day["is_trading_day"] and phase in OPEN_PHASES)
        return out

    @server.tool(
        name="get_market_status",
        title="网关与行情源状态 / Market data status",
        annotations=READ,
        description=(
            "网关与行情源状态：数据源（simulated 为模拟盘、xtdata 为真实 QMT）、是否连接/就绪、行情缓存是否实时、"
            "最近一次推送距今秒数、行情是否陈旧（交易时段内无推送）、市场时钟与版本。\n"
            "Gateway and data-source status: source (simulated = the built-in simulator, xtdata = real QMT), "
            "connected/ready, whether the quote cache is live, seconds since the last push, staleness (no "
            "quotes during trading hours), the market clock and the gateway version."
        ),
    )
    async def get_market_status() -> dict[str, Any]:
        live = await gateway.rest("GET", "/health/live")
        ready = await gateway.rest("GET", "/health/ready", accept_status=(503,))
        quotes = ready.get("quotes") or {}
        last_push = quotes.get("last_push_ms")
        message = ready.get("message")
        stale = bool(message and str(message).startswith("no quotes during trading hours"))
        source = ready.get("source")
        out = {
            "source": source,
            "simulated": source == "simulated",
            "replay": source == "replay",
            "real": source not in ("simulated", "replay"),
            "version": live.get("version"),
            "state": ready.get("state"),
            "connected": ready.get("connected"),
            "ready": ready.get("ready"),
            "message": message,
            "note": ready.get("note"),
            "stale": stale,
            "quote_cache_live": quotes.get("live"),
            "quote_cache_codes": quotes.get("codes"),
            "seconds_since_last_push": round((live["time_ms"] - last_push) / 1000, 3) if last_push else None,
        }
        clock = await market_clock("SH") if ready.get("connected") else None
        if clock is not None:
            out["market_time"] = clock["time"]
            out["phase_name"] = phase_name(clock["phase"])
        return out

    @server.tool(
        name="get_recorded_data",
        title="录制数据 / Recorded data",
        annotations=READ,
        description=(
            "读取网关录制的数据（需网关配置了录制库）：kind=days 录制的交易日，klines 录制的1分钟K线，ticks 录制的快照。"
            "返回最近 max_rows 行。\n"
            "Data the gateway recorded (needs a recording on the gateway): kind=days the recorded sessions, "
            "klines the recorded 1-minute bars, ticks the recorded snapshots; the newest max_rows rows."
        ),
    )
    async def get_recorded_data(
        kind: Annotated[Literal["days", "klines", "ticks"], Field(description="数据类别 / what to read")],
        codes: CodesArg = None,
        start: TimeArg = None,
        end: TimeArg = None,
        count: Annotated[
            int | None, Field(ge=1, le=100_000, description="每个代码最近N行 / last N per code")
        ] = None,
        max_rows: Annotated[int, Field(ge=1, le=1000, description="最多返回行数 / most rows returned")] = 100,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if kind != "days":
            if not codes:
                raise ToolError(f"kind={kind} needs codes (code: bad_request)")
            wanted, _ = await resolve_codes(names, codes)
            params = {"codes": ",".join(wanted), "start": start, "end": end, "count": count}
            if start is None and count is None:
                params["count"] = max_rows
        df = await gateway.rest("GET", f"/recorded/{kind}", params=params, tabular=True)
        shown = df.iloc[max(0, len(df) - max_rows) :]
        return {
            "kind": kind,
            "rows_total": len(df),
            "truncated": len(shown) < len(df),
            "rows": records(shown),
        }

    @server.tool(
        name="list_download_jobs",
        title="下载任务 / Download jobs",
        annotations=READ,
        description=(
            "查询历史数据下载任务：给 job_id 查单个任务的状态与进度，否则列出最近的任务。\n"
            "History download jobs: one job's state and progress by job_id, or the recent jobs."
        ),
    )
    async def list_download_jobs(
        job_id: Annotated[str | None, Field(description="任务ID / job id", max_length=64)] = None,
    ) -> dict[str, Any]:
        if job_id is not None:
            return plain(await gateway.call("download_job", job_id))
        body = await gateway.call("download_jobs")
        return {"count": body.get("count"), "jobs": plain(body.get("data", []))}

    @server.tool(
        name="start_download",
        title="下载历史数据 / Start a download",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True),
        description=(
            "让网关在后台下载历史K线到 QMT 本地（分钟线在下载前为空）。返回任务，用 list_download_jobs 跟踪进度。\n"
            "Start a background job on the gateway that downloads history into QMT's local store (minute bars "
            "are empty until downloaded). Returns the job; follow it with list_download_jobs."
        ),
    )
    async def start_download(
        codes: Annotated[
            list[str],
            Field(description="证券代码或名称 / codes or names", min_length=1, max_length=500),
        ],
        period: Annotated[Period, Field(description="周期 / period")] = "1d",
        start: TimeArg = None,
        end: TimeArg = None,
    ) -> dict[str, Any]:
        wanted, _ = await resolve_codes(names, codes)
        return plain(await gateway.call("submit_download", wanted, period=period, start=start, end=end))

    @server.tool(
        name="cancel_download",
        title="取消下载 / Cancel a download",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True),
        description="取消一个排队或运行中的下载任务。\nCancel a queued or running download job.",
    )
    async def cancel_download(
        job_id: Annotated[str, Field(description="任务ID / job id", min_length=1, max_length=64)],
    ) -> dict[str, Any]:
        return plain(await gateway.call("cancel_download", job_id))

    return [
        "get_quote",
        "get_klines",
        "get_instrument",
        "list_sectors",
        "get_sector_members",
        "get_trading_calendar",
        "is_market_open",
        "get_market_status",
        "get_recorded_data",
        "list_download_jobs",
        "start_download",
        "cancel_download",
    ]
