"""What a key without the right scope sees (issue #16 item 5), against a live gateway on loopback.

A ``read`` key starts history downloads (the README's example downloads); a key without ``stream`` gets
its subscription refused once, with the reason, instead of a drop-in that reconnects for ever; the
gateway's access log shows the refusal, not the 101 of the handshake.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

import qmtgate.remote
from api.support import LiveServer, start_server
from qmtgate.client import Client
from qmtgate.client.errors import Forbidden
from qmtgate.ops.logs import ACCESS_LOGGER

from .support import Keys, auth_app, make_keys


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


@pytest.fixture(scope="module")
def server(keys: Keys) -> Iterator[LiveServer]:
    live = start_server(auth_app(keys))
    yield live
    live.stop()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def access_log() -> Iterator[_Records]:
    handler = _Records()
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(previous)


def test_a_read_key_downloads_history_through_the_drop_in(server: LiveServer, keys: Keys) -> None:
    session = qmtgate.remote.connect(server.url, api_key=keys.read.token)
    try:
        from qmtgate.remote.xtquant import xtdata

        progress: list[dict] = []
        assert xtdata.download_history_data2(["600000.SH"], "1d", "20250101", "", progress.append) == {}
        assert progress and progress[-1]["finished"] == progress[-1]["total"] == 1
    finally:
        session.close()


def test_a_key_without_stream_is_refused_once_with_the_reason(
    server: LiveServer, keys: Keys, access_log: _Records
) -> None:
    session = qmtgate.remote.connect(server.url, api_key=keys.read.token)
    try:
        from qmtgate.remote.xtquant import xtdata

        with pytest.raises(Forbidden, match="stream") as refused:
            xtdata.subscribe_quote("600000.SH", period="tick", callback=lambda data: None)
        assert refused.value.details.get("required") == "stream"
        assert session._stream is None  # nothing keeps reconnecting in the background
    finally:
        session.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not [r for r in access_log.records if r.path == "/api/v1/ws"]:
        time.sleep(0.05)
    ws_lines = [r for r in access_log.records if r.path == "/api/v1/ws"]
    assert [r.status for r in ws_lines] == [403]  # one attempt, logged as refused


def test_a_client_stream_ends_with_one_error_event(server: LiveServer, keys: Keys) -> None:
    with Client(server.url, api_key=keys.read.token) as client:
        sub = client.subscribe(["600000.SH"], "tick")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(e.kind == "closed" for e in sub.events):
            time.sleep(0.05)
        time.sleep(0.5)  # would be ~4 more attempts at the old 0.1 s backoff
        kinds = [e.kind for e in sub.events]
        assert kinds == ["error", "closed"], kinds
        error = sub.events[0].data
        assert error["code"] == "forbidden" and error["final"] is True and error["close_code"] == 4403
        assert sub.stream.reconnects == 0
        assert isinstance(sub.stream.refused, Forbidden)
