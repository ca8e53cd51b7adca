"""Synthetic whole-market bursts for an in-process hub (deterministic: no clock, no simulator)."""

from __future__ import annotations

from typing import Any

from qmtgate.config import NatsSettings
from qmtgate.hub.stream import TICK, HubConfig, StreamHub

CODES = {
    "SH": [f"{600000 + i}.SH" for i in range(40)],
    "SZ": [f"{i:06d}.SZ" for i in range(1, 41)],
    "BJ": [f"{830000 + i}.BJ" for i in range(10)],
}
ALL = [c for codes in CODES.values() for c in codes]
T0 = 1749695400000  # 2025-06-12 10:30 CST


def tick(ts: int, price: float, volume: int) -> dict[str, Any]:
    return {
        "time": ts,
        "lastPrice": price,
        "open": 10.0,
        "high": 11.0,
        "low": 9.0,
        "lastClose": 10.0,
        "volume": volume,
        "amount": volume * price * 100,
        "transactionNum": volume,
        "openInt": 13,
        "bidPrice": [price - 0.01, price - 0.02, 0.0, 0.0, 0.0],
        "bidVol": [1, 2, 0, 0, 0],
        "askPrice": [price + 0.01, price + 0.02, price + 0.03, price + 0.04, price + 0.05],
        "askVol": [3, 4, 5, 6, 7],
    }


def burst(b: int, codes: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Burst ``b`` (exchange time T0 + 3 s * b); code k skips bursts where (k + b) % 4 == 0, as real
    codes do not all trade every 3 s."""
    codes = ALL if codes is None else codes
    return {c: tick(T0 + 3000 * b, 10.0 + b / 100, 100 + b) for k, c in enumerate(codes) if (k + b) % 4}


class NoSource:
    name = "none"

    def status(self) -> Any:
        raise RuntimeError("no source")


def make_hub() -> StreamHub:
    hub = StreamHub(NoSource(), HubConfig(outbox_frames=64))
    hub.covered_markets = {"SH", "SZ", "BJ"}  # no upstream subscriptions: the test publishes
    return hub


def publish(hub: StreamHub, b: int) -> int:
    """Publish burst ``b``; returns how many updates it made."""
    return len(hub.publish(TICK, burst(b)))


def settings(url: str, gw: str, **kw: Any) -> NatsSettings:
    base: dict[str, Any] = {
        "url": url,
        "gateway_id": gw,
        "reconnect_delay": 0.05,
        "max_reconnect_delay": 0.2,
        "heartbeat_seconds": 0.2,
    }
    base.update(kw)
    return NatsSettings(**base)
