"""``qmtgate serve`` with ``[hikyuu] enabled``: the real app on the simulator, a real ``pynng.Sub0``."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from api.sim_support import sim_settings, wait_live
from api.support import start_server
from hikyuu_feed.consumer import Consumer
from hikyuu_feed.decoder import verify
from qmtgate.api.app import create_app


def test_gateway_publishes_the_feed_and_its_metrics(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="qmtgate.hikyuu")
    settings = sim_settings(
        hikyuu={"enabled": True, "addresses": [f"ipc://{tmp_path / 'feed.ipc'}", "tcp://127.0.0.1:0"]},
        metrics={"public": True},
    )
    app = create_app(settings)
    server = start_server(app)
    consumer = None
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            wait_live(client)
            publisher = app.state.hikyuu
            consumer = Consumer(publisher.addresses[1])
            deadline = time.monotonic() + 30
            while not publisher._socket.pipes and time.monotonic() < deadline:
                time.sleep(0.01)
            from qmtgate.sim.xtquant import _env

            env = _env.current()
            while publisher.stats.brackets == publisher.stats.full_brackets:  # until a live burst went out
                env.market.clock.advance(3)  # the simulated market moves; its publisher thread delivers
                time.sleep(0.3)
                assert time.monotonic() < deadline, publisher.info()
            sent = -1
            while sent != publisher.stats.messages or publisher.backlog():  # the clock stands: all out
                sent = publisher.stats.messages
                time.sleep(0.3)
            # nothing is encoded while nobody listens, so this consumer got every bracket sent
            consumer.wait_messages(publisher.stats.messages)
            assert consumer.ignored == 0 and len(consumer.brackets) == publisher.stats.brackets
            for bracket in consumer.brackets:
                for buf in bracket.buffers:
                    verify(buf)
            assert sum(len(b.records()) for b in consumer.brackets) == publisher.stats.records
            # the first is the whole market as the cache held it when the consumer connected; every code
            # the cache learnt since came in a later live bracket: together they are the whole market
            market = {code for (channel, code) in list(app.state.hub.lvc.updates) if channel == "tick"}
            first = {f"{r['code']}.{r['market']}" for r in consumer.brackets[0].records()}
            assert len(first) > 4000 and first <= market
            seen = {f"{r['code']}.{r['market']}" for b in consumer.brackets for r in b.records()}
            assert seen == market
            metrics = client.get("/metrics").text
        for name in (
            'qmtgate_hikyuu_messages_total{kind="data"}',
            "qmtgate_hikyuu_bytes_total",
            "qmtgate_hikyuu_records_per_bracket_bucket",
            "qmtgate_hikyuu_encode_seconds_bucket",
            'qmtgate_hikyuu_brackets_total{kind="live"}',
        ):
            assert name in metrics
        assert any("UNAUTHENTICATED" in r.getMessage() for r in caplog.records)
    finally:
        if consumer is not None:
            consumer.close()
        server.stop()
    assert app.state.hikyuu is None  # stopped with the app
