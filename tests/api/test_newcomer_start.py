"""A newcomer's first minutes (issue #16, items 11 and 12): the docs work offline, ``GET /`` says where to go,
``doctor`` beside a running gateway on Linux/macOS passes, ``serve --source xtquant`` without xtquant fails
in one line, and the ready banner gives working URLs.
"""

from __future__ import annotations

import importlib.machinery
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from qmtgate import cli
from qmtgate.api.app import create_app
from qmtgate.config import Settings
from qmtgate.ops import doctor
from qmtgate.ops.startup import start_banner, xtquant_import_problem

from .support import LiveServer, make_source


class _Refs(HTMLParser):
    """Every URL a page loads or links (src, href, ReDoc's spec-url) and every quoted URL in its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._script = tag == "script"
        self.refs += [v for k, v in attrs if k in ("src", "href", "spec-url") and v]

    def handle_data(self, data: str) -> None:
        if self._script:
            self.refs += re.findall(r"""['"]((?:https?:)?//[^'"]+|/[^'"\s]*)['"]""", data)


def _refs(html: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    return parser.refs


# -- 11: /docs and /redoc without a CDN -----------------------------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_everything_from_the_gateway(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    refs = _refs(response.text)
    assert refs, "the page references its scripts"
    external = [r for r in refs if urlsplit(r).netloc]
    assert external == [], f"{page} loads from another host: {external}"
    assets = [r for r in refs if r.startswith("/docs/assets/")]
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        loaded = client.get(asset)
        assert loaded.status_code == 200 and len(loaded.content) > 1000, asset
    assert "/openapi.json" in refs and client.get("/openapi.json").status_code == 200


def test_docs_swagger_bundle_is_the_real_swagger_ui(client: TestClient) -> None:
    js = client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.headers["content-type"].startswith(("application/javascript", "text/javascript"))
    assert b"SwaggerUIBundle" in js.content and len(js.content) > 500_000
    assert client.get("/docs/assets/swagger-ui.css").headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("public", [True, False])
def test_docs_and_assets_are_public_when_docs_are_public(fake: object, public: bool) -> None:
    from qmtgate.security.keys import generate_key

    settings = Settings(source="sim", auth={"keys": [generate_key("reader").record], "public_docs": public})
    with TestClient(create_app(settings, make_source(fake))) as c:  # type: ignore[arg-type]
        for path in (
            "/",
            "/docs",
            "/redoc",
            "/docs/assets/swagger-ui-bundle.js",
            "/docs/assets/redoc.standalone.js",
        ):
            assert c.get(path).status_code == (200 if public else 401), path
        assert c.get("/api/v1/sectors").status_code == 401  # the data still needs a key


# -- 12: GET / ------------------------------------------------------------------------------------------


def test_root_points_to_the_docs_json_and_html(client: TestClient) -> None:
    body = client.get("/").json()
    assert body["name"] == "qmtgate" and body["version"]
    assert body["links"]["/docs"]["href"] == "http://testserver/docs"
    for path in body["links"]:
        assert client.get(path).status_code == 200, path  # every link works
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.headers["content-type"].startswith("text/html")
    assert 'href="http://testserver/docs"' in page.text and "/api/v1/health/live" in page.text


# -- 12: the ready banner --------------------------------------------------------------------------------


def test_ready_banner_is_logged_with_working_urls(
    fake: object, serve: Callable[[FastAPI], LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="qmtgate.api.app"):
        server = serve(create_app(Settings(source="sim"), make_source(fake)))  # type: ignore[arg-type]
    banner = next(r.getMessage() for r in caplog.records if "qmtgate is ready" in r.getMessage())
    assert "http://127.0.0.1:8000/docs" in banner and "/api/v1/health/live" in banner and "curl" in banner
    # the test server listens on another port than the settings say: every URL of the banner for that
    # port answers 200
    port = urlsplit(server.url).port
    bound = start_banner(Settings(source="sim", port=port))
    for url in re.findall(r"(https?://[^\s']+)", bound):
        assert httpx.get(url, timeout=30).status_code == 200, url


def test_banner_with_keys_tls_and_any_address(tmp_path: Path) -> None:
    settings = Settings(
        host="0.0.0.0",
        port=8443,
        auth={"keys_file": tmp_path / "keys.json"},
        tls={"cert_file": tmp_path / "c.pem", "key_file": tmp_path / "k.pem"},
    )
    banner = start_banner(settings, "xtquant")
    assert "https://127.0.0.1:8443/docs" in banner and "(source: xtquant)" in banner
    assert "-H 'X-API-Key: <your key>'" in banner and f"--cacert '{tmp_path / 'c.pem'}'" in banner
    assert "wss://127.0.0.1:8443/api/v1/ws" in banner and "LAN address" in banner


# -- 12: serve --source xtquant without xtquant ------------------------------------------------------------


def test_serve_xtquant_without_xtquant_is_one_clear_line() -> None:
    # a fresh process, as a newcomer runs it (in this one the simulator may stand in as `xtquant`)
    if importlib.machinery.PathFinder.find_spec("xtquant") is not None:  # on disk, not the sim in sys.modules
        pytest.skip("xtquant is installed here")
    done = subprocess.run(
        [sys.executable, "-c", "from qmtgate.cli import app; app()", "serve", "--source", "xtquant"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 2
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("qmtgate: ") and "xtquant" in lines[0]
    assert "Windows" in lines[0] or "pip install xtquant" in lines[0]


def test_xtquant_import_problem_advice_per_platform() -> None:
    def missing(name: str) -> object:
        raise ModuleNotFoundError("No module named 'xtquant'")

    win = xtquant_import_problem(missing, "Windows", r"C:\Py312\python.exe", r"C:\Py312\Lib\site-packages")
    assert win is not None and r'"C:\Py312\python.exe" -m pip install xtquant' in win
    assert r"C:\Py312\Lib\site-packages" in win and "\n" not in win
    mac = xtquant_import_problem(missing, "Darwin")
    assert mac is not None and "only on Windows" in mac and "--source sim" in mac

    def broken(name: str) -> object:
        raise Exception("rpc init failed\nmore lines")  # what a damaged xtquant raises

    damaged = xtquant_import_problem(broken, "Windows", "python.exe", "site")
    assert damaged is not None and "rpc init failed" in damaged and "\n" not in damaged
    assert xtquant_import_problem(lambda name: object(), "Windows") is None  # type: ignore[arg-type,return-value]


# -- 12: doctor beside a running gateway, on Linux/macOS ---------------------------------------------------


def test_doctor_recognises_the_running_gateway_on_its_port(
    fake: object, serve: Callable[[FastAPI], LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(create_app(Settings(source="sim"), make_source(fake)))  # type: ignore[arg-type]
    port = urlsplit(server.url).port
    assert port is not None
    (check,) = doctor.check_port("127.0.0.1", port)
    assert check.status == "ok" and "running qmtgate" in check.summary and "simulated" in check.summary
    monkeypatch.setenv("QMTGATE_PORT", str(port))
    result = CliRunner().invoke(cli.app, ["doctor", "--skip-import"])
    assert "running qmtgate" in result.output
    if doctor.platform.system() != "Windows":  # no QMT here by design: nothing to fix, exit 0
        assert result.exit_code == 0, result.output
        assert "Windows user" not in result.output and "findstr" not in result.output


def test_doctor_port_taken_by_another_program_gives_the_command_of_this_os() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        linux = doctor.check_port("127.0.0.1", port, probe=lambda h, p: None, system="Linux")[0]
        mac = doctor.check_port("127.0.0.1", port, probe=lambda h, p: None, system="Darwin")[0]
        win = doctor.check_port("127.0.0.1", port, probe=lambda h, p: None, system="Windows")[0]
        real = doctor.check_port("127.0.0.1", port)[0]  # a plain TCP listener is not a qmtgate
    assert linux.status == mac.status == win.status == real.status == "fail"
    assert f"ss -ltnp 'sport = :{port}'" in linux.fix_en and "findstr" not in linux.fix_en
    assert f"lsof -nP -iTCP:{port}" in mac.fix_en and f"findstr :{port}" in win.fix_en


def test_doctor_on_linux_and_mac_gives_no_windows_setup_steps(tmp_path: Path) -> None:
    for system in ("Linux", "Darwin"):
        checks = doctor.check_qmt(Settings(), home=tmp_path, probe=lambda h, p: False, system=system)
        assert [c.status for c in checks] == ["info"]
        assert "Windows user" not in checks[0].fix_en and "--source sim" in checks[0].fix_en
        clock = doctor.check_clock(utc_offset=doctor.dt.timedelta(hours=8), system=system)[0]
        assert "Windows" not in clock.fix_en
    windows = {
        c.name: c
        for c in doctor.check_qmt(Settings(), home=tmp_path, probe=lambda h, p: False, system="Windows")
    }
    assert windows["qmt_discovery"].status == "warn" and windows["qmt_port"].status == "fail"
