"""Cut the network between a qmtgate.client subscription and the gateway (a TCP proxy in between) while
the market keeps moving: the client must reconnect by itself and resume from its last seq, with every
update the gateway published for it in the meantime (replayed) and none missing.

The gateway-restart case (new epoch -> resync, snapshot, callbacks keep firing) is covered by
tests/remote/test_restart.py.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlparse

from qmtgate.client import Batch, Client, Event

from .conftest import Gateway, eventually
from .proxy import LinkProxy

CUTS = 3


def test_the_client_reconnects_through_link_cuts_with_zero_missing_seq(gateway: Gateway) -> None:
    gateway.heal()
    target = urlparse(gateway.url)
    proxy = LinkProxy(target.hostname or "127.0.0.1", target.port or 80)
    lock = threading.Lock()
    seqs: list[int] = []
    batches: list[Batch] = []
    events: list[Event] = []

    def on_batch(batch: Batch) -> None:
        with lock:
            batches.append(batch)
            seqs.extend(int(item["seq"]) for item in batch.items)

    client = Client(proxy.url)
    try:
        sub = client.subscribe(["BJ"], "tick", on_batch, on_event=events.append)
        eventually(lambda: any(e.kind == "subscribed" for e in events), 10.0, what="subscribed")
        for _ in range(3):
            gateway.advance(3)
        eventually(lambda: len(seqs) > 0, 10.0, what="first data")
        first = min(seqs)
        downtimes: list[float] = []
        for _cut in range(CUTS):
            assert proxy.cut() >= 1, "the live WebSocket went through the proxy"
            cut_at = time.monotonic()
            for _ in range(4):  # bursts published while the client is cut off
                gateway.advance(3, settle=0.01)
            time.sleep(0.3)
            proxy.restore()
            connects = sum(e.kind == "connected" for e in events)
            eventually(lambda n=connects: sum(e.kind == "connected" for e in events) > n, 15.0)
            downtimes.append(time.monotonic() - cut_at)
            gateway.advance(3)
        last_published = gateway.hub.seq
        expected = {
            u.seq
            for u in gateway.hub.ring.since(first - 1) or []
            if u.channel == "tick" and u.market == "BJ" and u.seq <= last_published
        }
        eventually(lambda: max(seqs) >= max(expected), 10.0, what="caught up")
        with lock:
            got = set(seqs)
            replayed = sum(b.replay for b in batches)
            gaps = sum(b.gap for b in batches)
        missing = sorted(expected - got)
        kinds = [e.kind for e in events]
        assert not missing, f"{len(missing)} seqs missing, first {missing[:10]}"
        assert kinds.count("disconnected") >= CUTS and kinds.count("connected") >= CUTS + 1
        assert "resync" not in kinds and "gap" not in kinds and gaps == 0
        assert replayed >= CUTS, "the updates missed during each cut came back as replays"
        assert sub.stream.reconnects >= CUTS
        print(
            f"\nlink cuts: {CUTS}, {len(expected)} BJ updates expected, 0 missing, "
            f"{replayed} replay batches, reconnect after restore within {max(downtimes):.2f} s of the cut"
        )
    finally:
        client.close()
        proxy.close()
