"""HTTP limits below the app (issue #17 items 3 and 4, issue #16 item 3), against a live gateway process.

The gateway runs in its own process (tests/security/limits_server.py, auth on, fake xtdata) with small
limits, and is attacked over raw sockets on loopback without a key: oversized heads (431), too many header
lines (431), oversized bodies (413), slow heads (408), too many pending connections from one address (429).
Every refusal comes before authentication (no key is sent, and the answer is not 401), and the process's
resident memory stays flat while megabytes are thrown at it. Also: raw UTF-8 in the request line (a
Chinese sector name pasted into curl) is accepted and decoded like its percent-encoded form.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from qmtgate.security.http_guard import percent_encode_high
from qmtgate.security.keys import NewKey, generate_key

pytestmark = pytest.mark.timeout(120)

LIMITS = {
    "max_head_bytes": 16 * 1024,
    "max_headers": 40,
    "max_body_bytes": 64 * 1024,
    "head_timeout": 1.0,
    "body_timeout": 2.0,
    "max_pending_per_address": 20,
}


@dataclass
class Gateway:
    port: int
    process: subprocess.Popen[str]
    key: NewKey

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    key = generate_key("reader", ["read"])
    settings = {"source": "sim", "auth": {"keys": [key.record.model_dump()]}, "http": LIMITS}
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    script = Path(__file__).with_name("limits_server.py")
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port), "--settings", json.dumps(settings)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "ready":
        process.kill()
        raise RuntimeError(f"gateway did not start: {line!r}")
    try:
        yield Gateway(port, process, key)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def connect(gw: Gateway) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    return s


def read_response(s: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one response; the connection is read until closed or complete."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def closed(s: socket.socket, timeout: float = 5.0) -> bool:
    """True when the server closed the connection (EOF or reset) within ``timeout``."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


def send_until_refused(s: socket.socket, head: bytes, filler: bytes, total: int) -> int:
    """Send ``head`` then ``filler`` up to ``total`` bytes; stop when the server stops taking them."""
    sent = 0
    try:
        s.sendall(head)
        while sent < total:
            s.sendall(filler)
            sent += len(filler)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    return sent


def error_code(body: bytes) -> str:
    return orjson.loads(body)["error"]["code"]


def test_huge_header_refused_431_before_auth_with_rss_flat(gateway: Gateway) -> None:
    before = gateway.rss_kib()
    sockets = [connect(gateway) for _ in range(4)]
    sent = []
    for s in sockets:  # each tries 32 MB of one unfinished header, without a key
        sent.append(
            send_until_refused(s, b"GET /api/v1/snapshots HTTP/1.1\r\nX-Big: ", b"a" * 65536, 32 << 20)
        )
    for s in sockets:
        status, _, body = read_response(s)
        assert status == 431
        assert error_code(body) == "headers_too_large"
        assert closed(s)
        s.close()
    # the server discards what still arrives for a second after refusing (a lingering close, so that the
    # client reads the 431 rather than a reset), and buffers none of it: RSS stays flat
    assert sum(sent) > 4 * (LIMITS["max_head_bytes"])
    assert gateway.rss_kib() - before < 30_000  # well under the 4 x 32 MB thrown at it


def test_too_many_header_lines_refused_431(gateway: Gateway) -> None:
    s = connect(gateway)
    lines = b"".join(b"X-H%d: v\r\n" % i for i in range(41))
    s.sendall(b"GET /api/v1/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n" + lines + b"\r\n")
    status, _, body = read_response(s)
    assert status == 431
    assert error_code(body) == "headers_too_large"
    assert closed(s)
    s.close()
    # a normal request still works
    assert httpx.get(f"{gateway.url}/api/v1/health/live").status_code == 200


