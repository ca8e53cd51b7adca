"""Protective orders (``/api/v1/trading/protections``, docs/trading.md): client calls. Needs a key with
the ``trade`` scope. Lists come back as DataFrames, single protections as dicts."""

from __future__ import annotations

from typing import Any

import pandas as pd

from qmtgate.client._calls import V1, Answer, Call, body

PATH = f"{V1}/trading/protections"


def _frame(answer: Answer) -> pd.DataFrame:
    return pd.DataFrame.from_records(answer.json() or [])


def _args(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def trading_protect(
    kind: str,
    *,
    code: str | None = None,
    client_order_id: str | None = None,
    stop_price: float | None = None,
    target_price: float | None = None,
    trail: float | None = None,
    trail_ratio: float | None = None,
    volume: int | None = None,
    band: float | None = None,
) -> Call:
    """A stop_loss (``stop_price``), take_profit (``target_price``) or trailing_stop (``trail`` 元 or
    ``trail_ratio``) on a position (``code``) or on a buy order (``client_order_id``)."""
    payload = _args(
        kind=kind,
        code=code,
        client_order_id=client_order_id,
        stop_price=stop_price,
        target_price=target_price,
        trail=trail,
        trail_ratio=trail_ratio,
        volume=volume,
        band=band,
    )
    return Call("POST", PATH, body, body=payload, idempotent=False)


def trading_protections(status: str | None = None, code: str | None = None) -> Call:
    """Protective orders as a DataFrame (one row each), optionally of one status / code."""
    return Call("GET", PATH, _frame, _args(status=status, code=code))


def trading_protection(protection_id: str) -> Call:
    return Call("GET", f"{PATH}/{protection_id}", body)


def trading_change_protection(protection_id: str, **changes: Any) -> Call:
    """Change ``stop_price``, ``target_price``, ``trail``, ``trail_ratio``, ``volume`` or ``band``."""
    return Call("PATCH", f"{PATH}/{protection_id}", body, body=changes, idempotent=False)


def trading_cancel_protection(protection_id: str) -> Call:
    return Call("DELETE", f"{PATH}/{protection_id}", body, idempotent=False)


OPERATIONS = (
    trading_protect,
    trading_protections,
    trading_protection,
    trading_change_protection,
    trading_cancel_protection,
)
