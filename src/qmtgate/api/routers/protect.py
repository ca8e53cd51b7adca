"""``/api/v1/trading/protections``: protective orders held by the gateway (docs/trading.md, "Protective
orders"). Mounted with the trading routes; every route needs the ``trade`` scope."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from qmtgate.api.openapi import TRADING_ERRORS
from qmtgate.api.routers.trading import TRADE, _ctx
from qmtgate.errors import SourceUnavailable
from qmtgate.source.trading.protect import ProtectionEngine

router = APIRouter(prefix="/trading/protections", tags=["trading"], responses=TRADING_ERRORS)
PID = Annotated[str, Path(pattern=r"^[0-9a-f]{10}$", description="The protection's id.")]
COID = r"^[A-Za-z0-9_-]{1,24}$"


class NewProtection(BaseModel):
    """Per position (``code``) or per order (``client_order_id`` of a buy: armed when it fills, for at
    most the shares it filled)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["stop_loss", "take_profit", "trailing_stop"]
    code: str | None = Field(None, pattern=r"^\d{6}\.(SH|SZ|BJ)$", description="e.g. 600000.SH")
    client_order_id: str | None = Field(None, pattern=COID, description="Attach to this buy order.")
    stop_price: float | None = Field(None, gt=0, le=1_000_000, description="stop_loss: fire at last <= it.")
    target_price: float | None = Field(
        None, gt=0, le=1_000_000, description="take_profit: fire at last >= it."
    )
    trail: float | None = Field(None, gt=0, le=1_000_000, description="trailing_stop: 元 below the peak.")
    trail_ratio: float | None = Field(None, gt=0, lt=1, description="trailing_stop: share below the peak.")
    volume: int | None = Field(
        None, ge=1, le=1_000_000_000, description="Most shares to sell (None: all sellable)."
    )
    band: float | None = Field(
        None, gt=0, lt=0.2, description="Protective band (default trading.protect.band)."
    )


class ChangeProtection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stop_price: float | None = Field(None, gt=0, le=1_000_000)
    target_price: float | None = Field(None, gt=0, le=1_000_000)
    trail: float | None = Field(None, gt=0, le=1_000_000)
    trail_ratio: float | None = Field(None, gt=0, lt=1)
    volume: int | None = Field(None, ge=1, le=1_000_000_000)
    band: float | None = Field(None, gt=0, lt=0.2)


async def _engine(request: Request) -> ProtectionEngine:  # async: no threadpool hop
    engine = getattr(request.app.state, "protect", None)
    if engine is None:
        raise SourceUnavailable("protective orders are off (trading.protect.enabled = false) or not started")
    return engine


Engine = Annotated[ProtectionEngine, Depends(_engine)]


@router.post("", dependencies=[TRADE], summary="Create a stop-loss, take-profit or trailing stop")
async def create(body: NewProtection, request: Request, engine: Engine) -> dict[str, Any]:
    if body.code is not None:  # a code that does not exist would stay armed and never see a quote
        await request.app.state.services.require_exists([body.code])
    return await engine.create(body.model_dump(), _ctx(request))


@router.get("", dependencies=[TRADE], summary="List protective orders")
async def list_protections(
    engine: Engine,
    status: Annotated[
        Literal["pending", "armed", "triggering", "triggered", "failed", "cancelled"] | None, Query()
    ] = None,
    code: Annotated[str | None, Query(pattern=r"^\d{6}\.(SH|SZ|BJ)$")] = None,
) -> list[dict[str, Any]]:
    return engine.list(status=status, code=code)


@router.get("/{pid}", dependencies=[TRADE], summary="One protective order")
async def get(pid: PID, engine: Engine) -> dict[str, Any]:
    return engine.get(pid)


@router.patch("/{pid}", dependencies=[TRADE], summary="Change prices, trail, volume or band")
async def change(pid: PID, body: ChangeProtection, request: Request, engine: Engine) -> dict[str, Any]:
    return await engine.change(pid, body.model_dump(exclude_unset=True), _ctx(request))


@router.delete("/{pid}", dependencies=[TRADE], summary="Cancel a protective order")
async def cancel(pid: PID, request: Request, engine: Engine) -> dict[str, Any]:
    return await engine.cancel(pid, _ctx(request))
