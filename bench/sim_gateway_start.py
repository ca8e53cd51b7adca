"""``qmtgate serve --source sim``: seconds from spawning the process to its first answered snapshot
(``GET /api/v1/snapshots?codes=600000.SH`` with data), with an empty simulator data directory (cold)
and again with the same directory (warm: the day cache written by the first run).

    PYTHONPATH=src python bench/sim_gateway_start.py [--src DIR] [--at 20261120100731] [--runs 1]

``--src`` runs another checkout's sources (e.g. an export of the commit before the day cache) to get
the "before" figure with the same script. The gateway warms the whole market before it listens, so
the time is dominated by the simulator's first whole-market snapshot.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_snapshot(src: Path, data_dir: Path, at: str, timeout: float = 240) -> float:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "QMTGATE_SIM_DATA_DIR": str(data_dir),
        "QMTGATE_LOG_LEVEL": "warning",
    }
    cmd = [sys.executable, "-m", "qmtgate.cli", "serve", "--source", "sim", "--port", str(port)]
    cmd += ["--sim-clock", "manual", "--sim-start", at]
    began = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            while time.monotonic() - began < timeout:
                try:
                    r = client.get("/api/v1/snapshots", params={"codes": "600000.SH"})
                    if r.status_code == 200 and r.json().get("data"):
                        return time.monotonic() - began
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"the gateway exited with {proc.returncode}")
                time.sleep(0.05)
        raise RuntimeError("no snapshot before the timeout")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", type=Path, default=Path("src").resolve())
    parser.add_argument("--at", default="20261120100731")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    out: dict[str, list[float]] = {"cold": [], "warm": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="qmtgate-bench-simdata-") as folder:
            out["cold"].append(round(first_snapshot(args.src, Path(folder), args.at), 2))
            out["warm"].append(round(first_snapshot(args.src, Path(folder), args.at), 2))
    print(json.dumps({"src": str(args.src), "at": args.at, **out}))


if __name__ == "__main__":
    main()
