"""Build and run the MCP server: tools, resources and prompts over one :class:`Gateway`.

``build_server`` is separate from running so the tool set is decided once, before any client connects:
trading tools exist only when ``allow_trading`` (``--allow-trading``) and the gateway answered
``/api/v1/trading/status`` for this key. A client therefore never sees a tool it cannot use.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.transport_security import TransportSecuritySettings

from qmtgate.mcp.gateway import Gateway, GatewayConfig
from qmtgate.mcp.names import NameIndex
from qmtgate.mcp.tools import register_read_tools
from qmtgate.mcp.trading import register_trading_tools, trading_enabled

logger = logging.getLogger("qmtgate.mcp")

INSTRUCTIONS = (
    "qmtgate: A-share market data (and, when enabled, trading) from a qmtgate gateway in front of QMT. "
    "Codes are 6 digits with a market suffix (600519.SH, 000001.SZ, 430047.BJ); bare digits and Chinese "
    "names are accepted. Prices in yuan, volume in shares, times in China time (UTC+8). Call "
    "get_market_status first to know whether the data is simulated or real and live or stale. "
    "qmtgate：通过 qmtgate 网关读取A股行情（开启时可交易）。代码如 600519.SH，也可用6位数字或中文名称；"
    "价格单位元，成交量单位股，时间为北京时间。先调用 get_market_status 确认数据是模拟还是真实、是否实时。"
)


@dataclass
class Built:
    server: MCPServer
    gateway: Gateway
    tools: list[str]
    trading: bool
    notes: list[str] = field(default_factory=list)


async def build_server(config: GatewayConfig, *, allow_trading: bool = False) -> Built:
    """The MCP server over the gateway at ``config``; probes the gateway's trading routes when allowed."""
    gateway = Gateway(config)
    names = NameIndex(gateway)
    server = MCPServer(
        "qmtgate",
        title="qmtgate A-share market data",
        instructions=INSTRUCTIONS,
        version=_version(),
        log_level="WARNING",
    )
    tools = register_read_tools(server, gateway, names)
    notes: list[str] = []
    trading = False
    if allow_trading:
        trading, why = await trading_enabled(gateway)
        if trading:
            tools += register_trading_tools(server, gateway, names)
            notes.append(f"trading tools on (gateway trading lane {why})")
        else:
            notes.append(f"--allow-trading given, but the gateway does not trade for this key: {why}")
    _resources(server, gateway)
    _prompts(server)
    return Built(server, gateway, tools, trading, notes)


def _resources(server: MCPServer, gateway: Gateway) -> None:
    @server.resource(
        "qmtgate://sectors",
        name="sectors",
        title="板块列表 / Sector list",
        description="网关可用的全部板块名 / every sector name the gateway serves (JSON list)",
        mime_type="application/json",
    )
    async def sectors() -> str:
        try:
            return json.dumps(list(await gateway.call("sectors")), ensure_ascii=False)
        except ToolError as e:
            raise ResourceError(str(e)) from None

    @server.resource(
        "qmtgate://capabilities",
        name="capabilities",
        title="网关能力 / Gateway capabilities",
        description="数据源、市场、周期、复权方式与批量上限 / source, markets, periods, adjustments, batch limits",
        mime_type="application/json",
    )
    async def capabilities() -> str:
        try:
            return json.dumps(await gateway.call("capabilities"), ensure_ascii=False)
        except ToolError as e:
            raise ResourceError(str(e)) from None


def _prompts(server: MCPServer) -> None:
    @server.prompt(
        name="analyze_stock",
        title="个股分析 / Analyze a stock",
        description="看一只股票的行情、近期K线和基本资料 / quote, recent K-lines and reference data of one stock",
    )
    def analyze_stock(code: str) -> str:
        return (
            f"请分析 {code}：先用 get_market_status 确认数据来源与是否实时；再用 get_quote 看最新行情，"
            f"get_instrument 看涨跌停与股本，get_klines（period=1d, adjust=front, count=120）看近半年走势，"
            "根据汇总说明区间涨跌幅、最高最低点和成交量变化。不要编造数据。\n"
            f"Analyze {code}: check get_market_status (simulated or real, live or stale), then get_quote, "
            "get_instrument (limits, shares) and get_klines (period=1d, adjust=front, count=120); report the "
            "range return, the high and low and how volume changed, from the tools' answers only."
        )

    @server.prompt(
        name="market_overview",
        title="市场概览 / Market overview",
        description="今日市场概览：是否开市、主要指数、沪深300涨跌家数 / today's market at a glance",
    )
    def market_overview() -> str:
        return (
            "请给出今日市场概览：用 is_market_open 判断是否开市及交易阶段；用 get_quote 查询 000001.SH、399001.SZ、"
            "399006.SZ 三大指数；用 get_quote(sector='沪深300', limit=10) 看涨跌家数与涨幅前十。注明数据是否为模拟。\n"
            "Give today's market overview: is_market_open (phase), get_quote of 000001.SH, 399001.SZ and "
            "399006.SZ, and get_quote(sector='沪深300', limit=10) for breadth and the top gainers. Say whether "
            "the data is simulated."
        )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qmtgate")
    except PackageNotFoundError:
        return "0"


def _loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost")


async def serve(
    config: GatewayConfig,
    *,
    transport: Literal["stdio", "http"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    path: str = "/mcp",
    allow_trading: bool = False,
) -> None:
    """Run until the client goes away (stdio) or the process is stopped (HTTP)."""
    built = await build_server(config, allow_trading=allow_trading)
    for note in built.notes:
        print(f"qmtgate mcp: {note}", file=sys.stderr, flush=True)
    try:
        if transport == "stdio":
            await built.server.run_stdio_async()
        else:
            allowed = [f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")]
            print(
                f"qmtgate mcp: streamable HTTP on http://{host}:{port}{path} ({len(built.tools)} tools)",
                file=sys.stderr,
                flush=True,
            )
            await built.server.run_streamable_http_async(
                host=host,
                port=port,
                streamable_http_path=path,
                transport_security=TransportSecuritySettings(
                    enable_dns_rebinding_protection=True,
                    allowed_hosts=allowed,
                    allowed_origins=[f"http://{a}" for a in allowed],
                ),
            )
    finally:
        await built.gateway.aclose()
