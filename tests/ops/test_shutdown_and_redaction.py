"""SIGTERM with WebSocket clients connected, and keys kept out of every log line (issue 17, items 1 and 6).

The end-to-end test runs the real command line (``python -m qmtgate serve``) in a subprocess on a free
loopback port with a key file and a log file, refuses handshakes and requests that carry the key in the URL,
connects idle and subscribed clients on both WebSocket routes, then sends SIGTERM and measures the stop.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import qmtgate
from qmtgate.config import LogSettings
from qmtgate.ops.logs import setup_logging, shutdown_logging
from qmtgate.ops.redact import REDACTED, RedactFilter, install_log_redaction, redact
from qmtgate.security import keys as key_module
from qmtgate.security.keys import write_key_file

SRC = Path(qmtgate.__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_redact_removes_secrets_and_url_key_values() -> None:
    key = key_module.generate_key("t", ["read"])
    secret = key.token.split("_", 2)[2]
    line = f'127.0.0.1:5 - "WebSocket /api/v1/ws?x=1&api_key={key.token}&Token=abc" 400 {key.token}'
    cleaned = redact(line)
    assert secret not in cleaned and "abc" not in cleaned
    assert f"api_key={REDACTED}&Token={REDACTED}" in cleaned and "x=1" in cleaned
    assert f"qg_{key.record.id}_{REDACTED}" in cleaned  # the public id stays for the operator
    assert redact("GET /api/v1/klines?codes=600000.SH") == "GET /api/v1/klines?codes=600000.SH"


def test_uvicorn_handshake_line_is_redacted_at_the_logger() -> None:
    """uvicorn's loggers may not propagate to the root: the filter sits on them (create_app installs it)."""
    install_log_redaction()
    logger = logging.getLogger("uvicorn.error")
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    handler = Collect()
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        key = key_module.generate_key("t", ["read"])
        logger.info('%s - "WebSocket %s" %d', "127.0.0.1:1", f"/ws/realtime?api_key={key.token}", 400)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert seen == [f'127.0.0.1:1 - "WebSocket /ws/realtime?api_key={REDACTED}" 400']


def test_the_session_watch_catches_a_key_in_a_log_line(key_leaks: Any) -> None:
    """The session-level check (tests/conftest.py) works: a leaked key is found, then forgiven here."""
    WATCH = key_leaks
    key = key_module.generate_key("leak-on-purpose", ["read"])
    before = len(WATCH.leaks)
    logger = logging.getLogger("qmtgate.test.leak")
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - closed below
    logger.addHandler(handler)
    try:
        logger.warning("oops %s", key.token)  # no RedactFilter on this handler: the watch must see it
    finally:
        logger.removeHandler(handler)
        handler.stream.close()
    found = WATCH.leaks[before:]
    assert found and all("<SECRET>" in line and key.record.id in line for line in found)
    del WATCH.leaks[before:]


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_log_and_key_files_are_owner_only(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "gw.log"
    root_level = logging.getLogger().level
    handlers = setup_logging("info", LogSettings(file=log_file, max_bytes=10_000, backups=1))
    try:
        logging.getLogger("qmtgate.test").info("x" * 6000)
        logging.getLogger("qmtgate.test").info("y" * 6000)  # rotates: the new file is owner-only too
    finally:
        shutdown_logging()
        logging.getLogger().setLevel(root_level)
    assert handlers and (log_file.stat().st_mode & 0o777) == 0o600
    rotated = log_file.with_name("gw.log.1")
    assert rotated.exists() and (rotated.stat().st_mode & 0o777) == 0o600
    keys_file = tmp_path / "keys.json"
    write_key_file(keys_file, [key_module.generate_key("k", ["read"]).record])
    assert (keys_file.stat().st_mode & 0o777) == 0o600


def test_redact_filter_cleans_extra_fields() -> None:
    key = key_module.generate_key("t", ["read"])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "path %s", (f"/a?key={key.token}",), None)
    record.path = f"/a?{key.token}"
    RedactFilter().filter(record)
    assert key.token not in record.getMessage() and key.token not in record.path


@pytest.mark.skipif(os.name == "nt", reason="SIGTERM is POSIX; Windows stops with Ctrl-C")
def test_sigterm_stops_the_gateway_within_5_s_with_websocket_clients_and_logs_no_key(tmp_path: Path) -> None:
    key = key_module.generate_key("admin", ["admin"])
    keys_file = tmp_path / "keys.json"
    write_key_file(keys_file, [key.record])
    log_file = tmp_path / "gw.log"
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p),
    }
    with open(tmp_path / "gw.out", "wb") as out, open(tmp_path / "gw.err", "wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "qmtgate", "serve", "--source", "sim", "--port", str(port),
                "--sim-clock", "manual", "--sim-start", "20250612103000",
                "--keys-file", str(keys_file), "--log-file", str(log_file), "--log-level", "info",
            ],
            stdout=out,
            stderr=err,
            env=env,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    headers = {"X-API-Key": key.token}
    clients = []
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "gw.err").read_text(errors="replace")[-2000:]
            try:
                if httpx.get(base + "/api/v1/health/live", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.2)
        # keys in URLs are refused (and must not be logged by anyone, uvicorn included)
        for path in ("/api/v1/ws", "/ws/realtime"):
            with pytest.raises(InvalidStatus) as refused:
                connect(f"ws://127.0.0.1:{port}{path}?api_key={key.token}", open_timeout=30)
            assert refused.value.response.status_code == 400
        # over HTTP a key-shaped stand-in: httpx logs its own URLs at INFO in this process
        stand_in = f"qg_{key.record.id}_{'s' * 43}"
        assert httpx.get(base + f"/api/v1/capabilities?token={stand_in}", timeout=30).status_code == 400
        # clients on both routes: idle, subscribed to nothing, subscribed to a code
        ws_base = f"ws://127.0.0.1:{port}"
        for path, first in [
            ("/api/v1/ws", None),
            ("/api/v1/ws", {"op": "subscribe", "codes": ["600000.SH"]}),
            ("/ws/realtime", {"stocks": []}),
            ("/ws/realtime", None),
            ("/ws/realtime", {"stocks": ["600000.SH"]}),
        ]:
            ws = connect(ws_base + path, additional_headers=headers, open_timeout=30)
            clients.append(ws)
            if first is not None:
                ws.send(json.dumps(first))
        deadline = time.monotonic() + 30
        while True:
            metrics = httpx.get(base + "/metrics", headers=headers, timeout=30).text
            if "qmtgate_ws_clients 5.0" in metrics:
                break
            assert time.monotonic() < deadline, "the 5 clients are connected"
            time.sleep(0.1)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # what proc.terminate() sends
        proc.wait(timeout=60)
        stopped_in = time.monotonic() - started
    finally:
        for ws in clients:
            ws.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"SIGTERM with 5 WebSocket clients: stopped in {stopped_in:.2f} s")
    assert stopped_in < 5.0, f"SIGTERM took {stopped_in:.1f} s"
    logs = log_file.read_text(encoding="utf-8") + (tmp_path / "gw.err").read_text(errors="replace")
    secret = key.token.split("_", 2)[2]
    assert secret not in logs and "s" * 43 not in logs
    assert f"api_key={REDACTED}" in logs  # uvicorn's handshake line was written, without the key
    assert "Waiting for background tasks" not in logs or stopped_in < 5.0
    assert (log_file.stat().st_mode & 0o777) == 0o600
