"""The rules of protective orders, as pure functions over plain values (docs/trading.md, "Protective
orders"): when a stop-loss, take-profit or trailing stop fires, what price and volume its sell gets.

Kept apart from the engine (``protect.py``) so each rule is table- and property-tested without a trader,
a hub or a clock.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from qmtgate.source.trading.risk import BOARD_LOTS, CST, board_of

Kind = Literal["stop_loss", "take_profit", "trailing_stop"]
KINDS: tuple[str, ...] = ("stop_loss", "take_profit", "trailing_stop")
#: pending: waiting for its order to fill; armed: watching quotes; triggering: its sell is being placed;
#: triggered: the sell was placed (final); failed: the sell was refused (final); cancelled (final).
STATUSES = ("pending", "armed", "triggering", "triggered", "failed", "cancelled")
FINAL = frozenset({"triggered", "failed", "cancelled"})
#: Continuous trading (seconds of day, CST): the only time a last price is a traded price a sell can
#: meet. Auction ticks (09:15-09:25, 14:57-15:00) carry indicative prices and trigger nothing.
CONTINUOUS = ((9 * 3600 + 30 * 60, 11 * 3600 + 30 * 60), (13 * 3600, 14 * 3600 + 57 * 60))


@dataclass
class Protection:
    """One protective order. ``code`` is always known (for a per-order protection, the order's code).

    ``stop_price`` (stop_loss: fires when last <= it), ``target_price`` (take_profit: last >= it),
    ``trail`` (元) or ``trail_ratio`` (trailing_stop: fires when last < peak - trail, the peak being the
    highest last price seen since it was armed). ``volume`` caps the sell (None: all that is sellable;
    a per-order protection also never sells more than its order filled).
    """

    id: str
    code: str
    kind: str
    stop_price: float | None = None
    target_price: float | None = None
    trail: float | None = None
    trail_ratio: float | None = None
    volume: int | None = None
    band: float | None = None
    client_order_id: str | None = None  # per order: armed when this order fills
    status: str = "armed"
    peak: float | None = None
    filled: int = 0  # per order: shares its order filled so far
    attempt: int = 0  # triggers so far (part of the deterministic client_order_id of the sell)
    order: dict[str, Any] | None = None  # the sell request of the current trigger (written before sending)
    outcome: dict[str, Any] | None = None
    trigger: dict[str, Any] | None = None  # the tick that fired it
    reason: str | None = None  # why it failed, was cancelled or is blocked
    created_ms: int = 0
    updated_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Protection:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})

    def trigger_coid(self) -> str:
        """The sell's client_order_id: deterministic per (protection, attempt), so re-placing it after a
        restart replays the first outcome instead of sending a second order."""
        return f"pt-{self.id}-{self.attempt}"


def trail_of(p: Protection, peak: float) -> float:
    """The trailing distance in 元 at ``peak``."""
    if p.trail is not None:
        return p.trail
    assert p.trail_ratio is not None
    return peak * p.trail_ratio


def observe(p: Protection, last: float) -> bool:
    """Feed one last price to an armed protection: moves a trailing stop's peak up, then says whether
    it fires. A trailing stop never fires while ``last >= peak - trail`` and always fires at the first
    price below it (the peak includes ``last`` itself)."""
    if not math.isfinite(last) or last <= 0:
        return False
    if p.kind == "stop_loss":
        return p.stop_price is not None and last <= p.stop_price
    if p.kind == "take_profit":
        return p.target_price is not None and last >= p.target_price
    if p.kind == "trailing_stop":
        if p.peak is None or last > p.peak:
            p.peak = last
        return last < p.peak - trail_of(p, p.peak)
    raise ValueError(f"unknown protection kind {p.kind!r}")


def in_continuous_session(ts_ms: int) -> bool:
    t = dt.datetime.fromtimestamp(ts_ms / 1000, CST)
    sod = t.hour * 3600 + t.minute * 60 + t.second
    return t.weekday() < 5 and any(a <= sod < b for a, b in CONTINUOUS)


def protective_price(last: float, band: float, down_limit: float, tick: float) -> float:
    """A marketable sell limit within the band: ``last x (1 - band)`` rounded *up* to the tick grid (never
    further from the last price than the band allows), and never below the day's lower limit."""
    steps = math.ceil(round(last * (1.0 - band) / tick, 6))
    price = max(steps * tick, down_limit)
    return round(price, 3 if tick < 0.01 else 2)


def sell_volume(code: str, sellable: int, cap: int | None) -> int:
    """Shares to sell: what is sellable today (T+1) capped by ``cap``; a partial sell is cut to the board's
    lot (an odd lot may only go as the whole sellable position)."""
    volume = sellable if cap is None else min(sellable, cap)
    if volume <= 0 or volume == sellable:
        return max(volume, 0)
    minimum, step = BOARD_LOTS[board_of(code)]
    volume -= volume % step
    return volume if volume >= minimum else 0
