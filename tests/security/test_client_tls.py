"""The project's own clients against a live TLS gateway (issue #16 item 6): ``Client``, ``AsyncClient``
and ``qmtgate.remote`` take ``tls_fingerprint=`` (what ``qmtgate cert`` prints) and ``tls_ca=`` (a PEM
file) for both REST (httpx) and the WebSocket (websockets)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

import qmtgate.remote
from qmtgate.client import AsyncClient, Client
from qmtgate.client.errors import ConnectionFailed
from qmtgate.ops.cert import make_self_signed

from .support import Keys, auth_app, make_keys

WRONG_PIN = ":".join(["AB"] * 32)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("tls")
    info = make_self_signed(folder / "qmtgate-cert.pem", folder / "qmtgate-key.pem")
    return info.cert_file, info.key_file, info.fingerprint


@pytest.fixture(scope="module")
def port(keys: Keys, certificate: tuple[Path, Path, str]) -> Iterator[int]:
    cert_file, key_file, _ = certificate
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    number = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            auth_app(keys),
            host="127.0.0.1",
            port=number,
            log_level="warning",
            ssl_certfile=str(cert_file),
            ssl_keyfile=str(key_file),
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    yield number
    server.should_exit = True
    thread.join(timeout=10)


def _both(keys: Keys) -> str:
    return keys.admin.token  # read + stream


def test_sync_client_with_the_right_pin_reads_and_streams(
    port: int, certificate: tuple[Path, Path, str], keys: Keys
) -> None:
    with Client(f"https://127.0.0.1:{port}", api_key=_both(keys), tls_fingerprint=certificate[2]) as c:
        assert c.capabilities()["source"] == "simulated"
        stream = c.open_stream()
        assert c.run(stream.wait_connected(10), timeout=20) is True
        c.run(stream.close(), timeout=10)


def test_sync_client_with_a_wrong_pin_fails_with_a_clear_error(port: int, keys: Keys) -> None:
    with Client(f"https://127.0.0.1:{port}", api_key=_both(keys), tls_fingerprint=WRONG_PIN) as c:
        with pytest.raises(ConnectionFailed, match="not the pinned one"):
            c.capabilities()
        stream = c.open_stream()
        with pytest.raises(ConnectionFailed, match="not the pinned one"):
            c.run(stream.wait_connected(10), timeout=20)
        assert stream.reconnects == 0  # a certificate mismatch is final, not retried


def test_without_an_option_the_self_signed_certificate_is_refused(port: int, keys: Keys) -> None:
    with Client(f"https://127.0.0.1:{port}", api_key=_both(keys)) as c, pytest.raises(ConnectionFailed):
        c.capabilities()


def test_ca_file_works_for_rest_and_websocket(
    port: int, certificate: tuple[Path, Path, str], keys: Keys
) -> None:
    async def main() -> None:
        async with AsyncClient(
            f"https://localhost:{port}", api_key=_both(keys), tls_ca=certificate[0]
        ) as client:
            assert (await client.capabilities())["source"] == "simulated"
            stream = client.stream()
            assert await stream.wait_connected(10) is True
            await stream.close()

    asyncio.run(main())


def test_async_client_pin_right_and_wrong(port: int, certificate: tuple[Path, Path, str], keys: Keys) -> None:
    async def main() -> None:
        url = f"https://127.0.0.1:{port}"
        async with AsyncClient(url, api_key=_both(keys), tls_fingerprint=certificate[2]) as good:
            assert (await good.capabilities())["source"] == "simulated"
            stream = good.stream()
            assert await stream.wait_connected(10) is True
        async with AsyncClient(url, api_key=_both(keys), tls_fingerprint=WRONG_PIN) as bad:
            with pytest.raises(ConnectionFailed, match="not the pinned one"):
                await bad.capabilities()

    asyncio.run(main())


def test_remote_install_with_the_pin(port: int, certificate: tuple[Path, Path, str], keys: Keys) -> None:
    session = qmtgate.remote.install(
        f"https://127.0.0.1:{port}", api_key=_both(keys), tls_fingerprint=certificate[2]
    )
    try:
        from xtquant import xtdata

        assert xtdata.get_instrument_detail("600000.SH")["InstrumentID"] == "600000"
        seq = xtdata.subscribe_quote("600000.SH", period="tick", callback=lambda data: None)
        assert seq > 0
        assert session._stream is not None and session._stream.connected.is_set()
    finally:
        qmtgate.remote.uninstall()


def test_remote_with_a_wrong_pin_raises_once(port: int, keys: Keys) -> None:
    session = qmtgate.remote.connect(
        f"https://127.0.0.1:{port}", api_key=_both(keys), tls_fingerprint=WRONG_PIN
    )
    try:
        from qmtgate.remote.xtquant import xtdata

        with pytest.raises(ConnectionFailed, match="not the pinned one"):
            xtdata.get_instrument_detail("600000.SH")
        with pytest.raises(ConnectionFailed, match="not the pinned one"):
            xtdata.subscribe_quote("600000.SH", period="tick", callback=lambda data: None)
    finally:
        session.close()


def test_bad_option_combinations_say_what_is_wrong(certificate: tuple[Path, Path, str]) -> None:
    with pytest.raises(ValueError, match="https://"):
        Client("http://127.0.0.1:1", tls_fingerprint=WRONG_PIN)
    with pytest.raises(ValueError, match="not both"):
        Client("https://127.0.0.1:1", tls_fingerprint=WRONG_PIN, tls_ca=certificate[0])
    with pytest.raises(ValueError, match="no such file"):
        Client("https://127.0.0.1:1", tls_ca="/nonexistent/ca.pem")
    with pytest.raises(ValueError, match="64 hex"):
        Client("https://127.0.0.1:1", tls_fingerprint="abc")
