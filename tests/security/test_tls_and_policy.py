"""TLS with a pinned self-signed certificate end to end, and the start-up refusal without keys."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner
from websockets.sync.client import connect

from qmtgate import cli
from qmtgate.config import Settings
from qmtgate.ops.cert import certificate_fingerprint, make_self_signed
from qmtgate.security.keys import generate_key, write_key_file
from qmtgate.security.pinning import FingerprintMismatch, normalize_fingerprint, pinned_ssl_context
from qmtgate.security.policy import check_serve_policy

from .support import Keys, auth_app, header, make_keys

runner = CliRunner()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("tls")
    info = make_self_signed(folder / "cert.pem", folder / "key.pem")
    return info.cert_file, info.key_file, info.fingerprint


@pytest.fixture(scope="module")
def tls_server(keys: Keys, certificate: tuple[Path, Path, str]) -> Iterator[tuple[str, Any]]:
    cert_file, key_file, _ = certificate
    app = auth_app(keys)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ssl_certfile=str(cert_file),
            ssl_keyfile=str(key_file),
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    yield f"127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(timeout=10)


def _requests_seen(app: Any) -> float:
    return sum(
        s.value
        for family in app.state.metrics.http_requests.collect()
        for s in family.samples
        if s.name.endswith("_total")
    )


def test_https_round_trip_with_the_pinned_fingerprint(
    tls_server: tuple[str, Any], certificate: tuple[Path, Path, str], keys: Keys
) -> None:
    address, _ = tls_server
    fingerprint = certificate[2]
    assert certificate_fingerprint(certificate[0]) == fingerprint
    with httpx.Client(base_url=f"https://{address}", verify=pinned_ssl_context(fingerprint), timeout=10) as c:
        response = c.get("/api/v1/capabilities", headers=header(keys.read))
        assert response.status_code == 200
        assert response.json()["source"] == "simulated"
    # the same pin in other spellings, and among several (certificate rollover)
    other = pinned_ssl_context(["00" * 32, normalize_fingerprint(fingerprint)])
    with httpx.Client(base_url=f"https://{address}", verify=other, timeout=10) as c:
        assert c.get("/api/v1/health/live").status_code == 200
    with connect(
        f"wss://{address}/api/v1/ws",
        ssl=pinned_ssl_context(fingerprint),
        additional_headers=header(keys.stream),
    ) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"


def test_a_wrong_fingerprint_fails_before_any_request_is_sent(
    tls_server: tuple[str, Any], keys: Keys
) -> None:
    address, app = tls_server
    seen = _requests_seen(app)
    wrong = pinned_ssl_context("AB:" * 31 + "AB")
    with (
        httpx.Client(base_url=f"https://{address}", verify=wrong, timeout=10) as c,
        pytest.raises(httpx.ConnectError) as failed,
    ):
        c.get("/api/v1/capabilities", headers=header(keys.read))
    assert "not the pinned one" in str(failed.value)
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw, pytest.raises(FingerprintMismatch):
        wrong.wrap_socket(raw, server_hostname=host)
    time.sleep(0.2)
    assert _requests_seen(app) == seen  # the key never reached the server
    # and a default client (CA verification) refuses the self-signed certificate
    with httpx.Client(base_url=f"https://{address}", timeout=10) as c, pytest.raises(httpx.ConnectError):
        c.get("/api/v1/health/live")


def test_fingerprint_spelling() -> None:
    hex64 = "ab" * 32
    assert normalize_fingerprint(":".join(["AB"] * 32)) == hex64
    assert normalize_fingerprint(f"sha256:{hex64}") == hex64
    with pytest.raises(ValueError):
        normalize_fingerprint("abc")


def test_cert_command_prints_the_fingerprint(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["cert", "--out-dir", str(tmp_path), "--host", "192.168.1.20"])
    assert result.exit_code == 0, result.output
    printed = result.stdout.splitlines()[0].removeprefix("SHA-256 fingerprint: ")
    assert printed == certificate_fingerprint(tmp_path / "qmtgate-cert.pem")
    if os.name != "nt":
        assert (tmp_path / "qmtgate-key.pem").stat().st_mode & 0o077 == 0
    again = runner.invoke(cli.app, ["cert", "--out-dir", str(tmp_path)])
    assert again.exit_code == 1  # never overwrites a key


# -- start-up policy ---------------------------------------------------------------------------------------


@pytest.fixture
def no_qmtgate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("QMTGATE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch, no_qmtgate_env: None) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    return calls


def test_a_non_loopback_bind_without_a_key_refuses_to_start(uvicorn_calls: list[dict[str, Any]]) -> None:
    result = runner.invoke(cli.app, ["serve", "--host", "0.0.0.0", "--source", "sim"])
    assert result.exit_code == 2
    assert "refusing to bind 0.0.0.0" in result.output
    assert uvicorn_calls == []


def test_insecure_no_auth_starts_with_a_loud_warning(uvicorn_calls: list[dict[str, Any]]) -> None:
    findings = check_serve_policy(Settings(host="0.0.0.0"), insecure_no_auth=True)
    assert not any(f.fatal for f in findings)
    assert any("NO AUTHENTICATION" in f.message for f in findings)
    result = runner.invoke(cli.app, ["serve", "--host", "0.0.0.0", "--source", "sim", "--insecure-no-auth"])
    assert result.exit_code == 0, result.output
    assert len(uvicorn_calls) == 1


def test_keys_commands_and_a_keyed_tls_bind_start(
    uvicorn_calls: list[dict[str, Any]], tmp_path: Path, certificate: tuple[Path, Path, str]
) -> None:
    keys_file = tmp_path / "keys.json"
    created = runner.invoke(
        cli.app, ["keys", "create", "--name", "mac", "-s", "read,stream", "--keys-file", str(keys_file)]
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[0]
    assert token.startswith("qg_") and token not in keys_file.read_text()
    key_id = token.split("_")[1]
    listed = runner.invoke(cli.app, ["keys", "list", "--keys-file", str(keys_file)])
    assert key_id in listed.stdout and "active" in listed.stdout and "read,stream" in listed.stdout
    cert_file, key_file, _ = certificate
    result = runner.invoke(
        cli.app,
        [
            "serve",
            "--host",
            "0.0.0.0",
            "--source",
            "sim",
            "--keys-file",
            str(keys_file),
            "--tls-cert",
            str(cert_file),
            "--tls-key",
            str(key_file),
        ],
    )
    assert result.exit_code == 0, result.output
    (call,) = uvicorn_calls
    assert call["ssl_certfile"] == str(cert_file) and call["ssl_keyfile"] == str(key_file)
    assert call["app"].state.security.active
    revoked = runner.invoke(cli.app, ["keys", "revoke", key_id, "--keys-file", str(keys_file)])
    assert revoked.exit_code == 0
    # with its only key revoked the bind is refused again
    again = runner.invoke(
        cli.app, ["serve", "--host", "0.0.0.0", "--source", "sim", "--keys-file", str(keys_file)]
    )
    assert again.exit_code == 2


def test_tls_needs_both_files(tmp_path: Path) -> None:
    findings = check_serve_policy(Settings(tls={"cert_file": tmp_path / "c.pem"}))
    assert any(f.fatal and "both" in f.message for f in findings)


def test_a_loopback_bind_without_keys_starts_as_before(uvicorn_calls: list[dict[str, Any]]) -> None:
    result = runner.invoke(cli.app, ["serve", "--source", "sim"])
    assert result.exit_code == 0
    assert uvicorn_calls[0]["app"].state.security.active is False


def test_inline_keys_in_toml_config(tmp_path: Path, uvicorn_calls: list[dict[str, Any]]) -> None:
    new = generate_key("svc", ["read"])
    write_key_file(tmp_path / "k.json", [new.record])
    config = tmp_path / "q.toml"
    config.write_text(
        f'host = "0.0.0.0"\n[auth]\nkeys_file = "{(tmp_path / "k.json").as_posix()}"\n', encoding="utf-8"
    )
    result = runner.invoke(cli.app, ["serve", "--config", str(config), "--source", "sim"])
    assert result.exit_code == 0, result.output
