from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qmtgate import cli
from qmtgate.config import SimClock, SourceKind, package_version

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("QMTGATE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    return calls


def test_version() -> None:
    result = runner.invoke(cli.app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == package_version()


def test_serve_defaults_to_loopback(uvicorn_calls: list[dict[str, Any]]) -> None:
    result = runner.invoke(cli.app, ["serve"])
    assert result.exit_code == 0, result.output
    (call,) = uvicorn_calls
    assert (call["host"], call["port"], call["workers"]) == ("127.0.0.1", 8000, 1)
    settings = call["app"].state.settings
    assert settings.source is SourceKind.AUTO


def test_serve_flags_reach_the_settings(uvicorn_calls: list[dict[str, Any]], tmp_path: Path) -> None:
    config = tmp_path / "q.toml"
    config.write_text("port = 9100\n[sim]\nspeed = 30.0\n", encoding="utf-8")
    result = runner.invoke(
        cli.app,
        [
            "serve",
            "--config",
            str(config),
            "--source",
            "sim",
            "--sim-seed",
            "9",
            "--sim-clock",
            "replay",
        ],
    )
    assert result.exit_code == 0, result.output
    settings = uvicorn_calls[0]["app"].state.settings
    assert settings.port == 9100 and uvicorn_calls[0]["port"] == 9100
    assert settings.source is SourceKind.SIM
    assert (settings.sim.seed, settings.sim.speed, settings.sim.clock) == (9, 30.0, SimClock.REPLAY)


def test_serve_rejects_bad_settings(uvicorn_calls: list[dict[str, Any]], tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["serve", "--config", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2
    result = runner.invoke(cli.app, ["serve", "--port", "70000"])
    assert result.exit_code == 2
    assert uvicorn_calls == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("10.0.0.5", False)],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert cli._is_loopback(host) is loopback
