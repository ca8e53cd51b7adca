"""Run the quick test lane (``-m "not live and not slow"``) on other supported Pythons than the one of ``.venv``.

Why: the suite runs on one interpreter, and some differences only show on another (before 3.11, asyncio's
and concurrent.futures' ``TimeoutError`` are not the builtin one; pip may also resolve older tool versions
for an older Python). Each version gets its own ``.venv-3.X`` beside ``.venv``, installed with
``.[server,test]`` and kept for the next run.

An interpreter is found as ``python3.X`` on PATH when it runs, else in pyenv's versions directory (pyenv's
shims answer for every version but run only the selected ones). A version that is not on the machine is
skipped with a line saying so; a failing install or test run fails the whole run.

Usage (from the repository root): ``python tools/test_pythons.py 3.10 3.13 [-- extra pytest args]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _runs(exe: str, version: str) -> bool:
    try:
        done = subprocess.run(
            [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == version


def _patch_level(path: Path) -> tuple[int, ...]:
    """``3.10.13`` -> (3, 10, 13), so that 3.10.13 sorts after 3.10.9; other names (``3.10-dev``) first."""
    parts = path.name.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (-1,)


def find_python(version: str) -> str | None:
    """An interpreter of ``version`` ("3.10") that runs, or None."""
    exe = shutil.which(f"python{version}")
    if exe is not None and _runs(exe, version):
        return exe
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    installed = Path(root, "versions").glob(f"{version}.*")
    for candidate in sorted(installed, key=_patch_level, reverse=True):  # the newest patch release first
        for name in (f"python{version}", "python3", "python"):
            exe = str(candidate / "bin" / name)
            if _runs(exe, version):
                return exe
    return None


def venv_python(venv: Path) -> Path:
    scripts = venv / ("Scripts" if os.name == "nt" else "bin")
    return scripts / ("python.exe" if os.name == "nt" else "python")


def run_version(version: str, pytest_args: list[str]) -> bool | None:
    """True when the lane passed, False when it failed, None when the version is not on this machine."""
    exe = find_python(version)
    if exe is None:
        print(f"python{version}: not found on this machine, skipped", flush=True)
        return None
    venv = ROOT / f".venv-{version}"
    python = venv_python(venv)
    if not python.exists():
        subprocess.run([exe, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    if subprocess.run([*pip, "--upgrade", "pip"], cwd=ROOT).returncode:
        return False
    if subprocess.run([*pip, "-e", ".[server,test]"], cwd=ROOT).returncode:
        return False
    print(f"== python{version} ({exe})", flush=True)
    lane = [str(python), "-m", "pytest", "-m", "not live and not slow", "-q", *pytest_args]
    return subprocess.run(lane, cwd=ROOT).returncode == 0


def main(argv: list[str]) -> int:
    versions, pytest_args = argv, []
    if "--" in argv:
        versions, pytest_args = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    results = {v: run_version(v, pytest_args) for v in versions or ["3.10", "3.11", "3.12", "3.13"]}
    for version, ok in results.items():
        print(f"python{version}: {'skipped' if ok is None else 'passed' if ok else 'FAILED'}")
    return 1 if any(ok is False for ok in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
