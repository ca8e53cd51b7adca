"""The outgoing frames of ``/ws/realtime`` in qmt-bridge 2.1.3's shape.

qmt-bridge's server subscribes each code with ``xtdata.subscribe_quote(code, period, callback)`` and sends
every callback payload as it is: one JSON message ``{code: [item, ...]}`` per push, where an item is an
xtquant tick dict (``period='tick'``) or an xtquant bar dict (``time open high low close volume amount
settelementPrice openInterest preClose suspendFlag``), in xtquant units (volume in lots, ``time`` epoch ms).
Handlers written for it read ``data[code][0]['lastPrice']``; this module turns the hub's normalized rows
back into those items, one message per code, so they run unchanged.

Fields the normalized rows do not carry (``stockStatus``, ``pe``, ``volRatio``, ...) come from the
gateway's latest cached xtquant tick of the code when it has one; the values the rows do carry always win.
Kept apart from the route's receive loop (``api/routers/stream.py``) on purpose: this is only the encoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import orjson

from qmtgate.hub.clients import Frame
from qmtgate.hub.stream import TICK
from qmtgate.vocab import PHASE_SUSPENDED, xt_lots, xt_num, xt_tick


class RawTicks(Protocol):
    def raw_tick(self, code: str) -> Mapping[str, Any] | None: ...


def xt_bar(row: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A normalized bar row -> the xtquant bar dict ``subscribe_quote(code, period)`` pushes.

    ``suspendFlag`` is what xtquant's bar carries: the row's ``suspend_flag`` when it has one, else 1 while
    the code's latest tick says it is suspended (``openInt`` 1, xtquant-api.md §3.2/§3.4), else 0."""
    phase = base.get("openInt") if base else None
    flag = row.get("suspend_flag")
    if not isinstance(flag, int) or isinstance(flag, bool):
        flag = 1 if phase == PHASE_SUSPENDED else 0
    return {
        "time": row.get("ts"),
        "open": xt_num(row.get("open")),
        "high": xt_num(row.get("high")),
        "low": xt_num(row.get("low")),
        "close": xt_num(row.get("close")),
        "volume": xt_lots(row.get("volume")),
        "amount": xt_num(row.get("amount")),
        "settelementPrice": 0.0,  # sic: xtquant's spelling
        "openInterest": phase if isinstance(phase, int) else 0,
        "preClose": xt_num(row.get("pre_close")),
        "suspendFlag": flag,
    }


def messages(frame: Frame, period: str, quotes: RawTicks | None = None) -> Iterable[str]:
    """One JSON text per code of ``frame``: ``{code: [item, ...]}`` (items oldest first)."""
    convert = xt_tick if period == TICK else xt_bar
    items: dict[str, list[dict[str, Any]]] = {}
    for update in frame.updates:
        base = quotes.raw_tick(update.code) if quotes is not None else None
        items.setdefault(update.code, []).append(convert(update.row, base))
    for code, payload in items.items():
        yield orjson.dumps({code: payload}).decode()
