"""``/api/v1/trading/*``: orders, cancels, account queries, the kill switch (docs/trading.md).

Mounted only when ``trading.enabled``. Every route needs the ``trade`` scope (``admin`` does not imply
it); halt/resume need ``admin`` too. With auth off the routes refuse every request unless
``trading.allow_loopback_without_auth`` is on, which the gateway accepts only when bound to loopback.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from qmtgate.api.openapi import TRADING_ERRORS
from qmtgate.api.responses import OrjsonResponse
from qmtgate.errors import BadRequest, Forbidden, SourceUnavailable
from qmtgate.security.deps import request_key, scope_refusal
from qmtgate.source.trading.service import TradingService


def _trading_gate(scope: str) -> Any:
    async def check(request: Request) -> None:
        guard = getattr(request.app.state, "security", None)
        if guard is None or not guard.active:
            if not request.app.state.settings.trading.allow_loopback_without_auth:
                raise Forbidden(
                    "trading routes need API keys with the 'trade' scope (auth is off); for loopback tests "
                    "set trading.allow_loopback_without_auth",
                    {"required": "trade"},
                )
            return
        for needed in ("trade", scope) if scope != "trade" else ("trade",):
            refusal = scope_refusal(request, needed)
            if refusal is not None:
                raise refusal

    check.__name__ = f"require_trading_{scope}"
    return check


TRADE = Depends(_trading_gate("trade"))
TRADE_ADMIN = Depends(_trading_gate("admin"))

router = APIRouter(prefix="/trading", tags=["trading"], responses=TRADING_ERRORS)


class PlaceOrder(BaseModel):
    """One order. ``client_order_id`` makes it idempotent and travels to QMT as the order's remark."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^\d{6}\.(SH|SZ|BJ)$", description="e.g. 600000.SH")
    side: Literal["buy", "sell"]
    volume: int = Field(ge=1, le=1_000_000_000, description="Shares.")
    price_type: Literal["limit", "market", "latest"] = Field(
        "limit",
        description="limit (FIX_PRICE, at `price`), market (see market_type) or latest (LATEST_PRICE: a limit "
        "at the last price when QMT takes the order; `price` ignored).",
    )
    market_type: Literal["best5_cancel", "best5_limit", "peer_best", "own_best", "ioc", "fok"] | None = Field(
        None,
        description="A market order's type (xttrader's MARKET_*): best5_cancel (default; SH/BJ 42, SZ 47), "
        "best5_limit (SH/BJ 43), peer_best (44), own_best (45, rests on the own side), ioc (SZ 46), fok (SZ "
        "48). Only with price_type market.",
    )
    price: float = Field(0.0, ge=0, le=1_000_000, description="Limit price (元); ignored for market orders.")
    strategy_name: str = Field("", max_length=24)
    remark: str = Field("", max_length=200, description="Kept in the gateway's audit trail.")
    client_order_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,24}$")

    @model_validator(mode="after")
    def _price(self) -> PlaceOrder:
        if self.price_type == "limit" and self.price <= 0:
            raise ValueError("a limit order needs a positive price")
        if self.price_type == "limit" and self.market_type is not None:
            raise ValueError("market_type is for market orders (price_type market)")
        return self

    def request(self) -> dict[str, Any]:
        """The order as the service takes and the ledger keeps it: ``market_type`` only when given, so a
        retry compares equal to a request recorded before the field existed."""
        out = self.model_dump()
        if out["market_type"] is None:
            del out["market_type"]
        return out


class CheckOrder(PlaceOrder):
    """An order to check: a place body, ``client_order_id`` optional (nothing is claimed or sent)."""

    client_order_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,24}$")


class OrderCheck(BaseModel):
    passed: bool = Field(description="Every pre-trade check passes now (the order would be sent).")
    value: float | None = Field(
        description="The order's value as the checks count it (元; a market buy at the up limit)."
    )
    error: dict[str, Any] | None = Field(
        description="The refusal a place would answer now: {code, message, details} (details.rule for risk)."
    )


class CancelOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: int | None = Field(
        None, ge=1, le=2**63 - 1, description="QMT's order id (xttrader's order_id)."
    )
    client_order_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,24}$")


async def _service(request: Request) -> TradingService:  # async: a sync dependency costs a threadpool hop
    service = getattr(request.app.state, "trading", None)
    if service is None:
        raise SourceUnavailable("the trading lane is not started")
    return service


def _ctx(request: Request) -> dict[str, Any]:
    key = request_key(request)
    return {"request_id": request.scope.get("state", {}).get("request_id"), "key_id": key.id if key else None}


Service = Annotated[TradingService, Depends(_service)]


@router.post(
    "/orders",
    dependencies=[TRADE],
    summary="Place an order (idempotent on client_order_id)",
    response_model=dict[str, Any],
)
async def place(body: PlaceOrder, request: Request, service: Service) -> OrjsonResponse:
    # the answer is encoded here, once, by orjson: the response-model pass over a dict[str, Any] would
    # only walk it again (~0.1 ms of an order's round trip)
    return OrjsonResponse(await service.place(body.request(), _ctx(request)))


@router.post(
    "/orders/check",
    dependencies=[TRADE],
    summary="Run every pre-trade check on an order; send nothing",
    description="The kill switch, the connection and every risk rule of `POST /orders`, against the same "
    "market and account data, without claiming a client_order_id, counting the order or sending it. A "
    "refusal is the answer (200, `passed: false`), not an error.",
)
async def check(body: CheckOrder, service: Service) -> OrderCheck:
    return OrderCheck(**await service.check(body.request()))


@router.post("/cancel", dependencies=[TRADE], summary="Cancel by order_id or client_order_id")
async def cancel(body: CancelOrder, request: Request, service: Service) -> dict[str, Any]:
    if (body.order_id is None) == (body.client_order_id is None):
        raise BadRequest("give exactly one of order_id and client_order_id")
    return await service.cancel(_ctx(request), order_id=body.order_id, coid=body.client_order_id)


@router.get("/orders", dependencies=[TRADE], summary="Today's orders")
async def orders(service: Service) -> list[dict[str, Any]]:
    return await service.orders()


@router.get("/orders/{client_order_id}", dependencies=[TRADE], summary="One order's outcome and state")
async def order(
    client_order_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,24}$")], service: Service
) -> dict[str, Any]:
    return await service.order_status(client_order_id)


@router.get("/trades", dependencies=[TRADE], summary="Today's trades")
async def trades(service: Service) -> list[dict[str, Any]]:
    return await service.trades()


@router.get("/positions", dependencies=[TRADE], summary="Positions")
async def positions(service: Service) -> list[dict[str, Any]]:
    return await service.positions()


@router.get("/asset", dependencies=[TRADE], summary="Cash and asset")
async def asset(service: Service) -> dict[str, Any]:
    return await service.asset()


@router.get("/status", dependencies=[TRADE], summary="Connection, account, kill switch")
async def status(service: Service) -> dict[str, Any]:
    return service.status()


@router.post("/halt", dependencies=[TRADE_ADMIN], summary="Kill switch: refuse new orders, cancel open ones")
async def halt(
    request: Request, service: Service, cancel_open: Annotated[bool, Query()] = True
) -> dict[str, Any]:
    return await service.halt(_ctx(request), cancel_open=cancel_open)


@router.post("/resume", dependencies=[TRADE_ADMIN], summary="Lift the kill switch")
async def resume(request: Request, service: Service) -> dict[str, Any]:
    return await service.resume(_ctx(request))
