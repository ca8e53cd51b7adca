"""The audit trail holds every request of a session after ``kill -9`` of the gateway: rows are committed
(WAL, audit_sync=normal: handed to the OS, which outlives the process) before the answer is sent. The gateway runs as ``python -m qmtgate serve
--enable-trading`` configured through the ``MINIQMT_*`` names, as an existing service's .env would."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="SIGKILL is POSIX; the test is about the file"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_audit_survives_kill_9(tmp_path: Path) -> None:
    audit = tmp_path / "audit.sqlite"
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
        "MINIQMT_ACCOUNT_ID": "8880001",
        "MINIQMT_USERDATA_PATH": "/tmp/qmtgate-sim/userdata_mini",
        "QMTGATE_TRADING__AUDIT_PATH": str(audit),
        "QMTGATE_TRADING__ALLOW_LOOPBACK_WITHOUT_AUTH": "true",
        "QMTGATE_TRADING__RISK__MAX_ORDERS_PER_SECOND": "1000",
    }
    cmd = [sys.executable, "-m", "qmtgate", "serve", "--enable-trading", "--source", "sim", "--port", str(port),
           "--sim-clock", "manual", "--sim-start", "20250612103000", "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/api/v1/trading"
    request_ids: list[str] = []
    try:
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 240
            while True:
                try:
                    if client.get(f"{url}/status").json().get("connected"):
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"gateway did not start: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.5)
            tick = client.post(f"http://127.0.0.1:{port}/api/v1/xt/full_tick", json={"codes": ["600000.SH"]})
            price = tick.json()["data"]["600000.SH"]["lastPrice"]
            for i in range(20):
                body = {"code": "600000.SH", "side": "buy", "volume": 100 + (i % 2) * 50, "price": price,
                        "client_order_id": f"crash-{i}"}  # fmt: skip
                rid = f"req-{i}"
                r = client.post(f"{url}/orders", json=body, headers={"X-Request-ID": rid})
                assert r.status_code in (200, 422), r.text  # odd volumes are refused by risk (lot_size)
                request_ids.append(rid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(audit) as db:
        rows = db.execute("SELECT kind, request_id, client_order_id FROM audit").fetchall()
    by_request = {}
    for kind, rid, coid in rows:
        by_request.setdefault(rid, []).append((kind, coid))
    for i, rid in enumerate(request_ids):
        kinds = [k for k, _ in by_request.get(rid, [])]
        assert "request.place" in kinds, rid
        assert ("refused" if i % 2 else "response.place") in kinds, (rid, kinds)
        assert {c for _, c in by_request[rid]} == {f"crash-{i}"}
