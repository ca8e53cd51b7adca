"""``qmtgate mcp`` runs on a client install plus the ``mcp`` extra: it loads no gateway code, its command
line does not need the server extra's modules, and the import contract ``mcp-client-side`` bites."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
#: gateway-side qmtgate modules (the foundation included: errors pulls FastAPI, config pydantic-settings)
SERVER = (
    "qmtgate.api", "qmtgate.cli", "qmtgate.codes", "qmtgate.config", "qmtgate.errors", "qmtgate.hub",
    "qmtgate.ops", "qmtgate.record", "qmtgate.security.keys", "qmtgate.sim", "qmtgate.source",
)  # fmt: skip
#: modules of the server extra that the MCP server's own dependencies do not bring (the SDK brings cryptography)
SERVER_ONLY = (
    "fastapi",
    "duckdb",
    "exchange_calendars",
    "prometheus_client",
    "pydantic_settings",
)

_PROBE = """
import json, sys
sys.argv = ["qmtgate", "mcp", "--help"]
from qmtgate import _entry
try:
    _entry.main()
except SystemExit:
    pass
import qmtgate.mcp.server
print(json.dumps(sorted(sys.modules)))
"""


def test_mcp_loads_no_gateway_code() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert [m for m in loaded if any(m == p or m.startswith(p + ".") for p in SERVER)] == []
    assert not {m.partition(".")[0] for m in loaded} & set(SERVER_ONLY)
    assert "qmtgate.mcp.cli" in loaded and "qmtgate.client" in loaded


def test_the_mcp_contract_bites(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(SRC / "qmtgate", src / "qmtgate", ignore=shutil.ignore_patterns("__pycache__"))
    gateway = src / "qmtgate" / "mcp" / "gateway.py"
    gateway.write_text(gateway.read_text(encoding="utf-8") + "\nimport qmtgate.codes\n", encoding="utf-8")
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe is not None, "lint-imports is not installed: pip install -e '.[test]'"
    done = subprocess.run(
        [exe, "--no-cache", "--no-logo"],  # reads pyproject.toml in cwd (every import-linter 2.x)
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0, done.stdout
    assert "qmtgate.mcp.gateway -> qmtgate.codes" in done.stdout and "BROKEN" in done.stdout


_BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Block())
sys.argv = ["qmtgate", "mcp", "--url", "http://127.0.0.1:9"]
from qmtgate._entry import main
main()
"""


@pytest.mark.parametrize("blocked", ["mcp", "typer"])
def test_without_the_mcp_extra_it_says_what_to_install(blocked: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _BLOCK.format(blocked=blocked)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert 'pip install "qmtgate[mcp]"' in done.stderr
