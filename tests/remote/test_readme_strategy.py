"""xtquant code runs unchanged against a gateway after ``qmtgate.remote.install(...)`` (a subprocess)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from .conftest import ROOT, Gateway


def run_while_ticking(
    args: list[str], gateway: Gateway, env: dict[str, str] | None = None, timeout: float = 90
) -> str:
    """Run a script to completion while moving the gateway's simulated clock."""
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout or []), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    # pace the market to the consumer: one 3 s step per burst the script reported (or every 2 s), so a
    # slow shared CI machine never piles bursts up faster than the gateway and the script can take them
    last_step, seen = 0.0, -1
    while proc.poll() is None and time.monotonic() < deadline:
        bursts = sum(line.startswith("burst") for line in list(output))
        if bursts != seen or time.monotonic() - last_step > 2.0:
            gateway.advance(3)
            last_step, seen = time.monotonic(), bursts
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    reader.join(5)
    text = "".join(output)
    assert proc.returncode == 0, text
    return text


def _check_strategy_output(text: str) -> None:
    counts = [int(n) for n in re.findall(r"^burst \d+: (\d+) codes$", text, re.M)]
    assert len(counts) >= 3, text
    assert counts[0] > 4000  # the first push is the whole SH+SZ snapshot
    assert all(n > 0 for n in counts)
    bars = re.findall(r"^(\d{6}\.S[HZ]) (\d+) bars", text, re.M)
    assert [code for code, _ in bars] == ["600000.SH", "000001.SZ", "600519.SH"], text
    assert all(int(n) == 241 for _, n in bars), text  # a whole session of 1m bars
    assert text.rstrip().endswith("done")


def test_xtquant_strategy_runs_unchanged(gateway: Gateway, tmp_path: Path) -> None:
    """The README's "Run your xtquant code on Mac/Linux" example, verbatim, in its own process: a strategy
    written for xtquant (whole-market subscription printing a count per burst, then 1m bars for a few
    codes) that runs unchanged after ``qmtgate.remote.install(...)``."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run your xtquant code on Mac/Linux", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    text = run_while_ticking([sys.executable, str(script)], gateway, env={"QMTGATE_URL": gateway.url})
    _check_strategy_output(text)
