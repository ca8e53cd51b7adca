"""A simulated miniQMT restart drops every upstream subscription; the gateway must notice, subscribe again
from its registry (and the quote feed), tell clients, and data must resume on every subscription.

20 restarts in a row, each timed from the restart to the first post-restart frame of every subscription;
threads, upstream subscriptions and hub state must be the same after them as before.
"""

from __future__ import annotations

import statistics
import threading
import time

from .conftest import Gateway, WsReader, eventually

SUBSCRIPTIONS = [
    # (period, codes, markets): BJ through the always-on quote feed, the rest through the hub's registry
    ("tick", [], ["BJ"]),
    ("tick", ["600000.SH", "000001.SZ"], []),
    ("1m", ["600519.SH"], []),
]
TARGETS = [("tick", "BJ"), ("tick", "600000.SH"), ("tick", "000001.SZ"), ("1m", "600519.SH")]
TRIALS = 20


def _covered(gateway: Gateway, reader: WsReader, after_seq: int) -> set[tuple[str, str]]:
    """Targets with a data item published after ``after_seq``."""
    got: set[tuple[str, str]] = set()
    for frame in reader.of("data"):
        for item in frame["items"]:
            if item["seq"] > after_seq:
                got.add((frame["channel"], item["code"]))
                got.add((frame["channel"], item["code"].rpartition(".")[2]))
    return got & set(TARGETS)


def test_every_subscription_resumes_within_10_s_after_each_of_20_qmt_restarts(gateway: Gateway) -> None:
    gateway.heal()
    reader = WsReader(gateway.ws_url)
    try:
        for i, (period, codes, markets) in enumerate(SUBSCRIPTIONS):
            reader.send({"op": "subscribe", "id": i, "period": period, "codes": codes, "markets": markets})
        eventually(lambda: len(reader.of("subscribed")) == len(SUBSCRIPTIONS), what="subscribed")
        start_seq = gateway.hub.seq
        for _ in range(40):
            gateway.advance(3)
            if _covered(gateway, reader, start_seq) == set(TARGETS):
                break
        assert _covered(gateway, reader, start_seq) == set(TARGETS), "every subscription streams"

        env, source, hub = gateway.env, gateway.source, gateway.hub
        threads_before = threading.active_count()
        upstream_before = len(env.publisher.subscriptions())
        registry_before = dict(hub.registry.active())
        handles_before = len(source._subscriptions)
        epoch_before = source.status().connection

        recovery: list[float] = []
        for trial in range(TRIALS):
            statuses = len(reader.of("status"))
            mark = hub.seq
            began = time.monotonic()
            env.faults.restart()  # every upstream subscription is lost, as in a miniQMT restart
            while _covered(gateway, reader, mark) != set(TARGETS):
                elapsed = time.monotonic() - began
                assert elapsed < 10.0, (
                    f"trial {trial}: only {_covered(gateway, reader, mark)} resumed after {elapsed:.1f} s"
                )
                gateway.advance(3, settle=0.02)
            recovery.append(time.monotonic() - began)
            eventually(lambda n=statuses: len(reader.of("status")) > n, what="status event to the client")

        # clients were told about every new connection epoch
        epochs = [m["source"]["epoch"] for m in reader.of("status") if m["source"]["connected"]]
        assert source.status().connection == epoch_before + TRIALS
        assert epochs[-1] == epoch_before + TRIALS
        # nothing leaked across the restarts: threads, upstream subscriptions, registry, source handles
        assert threading.active_count() == threads_before
        assert len(env.publisher.subscriptions()) == upstream_before
        assert dict(hub.registry.active()) == registry_before
        assert len(source._subscriptions) == handles_before
        assert source.reconnects >= TRIALS and source.disconnects >= TRIALS
        print(
            f"\nQMT restart -> data on all {len(TARGETS)} subscriptions, {TRIALS} trials: "
            f"median {statistics.median(recovery):.2f} s, max {max(recovery):.2f} s, "
            f"min {min(recovery):.2f} s"
        )
        assert len(recovery) == TRIALS and max(recovery) < 10.0
    finally:
        reader.close()
