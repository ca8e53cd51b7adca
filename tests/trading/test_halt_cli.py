"""``qmtgate trading halt`` / ``resume`` against a real gateway on loopback (API keys on)."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from qmtgate import cli
from qmtgate.api.app import create_app
from qmtgate.config import Settings
from qmtgate.security.keys import generate_key

from .conftest import trading_settings

try:  # tests/ on sys.path
    from api.support import start_server
except ImportError:  # tests/ itself is a package
    from tests.api.support import start_server  # type: ignore[no-redef]


def test_halt_and_resume_from_the_command_line(tmp_path: Path) -> None:
    boss = generate_key("boss", ["trade", "admin"])
    trader = generate_key("trader", ["trade"])
    auth = Settings(auth={"keys": [boss.record.model_dump(), trader.record.model_dump()]}).auth
    settings = trading_settings(tmp_path / "a.sqlite", allow_loopback_without_auth=False)
    server = start_server(create_app(settings.model_copy(update={"auth": auth})))
    runner = CliRunner()
    try:
        denied = runner.invoke(cli.app, ["trading", "halt", "--url", server.url, "--api-key", trader.token])
        assert denied.exit_code == 1 and "forbidden" in denied.output
        out = runner.invoke(
            cli.app, ["trading", "halt", "--url", server.url], env={"QMTGATE_TRADING_KEY": boss.token}
        )
        assert out.exit_code == 0 and '"halted":true' in out.output.replace(" ", "")
        status = httpx.get(f"{server.url}/api/v1/trading/status", headers={"X-API-Key": trader.token}).json()
        assert status["halted"] is True
        out = runner.invoke(cli.app, ["trading", "resume", "--url", server.url, "--api-key", boss.token])
        assert out.exit_code == 0
        status = httpx.get(f"{server.url}/api/v1/trading/status", headers={"X-API-Key": trader.token}).json()
        assert status["halted"] is False
    finally:
        server.stop()
    gone = runner.invoke(cli.app, ["trading", "resume", "--url", server.url, "--api-key", boss.token])
    assert gone.exit_code == 1 and "cannot reach" in gone.output
