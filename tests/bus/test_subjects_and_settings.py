"""The subject scheme (qmtgate.natswire), the publisher's buffer and the [nats] settings / CLI flags."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from qmtgate.bus.buffer import OutBuffer
from qmtgate.bus.encode import Message
from qmtgate.bus.publisher import connect_options
from qmtgate.cli import app
from qmtgate.config import NatsSettings, load_settings
from qmtgate.natswire import (
    bar_subject,
    batch_subject,
    check_gateway_id,
    data_subjects,
    parse_subject,
    split_code,
    stream_name,
    tick_subject,
)

symbols = st.text("0123456789", min_size=6, max_size=6)
markets = st.sampled_from(["SH", "SZ", "BJ"])
gateway_ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20)


@given(gateway_ids, symbols, markets)
def test_tick_and_bar_subjects_are_one_token_per_part_and_parse_back(
    gw: str, symbol: str, market: str
) -> None:
    code = f"{symbol}.{market}"
    assert tick_subject(gw, code) == f"qmtgate.{gw}.tick.{market}.{symbol}"
    assert parse_subject(tick_subject(gw, code)) == (gw, "tick", None)
    assert parse_subject(bar_subject(gw, "1m", code)) == (gw, "bar", "1m")
    assert parse_subject(batch_subject(gw, market)) == (gw, "batch", None)
    assert split_code(code) == (market, symbol)
    assert "." not in stream_name(gw)


def test_consumer_subjects_take_a_market_whole_and_codes_of_other_markets_one_by_one() -> None:
    assert data_subjects("*", "tick", ["600000.SH", "000001.SZ"], ["SH"]) == [
        "qmtgate.*.tick.SH.*",
        "qmtgate.*.tick.SZ.000001",
    ]
    assert data_subjects("g", "tick", [], ["SZ"], batches=True) == ["qmtgate.g.batch.SZ"]
    assert data_subjects("g", "5m", ["600000.SH"], []) == ["qmtgate.g.bar.5m.SH.600000"]


@pytest.mark.parametrize("bad", ["", "a.b", "a*", "a>", "a b", "x" * 65])
def test_a_gateway_id_must_be_one_subject_token(bad: str) -> None:
    with pytest.raises(ValueError):
        check_gateway_id(bad)


def test_the_buffer_drops_the_oldest_beyond_its_bounds_and_counts_them() -> None:
    buf = OutBuffer(max_messages=3, max_bytes=10_000)
    for i in range(5):
        buf.put(Message(f"s{i}", b"x" * 10, "tick", 1))
    assert [m.subject for m in buf.head(10, 10_000)] == ["s2", "s3", "s4"]
    assert (buf.dropped.messages, buf.dropped.updates) == (2, 2)
    assert buf.take_unreported().messages == 2 and buf.take_unreported().messages == 0
    head = buf.head(2, 10_000)
    assert buf.confirm(head[-1].mid) == 2 and len(buf) == 1
    by_bytes = OutBuffer(max_messages=100, max_bytes=25)
    for i in range(4):
        by_bytes.put(Message(f"s{i}", b"x" * 10, "batch", 5))
    assert len(by_bytes) == 2 and by_bytes.dropped.updates == 10 and by_bytes.nbytes == 20


def test_settings_and_flags() -> None:
    s = load_settings(nats={"url": "nats://h:4222", "gateway_id": "box1", "jetstream": True})
    assert s.nats.enabled and s.nats.jetstream and s.nats.markets == ("SH", "SZ", "BJ")
    assert not load_settings().nats.enabled
    opts = connect_options(
        NatsSettings(url="nats://a:4222, nats://b:4222", user="u", password="p", token=None), "qmtgate-x"
    )
    assert opts["servers"] == ["nats://a:4222", "nats://b:4222"] and opts["user"] == "u" and "tls" not in opts
    assert "tls" in connect_options(NatsSettings(url="tls://a:4222"), "x")
    result = CliRunner().invoke(app, ["serve", "--nats", "nats://127.0.0.1:1", "--nats-id", "a.b"])
    assert result.exit_code == 2 and "one NATS token" in result.output