def test_oversized_body_refused_413_before_auth(gateway: Gateway) -> None:
    before = gateway.rss_kib()
    # announced: refused at the head, the body never read
    s = connect(gateway)
    s.sendall(
        b"POST /api/v1/xt/full_tick HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 104857600\r\n\r\n"
    )
    status, _, body = read_response(s)
    assert status == 413
    assert error_code(body) == "body_too_large"
    assert closed(s)
    s.close()
    # chunked: refused once the chunks pass the limit (with a key, so that the route waits for the body
    # rather than answering 401 at once)
    s = connect(gateway)
    head = (
        b"POST /api/v1/xt/full_tick HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        b"X-API-Key: " + gateway.key.token.encode() + b"\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (16384, b"a" * 16384)
    sent = send_until_refused(s, head, chunk, 64 << 20)
    status, _, body = read_response(s)
    assert status == 413
    assert error_code(body) == "body_too_large"
    s.close()
    assert sent > LIMITS["max_body_bytes"]
    assert gateway.rss_kib() - before < 30_000


def test_slow_head_times_out_408(gateway: Gateway) -> None:
    started = time.monotonic()
    slow = connect(gateway)
    slow.sendall(b"GET /api/v1/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
    silent = connect(gateway)  # never sends a byte
    status, _, body = read_response(slow)
    assert status == 408
    assert error_code(body) == "request_timeout"
    assert closed(slow)
    assert closed(silent)
    assert time.monotonic() - started < 8  # head_timeout is 1 s
    slow.close()
    silent.close()


def test_slowloris_one_byte_at_a_time_is_cut_off(gateway: Gateway) -> None:
    s = connect(gateway)
    started = time.monotonic()
    request = b"GET /api/v1/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
    try:
        for byte in request:
            s.sendall(bytes([byte]))
            time.sleep(0.1)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert closed(s, timeout=5)
    assert time.monotonic() - started < 8
    s.close()


def test_pending_connections_per_address_capped(gateway: Gateway) -> None:
    idle = [connect(gateway) for _ in range(LIMITS["max_pending_per_address"])]
    time.sleep(0.2)
    extra = connect(gateway)
    status, headers, body = read_response(extra)
    assert status == 429
    assert error_code(body) == "too_many_connections"
    assert headers.get("retry-after") == "1"
    extra.close()
    for s in idle:
        s.close()
    time.sleep(0.3)
    # once they are gone the address is served again (and keys work as before)
    answer = httpx.get(f"{gateway.url}/api/v1/sectors", headers={"X-API-Key": gateway.key.token})
    assert answer.status_code == 200


def test_pending_slots_freed_by_timeouts(gateway: Gateway) -> None:
    idle = [connect(gateway) for _ in range(LIMITS["max_pending_per_address"])]
    for s in idle:
        assert closed(s, timeout=5)  # each timed out by the head timeout
        s.close()
    answer = httpx.get(f"{gateway.url}/api/v1/health/live")
    assert answer.status_code == 200


def raw_get(gw: Gateway, target: bytes, key: str | None = None) -> tuple[int, bytes]:
    s = connect(gw)
    auth = f"X-API-Key: {key}\r\n".encode() if key else b""
    s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + b"Connection: close\r\n\r\n")
    status, _, body = read_response(s)
    s.close()
    return status, body


def test_raw_utf8_in_query_and_path_is_accepted(gateway: Gateway) -> None:
    key = gateway.key.token
    raw = "沪深A股".encode()
    for target in (
        b"/api/sector_stocks?sector=" + raw,  # qmt-bridge compat, as its README shows it
        b"/api/v1/sectors/" + raw + b"/members",
        b"/api/v1/snapshots?sector=" + raw,
    ):
        status, body = raw_get(gateway, target, key)
        assert status == 200, (target, body)
        answer = orjson.loads(body)
        members = answer.get("stocks") or [
            row["code"] if isinstance(row, dict) else row for row in answer["data"]
        ]
        assert set(members) == {"600000.SH", "000001.SZ"}
    # the percent-encoded form answers the same
    status, body = raw_get(gateway, b"/api/sector_stocks?sector=" + percent_encode_high(raw), key)
    assert status == 200
    assert orjson.loads(body)["stocks"] == ["600000.SH", "000001.SZ"]
    # an unknown raw UTF-8 sector is the usual 404 naming it, not a parser 400
    status, body = raw_get(gateway, b"/api/v1/sectors/" + "不存在".encode() + b"/members", key)
    assert status == 404
    assert "不存在" in orjson.loads(body)["error"]["message"]


def test_percent_encode_high() -> None:
    assert percent_encode_high("/a?s=沪".encode()) == b"/a?s=%E6%B2%AA"
    assert percent_encode_high(b"/plain?x=1") == b"/plain?x=1"


def test_serve_runs_uvicorn_with_the_guarded_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from qmtgate import cli
    from qmtgate.security.http_guard import GuardedHttpToolsProtocol

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    monkeypatch.setenv("QMTGATE_HTTP__HEAD_TIMEOUT", "3.5")
    result = CliRunner().invoke(cli.app, ["serve", "--source", "sim"])
    assert result.exit_code == 0, result.output
    (call,) = calls
    protocol = call["http"]
    assert isinstance(protocol, type) and issubclass(protocol, GuardedHttpToolsProtocol)
    assert protocol.limits.head_timeout == 3.5


def test_slow_body_times_out_408(gateway: Gateway) -> None:
    started = time.monotonic()
    s = connect(gateway)
    s.sendall(
        b"POST /api/v1/xt/full_tick HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"X-API-Key: " + gateway.key.token.encode() + b'\r\nContent-Length: 100\r\n\r\n{"codes": '
    )  # 11 of the 100 bytes announced, then nothing
    status, _, body = read_response(s)
    assert status == 408
    assert error_code(body) == "request_timeout"
    assert closed(s)
    assert time.monotonic() - started < 10  # body_timeout is 2 s
    s.close()
