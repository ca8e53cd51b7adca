"""Trading tools, listed only when the gateway trades AND ``qmtgate mcp --allow-trading`` was given.

Placing is two calls. The first (no ``confirm_token``) sends nothing: it runs the gateway's own
pre-trade checks on the order (``POST /api/v1/trading/orders/check``) and shows them with the instrument,
the quote, the cash and the position, in a preview with a token bound to exactly those arguments. The
second call, with the same arguments and the token, places the order through
``POST /api/v1/trading/orders``: the gateway's risk checks, kill switch and audit trail apply
as to any client, with ``client_order_id`` derived from the token, so a repeated confirmation is answered
from the gateway's idempotency ledger (``replayed``) and never places a second order.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from qmtgate.mcp.gateway import Gateway, plain, records
from qmtgate.mcp.names import NameIndex, resolve_codes
from qmtgate.mcp.summary import quote_row

TRADE_READ = ToolAnnotations(read_only_hint=True, open_world_hint=True)
#: How long a preview's token can confirm it.
TOKEN_TTL_SECONDS = 300.0
STRATEGY = "qmtgate-mcp"


@dataclass
class Pending:
    order: dict[str, Any]
    client_order_id: str
    expires: float


@dataclass
class Confirmations:
    """Previewed orders by token; a token confirms only its own order and expires."""

    ttl: float = TOKEN_TTL_SECONDS
    pending: dict[str, Pending] = field(default_factory=dict)

    def issue(self, order: dict[str, Any]) -> tuple[str, str]:
        self._expire()
        token = secrets.token_hex(10)  # 20 hex chars: [A-Za-z0-9_-]{1,24} once prefixed "m"
        coid = "m" + token
        self.pending[token] = Pending(dict(order), coid, time.monotonic() + self.ttl)
        return token, coid

    def check(self, token: str, order: dict[str, Any]) -> str:
        self._expire()
        found = self.pending.get(token)
        if found is None:
            raise ToolError(
                "the confirm_token is unknown or expired; call place_order without it for a new preview "
                "(code: confirmation_invalid)"
            )
        if found.order != order:
            raise ToolError(
                "the order differs from the one previewed with this token: "
                f"previewed {found.order}, now {order}; nothing was sent (code: confirmation_mismatch)"
            )
        return found.client_order_id

    def _expire(self) -> None:
        now = time.monotonic()
        for token in [t for t, p in self.pending.items() if p.expires < now]:
            del self.pending[token]


async def trading_enabled(gateway: Gateway) -> tuple[bool, str]:
    """Whether the gateway trades for this key: ``GET /api/v1/trading/status`` answers 200."""
    try:
        status = await gateway.rest("GET", "/trading/status")
    except ToolError as e:
        return False, str(e)
    return True, "connected" if status.get("connected") else f"not connected: {status.get('connect_error')}"


def register_trading_tools(server: MCPServer, gateway: Gateway, names: NameIndex) -> list[str]:
    confirmations = Confirmations()

    async def preview(order: dict[str, Any]) -> dict[str, Any]:
        """What the user confirms: the instrument, the quote, cash and position, and the gateway's own
        verdict on the order (``POST /trading/orders/check``: every risk rule a placement runs, nothing
        sent), so a warning here is exactly the refusal the confirmed order would meet now."""
        code = order["code"]
        detail = plain(await gateway.call("instrument", code))
        quote_df = await gateway.call("snapshots", [code])
        quote = quote_row(records(quote_df)[0]) if len(quote_df) else None
        asset = await gateway.rest("GET", "/trading/asset")
        positions = await gateway.rest("GET", "/trading/positions")
        position = next((p for p in positions if p.get("stock_code") == code), None)
        check = await gateway.rest("POST", "/trading/orders/check", body=order)
        error = check.get("error") or {}
        rule = (error.get("details") or {}).get("rule") or error.get("code")
        warnings = (
            [] if check.get("passed") else [f"{error.get('message')} (the gateway would refuse: {rule})"]
        )
        value = check.get("value")
        if value is None:  # refused before it was valued: the order's face value
            price = order["price"] if order["price_type"] == "limit" else detail.get("limit_up") or 0.0
            value = round(price * order["volume"], 2)
        return {
            "instrument": {
                k: detail.get(k)
                for k in ("code", "name", "pre_close", "limit_up", "limit_down", "price_tick")
            },
            "quote": quote,
            "estimated_value": value,
            "cash_available": asset.get("cash"),
            "position": plain(position),
            "check": {"passed": bool(check.get("passed")), "rule": rule},
            "warnings": warnings,
        }

    @server.tool(
        name="place_order",
        title="下单（两步确认）/ Place an order (two-step)",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True),
        description=(
            "下单分两步。第一步不带 confirm_token：不发送任何委托，只返回预览（证券、行情、涨跌停、估算金额、可用资金、"
            "持仓、风险提示）和 confirm_token；请把预览给用户确认。第二步用完全相同的参数加上 confirm_token 才真正下单，"
            "网关的风控、熔断和审计全部生效。令牌5分钟内有效，重复确认不会重复下单。\n"
            "Placing an order takes two calls. Without confirm_token nothing is sent: you get a preview "
            "(instrument, quote, price limits, estimated value, cash, position, warnings) and a confirm_token; "
            "show the preview to the user. Only a second call with the same arguments plus that confirm_token "
            "places the order, under the gateway's risk checks, kill switch and audit trail. Tokens last 5 "
            "minutes; confirming twice never places a second order."
        ),
    )
    async def place_order(
        code: Annotated[str, Field(description="证券代码或名称 / code or name", min_length=1, max_length=40)],
        side: Annotated[Literal["buy", "sell"], Field(description="买卖方向 / buy or sell")],
        volume: Annotated[int, Field(gt=0, le=1_000_000_000, description="数量（股）/ shares")],
        price_type: Annotated[
            Literal["limit", "market"],
            Field(description="限价 limit / 市价 market (最优五档即时成交剩余撤销)"),
        ] = "limit",
        price: Annotated[
            float | None, Field(gt=0, le=1_000_000, description="限价（元）/ limit price, yuan")
        ] = None,
        confirm_token: Annotated[
            str | None,
            Field(description="第一步返回的确认令牌 / the token from the preview", max_length=64),
        ] = None,
    ) -> dict[str, Any]:
        if price_type == "limit" and price is None:
            raise ToolError("a limit order needs a price (code: bad_request)")
        wanted, _ = await resolve_codes(names, [code])
        canonical = (await gateway.call("instrument", wanted[0]))["code"]
        order = {
            "code": canonical,
            "side": side,
            "volume": volume,
            "price_type": price_type,
            "price": float(price) if price_type == "limit" and price is not None else 0.0,
        }
        if confirm_token is None:
            shown = await preview(order)
            token, _ = confirmations.issue(order)
            return {
                "status": "preview",
                "sent": False,
                "order": order,
                **shown,
                "confirm_token": token,
                "expires_in_seconds": int(confirmations.ttl),
                "next": "nothing was sent. Show this preview to the user; to place it, call place_order again "
                "with the same arguments and confirm_token.",
            }
        coid = confirmations.check(confirm_token, order)
        body = {
            **order,
            "strategy_name": STRATEGY,
            "remark": "qmtgate mcp: confirmed after preview",
            "client_order_id": coid,
        }
        answer = await gateway.rest("POST", "/trading/orders", body=body)
        return {"sent": True, "order": order, **plain(answer)}

    @server.tool(
        name="cancel_order",
        title="撤单 / Cancel an order",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True),
        description=(
            "撤单：给 order_id 或 client_order_id 之一。\n"
            "Cancel an order by order_id or client_order_id (exactly one)."
        ),
    )
    async def cancel_order(
        order_id: Annotated[int | None, Field(gt=0, le=2**63 - 1, description="委托编号 / order id")] = None,
        client_order_id: Annotated[
            str | None, Field(pattern=r"^[A-Za-z0-9_-]{1,24}$", description="客户委托号 / client order id")
        ] = None,
    ) -> dict[str, Any]:
        if (order_id is None) == (client_order_id is None):
            raise ToolError("give exactly one of order_id and client_order_id (code: bad_request)")
        body = {"order_id": order_id} if order_id is not None else {"client_order_id": client_order_id}
        return plain(await gateway.rest("POST", "/trading/cancel", body=body))

    async def listing(path: str) -> dict[str, Any]:
        rows = await gateway.rest("GET", path)
        return {"count": len(rows), "rows": plain(rows)}

    @server.tool(
        name="get_orders",
        title="当日委托 / Today's orders",
        annotations=TRADE_READ,
        description="查询当日委托。\nToday's orders of the account.",
    )
    async def get_orders() -> dict[str, Any]:
        return await listing("/trading/orders")

    @server.tool(
        name="get_trades",
        title="当日成交 / Today's trades",
        annotations=TRADE_READ,
        description="查询当日成交。\nToday's trades of the account.",
    )
    async def get_trades() -> dict[str, Any]:
        return await listing("/trading/trades")

    @server.tool(
        name="get_positions",
        title="持仓 / Positions",
        annotations=TRADE_READ,
        description="查询持仓（can_use_volume 为今日可卖数量）。\nPositions (can_use_volume: sellable today).",
    )
    async def get_positions() -> dict[str, Any]:
        return await listing("/trading/positions")

    @server.tool(
        name="get_asset",
        title="资金 / Cash and asset",
        annotations=TRADE_READ,
        description="查询资金：可用资金、冻结资金、市值、总资产。\nCash, frozen cash, market value, total asset.",
    )
    async def get_asset() -> dict[str, Any]:
        return plain(await gateway.rest("GET", "/trading/asset"))

    @server.tool(
        name="get_trading_status",
        title="交易通道状态 / Trading status",
        annotations=TRADE_READ,
        description=(
            "交易通道状态：是否连接、账户、是否熔断(halted)、是否演练(dry_run)、风控参数。\n"
            "Trading lane status: connected, account, kill switch (halted), dry run, risk settings."
        ),
    )
    async def get_trading_status() -> dict[str, Any]:
        return plain(await gateway.rest("GET", "/trading/status"))

    return [
        "place_order",
        "cancel_order",
        "get_orders",
        "get_trades",
        "get_positions",
        "get_asset",
        "get_trading_status",
    ]
