"""Where the gateway's memory goes with N whole-market Arrow clients (issue 22 item 5): a census.

Run: ``PYTHONPATH=src .venv/bin/python bench/memory_census.py [--clients 50] [--seconds 20]``

The gateway runs in THIS process (real uvicorn on loopback, the simulator on its replay clock at 1x, as
``qmtgate serve --source sim`` runs it, process tuning included). ``tracemalloc`` (one frame per
allocation) starts once the gateway is live: traced from the start, the simulator's warm-up ran 2-3x
slower and did not finish within the test helper's 180 s on the shared box. So the traced figures are
what the bursts and the clients add to a live gateway, split by allocation site; the RSS figures are
the whole process. The clients are bench/stream_bench.py workers in 5 child processes (Arrow,
zstd). After ``--seconds`` of bursts it prints:

* the process's RSS and peak RSS (``VmHWM``) at start, when live, and with the clients;
* Python-visible memory (tracemalloc: Python objects and numpy buffers) by where it was allocated:
  the simulator (``qmtgate/sim``: its market state, and the tick dicts it pushes, which a real xtquant
  would hand over the same way), the gateway (the rest of ``qmtgate``), and libraries;
* pyarrow's own pool (not seen by tracemalloc) and the largest allocation sites.

Whatever RSS remains after those is the interpreter, imported modules' code and the allocators' slack.
tracemalloc slows the process 2-3x: the figures are sizes, not speeds. The machine is shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from memory_bench import run_clients  # noqa: E402


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bucket(filename: str) -> str:
    name = filename.replace("\\", "/")
    if "/qmtgate/sim/" in name:
        return "simulator (qmtgate/sim)"
    if "/qmtgate/" in name:
        return "gateway (qmtgate, not sim)"
    if "site-packages/" in name:
        return "libraries: " + name.split("site-packages/", 1)[1].split("/", 1)[0]
    return "stdlib / other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--procs", type=int, default=5)
    a = ap.parse_args()
    import httpx
    import pyarrow as pa

    from api.sim_support import wait_live
    from api.support import start_server
    from qmtgate.api.app import create_app
    from qmtgate.config import Settings

    rows: list[tuple[str, float, float]] = [("imported", status_mb("VmRSS"), status_mb("VmHWM"))]
    settings = Settings(
        source="sim", sim={"clock": "replay", "start": "20261120100000", "speed": 1.0}, log_level="warning"
    )
    app = create_app(settings, process_tuning=True)
    server = start_server(app, ws_per_message_deflate=False)  # as `qmtgate serve` (cli.py) runs uvicorn
    with httpx.Client(base_url=server.url, timeout=120) as http:
        wait_live(http, timeout=600)
    time.sleep(5)
    rows.append(("live, no client", status_mb("VmRSS"), status_mb("VmHWM")))
    tracemalloc.start(1)
    url = server.url.replace("http://", "ws://") + "/api/v1/ws"
    taken: dict[str, Any] = {}

    def at_end() -> None:
        rows.append((f"{a.clients} Arrow clients, {a.seconds:g} s", status_mb("VmRSS"), status_mb("VmHWM")))
        taken["snapshot"] = tracemalloc.take_snapshot()
        taken["arrow_pool"] = pa.total_allocated_bytes() / 2**20

    try:
        run_clients(url, a.clients, a.procs, "arrow", a.seconds, at_end=at_end)
    finally:
        server.stop()
    by_bucket: dict[str, float] = defaultdict(float)
    snapshot, arrow_pool = taken["snapshot"], taken["arrow_pool"]
    stats = snapshot.statistics("lineno")
    for stat in stats:
        by_bucket[bucket(stat.traceback[0].filename)] += stat.size / 2**20
    print(
        f"# memory_census {time.strftime('%Y-%m-%d %H:%M')} ({os.cpu_count()} CPUs, shared), tracemalloc on"
    )
    print(f"{'moment':34} {'RSS MB':>8} {'peak MB':>8}")
    for label, rss, hwm in rows:
        print(f"{label:34} {rss:>8.0f} {hwm:>8.0f}")
    traced = sum(by_bucket.values())
    print(f"\ntraced since live (bursts + clients): {traced:.0f} MB; pyarrow pool now {arrow_pool:.0f} MB")
    for name, mb in sorted(by_bucket.items(), key=lambda kv: -kv[1]):
        if mb >= 0.5:
            print(f"  {name:40} {mb:>7.1f} MB")
    print("\nlargest allocation sites:")
    for stat in stats[:15]:
        frame = stat.traceback[0]
        where = frame.filename.split("site-packages/")[-1].split("/src/")[-1]
        print(f"  {stat.size / 2**20:>7.1f} MB {stat.count:>9,} blocks  {where}:{frame.lineno}")


if __name__ == "__main__":
    main()
