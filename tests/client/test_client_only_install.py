"""A client-only install (``pip install "qmtgate[client]"``, issue #16 item 13).

``qmtgate.client`` and ``qmtgate.remote`` must load none of the server stack, and everything they do load
must come from the base install's dependencies (pyproject ``[project].dependencies`` and what those
require), so that a Mac with only the client set can use them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
SERVER_MODULES = ("fastapi", "uvicorn", "starlette", "duckdb", "pydantic", "typer", "exchange_calendars")
SERVER_PACKAGES = ("qmtgate.sim", "qmtgate.api", "qmtgate.source", "qmtgate.hub", "qmtgate.record")

_PROBE = """
import json, sys
import qmtgate.client
import qmtgate.remote
import qmtgate.remote.xtquant.xtdata
print(json.dumps(sorted(sys.modules)))
"""


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(SRC), **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120
    )


@pytest.fixture(scope="module")
def loaded() -> list[str]:
    done = _python(_PROBE)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_client_and_remote_load_no_server_code(loaded: list[str]) -> None:
    tops = {name.partition(".")[0] for name in loaded}
    assert not tops & set(SERVER_MODULES), sorted(tops & set(SERVER_MODULES))
    server = [m for m in loaded if m.startswith(SERVER_PACKAGES) or m in ("qmtgate.errors", "qmtgate.config")]
    assert server == []


def _requirement_names(dist: str) -> set[str]:
    """Names a distribution requires unconditionally (no extras), lower-cased, '-' for '_'."""
    out: set[str] = set()
    for req in metadata.requires(dist) or []:
        if "extra ==" in req.replace('"', "'").replace("extra==", "extra =="):
            continue
        name = re.match(r"[A-Za-z0-9_.\-]+", req)
        if name:
            out.add(name.group(0).lower().replace("_", "-"))
    return out


def _base_closure() -> set[str]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    todo = [
        re.match(r"[A-Za-z0-9_.\-]+", r).group(0).lower().replace("_", "-") for r in project["dependencies"]
    ]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            todo.extend(_requirement_names(name))
        except metadata.PackageNotFoundError:
            continue  # a marker-gated requirement not installed on this Python
    return seen


_ONLY_BASE = """
import json, sys
from importlib import metadata

allowed = set(json.loads(sys.argv[1]))
owners = metadata.packages_distributions()
stdlib = set(sys.stdlib_module_names)


class OnlyBase:
    \"\"\"Hide every installed module whose distribution is not in the base install (as on a Mac).\"\"\"

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in stdlib or top.startswith("_") or top == "qmtgate":
            return None
        dists = {d.lower().replace("_", "-") for d in owners.get(top, [])}
        if dists and not dists & allowed:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the base install)", name=name)
        return None


sys.meta_path.insert(0, OnlyBase())
import qmtgate.client
import qmtgate.remote
import qmtgate.remote.xtquant.xtdata
from qmtgate.client import AsyncClient, Client
from qmtgate.client._base import tls_context
from qmtgate.remote import install
tls_context("https://gateway:8000", "ab" * 32)  # certificate pinning works without the server stack
print("ok")
"""


def test_client_and_remote_import_with_only_the_base_install() -> None:
    closure = _base_closure()
    assert not closure & {"fastapi", "uvicorn", "duckdb", "typer", "pydantic"}, "server deps in the base set"
    environment = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", _ONLY_BASE, json.dumps(sorted(closure))],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


_BLOCK_TYPER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "typer":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
sys.argv = ["qmtgate", "version"]
from qmtgate._entry import main
main()
"""


def test_command_line_without_the_server_extra_says_what_to_install() -> None:
    done = _python(_BLOCK_TYPER)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert 'pip install "qmtgate[server]"' in done.stderr
    assert "typer" in done.stderr


def test_command_line_entry_runs_the_cli() -> None:
    done = _python("import sys; sys.argv = ['qmtgate', 'version']\nfrom qmtgate._entry import main\nmain()")
    assert done.returncode == 0, done.stderr
    assert re.search(r"\d+\.\d+", done.stdout)
