"""What one request may cost: the key's code quota after expanding sectors and markets, and a cost bucket.

Why: request rate limits count requests, not work. Within its rate one key could ask for 1m bars since
1990 (142 MB of JSON), whole-market snapshots twenty times a second, or ``get_full_tick`` of whole markets
with ``max_batch_codes`` 5 (a market token or a sector is one parameter but thousands of codes), and every
other client stalled. So each data route, once it knows how many codes and rows its answer covers (sectors
and markets expanded, rows estimated before any upstream call), calls :func:`charge`:

- more codes than the key's ``max_batch_codes`` -> 422 ``too_large`` (the quota counts what is served,
  not how it was named);
- the key's cost bucket (``rate_limit.cost_rate`` units a second, ``cost_burst`` deep; one unit per row or
  code) lacks the cost -> 429 ``rate_limited`` with the wait in ``Retry-After``.

The security middleware binds the authenticated caller to the request's context (a ContextVar, so the
service layer needs no request object); with auth off nothing is bound and :func:`charge` does nothing.
"""

from __future__ import annotations

import math
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from qmtgate.config import ApiKeySettings
from qmtgate.errors import RateLimited, TooLarge
from qmtgate.security.ratelimit import RateLimiter


@dataclass(frozen=True)
class Budget:
    """The caller of the current request and the cost limiter it draws on."""

    record: ApiKeySettings
    limiter: RateLimiter
    on_event: Any = None  # guard.on_event, for the rate-limited metric


_current: ContextVar[Budget | None] = ContextVar("qmtgate_budget", default=None)


def bind(budget: Budget) -> Token[Budget | None]:
    return _current.set(budget)


def unbind(token: Token[Budget | None]) -> None:
    _current.reset(token)


#: Cost of one row by answer format: Arrow IPC encodes ~40x faster and ~5x smaller than JSON records.
ARROW_ROW_COST = 0.1


def row_cost(arrow: bool) -> float:
    return ARROW_ROW_COST if arrow else 1.0


def current_key() -> ApiKeySettings | None:
    budget = _current.get()
    return budget.record if budget is not None else None


def charge(codes: int, *, units: float | None = None) -> None:
    """Charge the current request for ``codes`` codes (sectors and markets expanded) and ``units`` of cost
    (default: one per code); raise ``too_large`` or ``rate_limited`` (see the module docstring)."""
    budget = _current.get()
    if budget is None:
        return
    record = budget.record
    if record.max_batch_codes is not None and codes > record.max_batch_codes:
        raise TooLarge(
            f"this API key may cover at most {record.max_batch_codes} codes per request; this one covers "
            f"{codes} (sectors and markets count as their members)",
            {"limit": record.max_batch_codes, "requested": codes, "key_id": record.id},
        )
    cost = float(codes if units is None else units)
    if not math.isfinite(cost) or cost <= 0:
        return
    wait = budget.limiter.take(record.id, cost=cost)
    if not wait:
        return
    if budget.on_event is not None:
        budget.on_event("rate_limited", "cost")
    error = RateLimited(
        f"this API key's cost budget ({budget.limiter.rate:,.0f} rows or codes a second) is spent; this "
        f"request costs {cost:,.0f}: retry after the Retry-After delay, or ask for less per request",
        {
            "limit": "cost",
            "cost": int(cost),
            "rate": budget.limiter.rate,
            "burst": budget.limiter.burst,
            "retry_after_seconds": round(wait, 3),
        },
    )
    error.retry_after = max(1, math.ceil(wait))  # type: ignore[attr-defined]
    raise error
