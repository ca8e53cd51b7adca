"""Protective orders: what watching costs per tick, and how long a trigger takes to reach the order path.

In process, with a stand-in order service (the real audit database on a temporary file, so the durable
write before sending is measured; the order path itself is measured by ``trading_bench.py``):

* **watch**: ``ProtectionEngine.on_ticks`` on bursts of N protected codes whose prices do not fire
  (µs per row: the work every tick of a protected code costs the event loop);
* **trigger**: from the tick that crosses a stop to ``place()`` being called (rule, lock, limits and
  sellable read, the trigger written with ``synchronous=FULL``), p50 / p99 over many triggers.

    PYTHONPATH=src python bench/protect_bench.py [--codes 500] [--triggers 300]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from qmtgate.config import TradingProtectSettings
from qmtgate.source.trading.audit import AuditTrail
from qmtgate.source.trading.protect import ProtectionEngine
from qmtgate.source.trading.risk import AccountInfo, MarketInfo

CST = dt.timezone(dt.timedelta(hours=8))
T0 = int(dt.datetime(2025, 6, 12, 10, 30, tzinfo=CST).timestamp() * 1000)


class Service:
    def __init__(self, audit: AuditTrail) -> None:
        self.audit = audit
        self.lane = SimpleNamespace(connected=True, now_ms=lambda: T0)
        self.halted = False
        self.connect_error = None
        self.listeners: list[Any] = []
        self.called: list[float] = []

    async def _on_lane(self, fn: Any) -> Any:
        return fn()

    def _market_and_account(self, order: object, now_ms: int) -> tuple[MarketInfo, AccountInfo]:
        return MarketInfo(11.0, 9.0, 0.01, 10.0), AccountInfo(1e6, 1000)

    async def place(self, req: dict, ctx: dict, *, protective: bool = False) -> dict:
        self.called.append(time.perf_counter())
        return {"client_order_id": req["client_order_id"], "status": "accepted", "order_id": len(self.called)}

    def emit_event(self, kind: str, data: dict, client_order_id: str | None = None) -> None:
        self.audit.append(f"event.{kind}", data, client_order_id=client_order_id)

    def _metric(self, name: str, label: str, value: float = 0.0) -> None:
        pass


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def main(codes: int, triggers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        service = Service(AuditTrail(Path(tmp) / "audit.sqlite"))
        engine = ProtectionEngine(service, TradingProtectSettings())  # type: ignore[arg-type]
        await engine.start()
        names = [f"{600000 + i:06d}.SH" for i in range(codes)]
        for code in names:
            await engine.create({"kind": "stop_loss", "code": code, "stop_price": 9.0}, {})
        rows = [{"code": c, "last_price": 10.0, "ts": T0} for c in names]
        engine.on_ticks(rows)
        rounds = 200
        began = time.perf_counter()
        for _ in range(rounds):
            engine.on_ticks(rows)
        per_row = (time.perf_counter() - began) / (rounds * len(rows)) * 1e6
        print(
            f"watch: {codes} protected codes, {per_row:.2f} µs per tick row ({per_row * codes / 1000:.2f} ms per burst of all)"
        )

        latencies: list[float] = []
        for i in range(triggers):
            code = names[i % codes]
            p = await engine.create({"kind": "stop_loss", "code": code, "stop_price": 9.5}, {})
            start = time.perf_counter()
            engine.on_ticks([{"code": code, "last_price": 9.4, "ts": T0}])
            while engine._tasks:
                await asyncio.gather(*engine._tasks)
            latencies.append((service.called[-1] - start) * 1000)
            assert engine.get(p["id"])["status"] == "triggered"
        print(
            f"trigger: tick -> place() over {triggers} triggers: p50 {statistics.median(latencies):.2f} ms, "
            f"p99 {pct(latencies, 0.99):.2f} ms"
        )
        await engine.stop()
        service.audit.close()


if __name__ == "__main__":
    logging.getLogger("qmtgate").setLevel(logging.ERROR)  # one warning per trigger otherwise
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=500)
    parser.add_argument("--triggers", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.codes, args.triggers))
