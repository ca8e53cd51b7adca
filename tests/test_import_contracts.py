"""The import contracts of pyproject.toml ([tool.importlinter]) hold, so a wrong import fails CI.

The layers and what each may import are described in docs/architecture.md. ``lint-imports`` is run the
way ``make lint`` runs it, from this interpreter's scripts directory, on this checkout's ``src`` (put
first on PYTHONPATH so that a shared virtualenv's editable install of another checkout is not checked).
The second test copies the package, adds one forbidden import and checks that the linter refuses it:
the contracts must bite, not only pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    scripts = Path(sys.executable).parent
    exe = shutil.which("lint-imports", path=str(scripts))
    if exe is None:  # a missing tool must fail the suite, not skip the check
        raise AssertionError(
            f"lint-imports is not installed next to {sys.executable}: pip install -e '.[test]'"
        )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run(
        [exe, "--no-cache", "--no-logo"],  # reads pyproject.toml in cwd (every import-linter 2.x)
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_contracts_are_kept() -> None:
    result = _lint_imports(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_a_new_wrong_import_breaks_the_contracts(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "qmtgate", src / "qmtgate", ignore=shutil.ignore_patterns("__pycache__"))
    # The simulator reaching up into the hub: forbidden by the layers and by sim-standalone.
    market = src / "qmtgate" / "sim" / "market.py"
    market.write_text(market.read_text(encoding="utf-8") + "\nimport qmtgate.hub.ring\n", encoding="utf-8")
    result = _lint_imports(src)
    assert result.returncode != 0, result.stdout
    assert "qmtgate.sim.market -> qmtgate.hub.ring" in result.stdout, result.stdout
    assert "BROKEN" in result.stdout, result.stdout
