"""Stopping and restarting the gateway during a subscription: the client reconnects by itself,
resubscribes (the gateway has a new epoch, so it resyncs with a fresh snapshot) and callbacks keep firing."""

from __future__ import annotations

import threading
from typing import Any

import qmtgate.remote
from qmtgate.client import Batch, Client

from .conftest import Gateway, eventually


def test_subscriptions_survive_a_gateway_restart(gateway: Gateway) -> None:
    session = qmtgate.remote.connect(gateway.url)
    from qmtgate.remote.xtquant import xtdata

    ticks: list[dict[str, Any]] = []
    lock = threading.Lock()

    def on_tick(data: dict[str, Any]) -> None:
        with lock:
            ticks.append(data)

    batches: list[Batch] = []
    client = Client(gateway.url)
    try:
        xtdata.subscribe_quote("600000.SH", "tick", callback=on_tick)
        sub = client.subscribe(["000001.SZ"], "tick", batches.append)

        def moved(count: int) -> bool:
            gateway.advance(3)
            return len(ticks) > count and len(batches) > 0

        eventually(lambda: moved(0), timeout=30, interval=0.2)
        epoch_before = session._stream.epoch  # type: ignore[union-attr]

        gateway.restart()

        eventually(lambda: any(e.kind == "resync" for e in session.events), timeout=30)
        seen = len(ticks)
        batches_before = len(batches)
        eventually(lambda: moved(seen) and len(batches) > batches_before, timeout=30, interval=0.2)

        kinds = [e.kind for e in session.events]
        assert "disconnected" in kinds and "resync" in kinds
        assert session._stream.epoch != epoch_before  # type: ignore[union-attr]
        assert set(ticks[-1]) == {"600000.SH"} and "lastPrice" in ticks[-1]["600000.SH"][0]
        # the normalized client saw the same story as events, and a fresh snapshot after the resync
        sub_kinds = [e.kind for e in sub.events]
        assert {"connected", "disconnected", "resync"} <= set(sub_kinds)
        assert any(b.snapshot for b in batches[batches_before:]) or batches[-1].epoch != batches[0].epoch
    finally:
        client.close()
        session.close()
