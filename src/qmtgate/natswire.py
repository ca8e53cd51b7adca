"""The NATS subject scheme and message headers, shared by the gateway's publisher and the client.

A leaf module (stdlib only, contract ``natswire-leaf``): the gateway (``qmtgate.bus``) and the client
(``qmtgate.client.nats``) must agree on every subject and field, and the client may import no server
package. docs/nats.md documents the same scheme for consumers in other languages.

Subjects (``<gw>``: the gateway id; ``<market>``: SH, SZ, BJ; ``<symbol>``: the code without its market,
because ``.`` separates subject tokens)::

    qmtgate.<gw>.tick.<market>.<symbol>            one JSON message per tick update
    qmtgate.<gw>.bar.<period>.<market>.<symbol>    one JSON message per bar update
    qmtgate.<gw>.batch.<market>                    one Arrow IPC message per burst per market
    qmtgate.<gw>.status                            JSON: heartbeat, bus and source events

so ``qmtgate.*.tick.SH.>`` is every gateway's Shanghai ticks, ``qmtgate.gw1.>`` everything of one gateway.
"""

from __future__ import annotations

from collections.abc import Sequence

PREFIX = "qmtgate"
#: the Arrow batch message's header fields (JSON) in its schema metadata, as on the WebSocket
FRAME_META_KEY = b"qmtgate.frame"
MARKETS = ("SH", "SZ", "BJ")
#: characters a gateway id may not contain (NATS token separators and wildcards, whitespace)
_BAD_ID_CHARS = set(".*> \t\r\n")


def check_gateway_id(gateway_id: str) -> str:
    """``gateway_id`` if it is one subject token (letters, digits, ``-``, ``_``), else ValueError."""
    if not gateway_id or any(ch in _BAD_ID_CHARS for ch in gateway_id) or len(gateway_id) > 64:
        raise ValueError(f"gateway id {gateway_id!r} must be one NATS token: no '.', '*', '>' or spaces")
    return gateway_id


def split_code(code: str) -> tuple[str, str]:
    """``"600000.SH"`` -> ``("SH", "600000")``."""
    symbol, _, market = code.rpartition(".")
    if not symbol or not market:
        raise ValueError(f"not a code with a market suffix: {code!r}")
    return market.upper(), symbol


def tick_subject(gw: str, code: str) -> str:
    market, symbol = split_code(code)
    return f"{PREFIX}.{gw}.tick.{market}.{symbol}"


def bar_subject(gw: str, period: str, code: str) -> str:
    market, symbol = split_code(code)
    return f"{PREFIX}.{gw}.bar.{period}.{market}.{symbol}"


def batch_subject(gw: str, market: str) -> str:
    return f"{PREFIX}.{gw}.batch.{market}"


def status_subject(gw: str) -> str:
    return f"{PREFIX}.{gw}.status"


def all_subject(gw: str) -> str:
    """Everything one gateway publishes (``gw``: ``*`` for every gateway)."""
    return f"{PREFIX}.{gw}.>"


def data_subjects(
    gw: str, period: str, codes: Sequence[str], markets: Sequence[str], *, batches: bool = False
) -> list[str]:
    """The subjects a consumer of ``codes`` and whole ``markets`` on ``period`` subscribes to (``gw`` may be
    ``*``). ``batches``: whole markets as one Arrow message per burst instead of one message per tick.

    NATS keeps the order of messages within one subscription only: all three markets are one wildcard
    subscription, so a whole-market consumer gets every update in seq order."""
    out: list[str] = []
    if set(MARKETS) <= set(markets):  # every market: one subscription, so one ordered delivery
        if period == "tick":
            return [f"{PREFIX}.{gw}.batch.*" if batches else f"{PREFIX}.{gw}.tick.*.*"]
        return [f"{PREFIX}.{gw}.bar.{period}.*.*"]
    for market in markets:
        if period == "tick":
            out.append(batch_subject(gw, market) if batches else f"{PREFIX}.{gw}.tick.{market}.*")
        else:
            out.append(f"{PREFIX}.{gw}.bar.{period}.{market}.*")
    for code in codes:
        if split_code(code)[0] in markets:
            continue  # its market is taken whole
        out.append(tick_subject(gw, code) if period == "tick" else bar_subject(gw, period, code))
    return list(dict.fromkeys(out))


def parse_subject(subject: str) -> tuple[str, str, str | None] | None:
    """``(gw, kind, period)`` of a data or status subject (kind: tick, bar, batch, status), else None."""
    parts = subject.split(".")
    if len(parts) < 3 or parts[0] != PREFIX:
        return None
    gw, kind = parts[1], parts[2]
    if kind == "bar" and len(parts) == 6:
        return gw, kind, parts[3]
    if kind in ("tick", "batch", "status"):
        return gw, kind, None
    return None


def stream_name(gw: str) -> str:
    """The JetStream stream that keeps one gateway's subjects (names allow no ``.``)."""
    return f"QMTGATE_{check_gateway_id(gw).upper().replace('-', '_')}"
