"""Peak RSS of the gateway alone and of the gateway with its simulator, with N whole-market clients
(issue 22, item 5 and its "must show").

Run: ``PYTHONPATH=src .venv/bin/python bench/memory_bench.py [--clients 50] [--seconds 30] [--encoding arrow]``

Two gateways, one after the other, each in its own process, each sampled from ``/proc/<pid>/status``
(``VmRSS`` now, ``VmHWM`` the peak since start) at three moments: serving (the first request answered),
live (the whole market flowing, no client yet) and after ``--seconds`` with N clients:

* **gateway alone**: tests/api/fake_server.py over the fake xtdata with a 5,000-stock universe pushed
  every 3 s (``--stream 3``: fresh tick dicts per burst, the shapes and units of xtquant's). This is
  what the peer harness measured (the same gateway over a fake xtquant); the fake's own share is its
  5,000 tick dicts per burst, which a real xtquant allocates in the gateway's process the same way.
* **with the simulator**: ``qmtgate serve --source sim`` on its replay clock at 1x, the simulated whole
  market (~5,400 codes) every 3 s. The simulator's share = this run minus the gateway-alone run at the
  same moment.

Clients are bench/stream_bench.py workers (whole market, tick) in ``--procs`` processes. The machine is
shared: RSS does not depend much on load, timings are not printed.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


Row = tuple[
    str, float, float, float, float, bool
]  # moment, RSS, peak RSS, private (RssAnon), shared files (RssFile), pandas loaded


def pandas_mapped(pid: int) -> bool:
    """Whether the process has loaded pandas (its compiled modules are mapped)."""
    try:
        return "/pandas/_libs/" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def sample(moment: str, pid: int) -> Row:
    """RSS now and at its peak, and RSS split into private memory (the heap: what the gateway's data
    costs) and file-backed pages (mapped libraries' code: pandas, pyarrow, numpy; shared with every other
    process mapping the same files)."""
    return (
        moment,
        proc_mb(pid, "VmRSS"),
        proc_mb(pid, "VmHWM"),
        proc_mb(pid, "RssAnon"),
        proc_mb(pid, "RssFile"),
        pandas_mapped(pid),
    )


def take_census(proc: subprocess.Popen[str], path: Path, moment: str) -> None:
    """Ask the traced gateway for its allocation census and keep it as ``<path>.<moment>``."""
    path.unlink(missing_ok=True)
    proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 120
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    path.rename(f"{path}.{moment}")


def wait_live(base: str, timeout: float) -> None:
    """Until the quote cache is live (the whole market has arrived once)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=10) as http:
        while time.monotonic() < deadline:
            try:
                ready = http.get("/api/v1/health/ready")
                if ready.status_code == 200 and ready.json().get("quotes", {}).get("live"):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise RuntimeError("the gateway did not go live")


def run_clients(
    url: str,
    clients: int,
    procs: int,
    encoding: str,
    seconds: float,
    at_end: Callable[[], None] | None = None,
) -> None:
    """``clients`` whole-market subscribers (bench/stream_bench.py workers) in ``procs`` processes for
    ``seconds`` once all are subscribed; ``at_end`` runs when the window closes, before they exit."""
    tag = f"/tmp/memory_bench_{os.getpid()}"
    outs = [Path(f"{tag}_{i}.json") for i in range(procs)]
    shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    workers = [
        subprocess.Popen([sys.executable, str(ROOT / "bench" / "stream_bench.py"), "--worker", url, str(n), encoding, str(o)])
        for o, n in zip(outs, shares, strict=True)
        if n
    ]  # fmt: skip
    try:
        while not all(Path(str(o) + ".ready").exists() for o, n in zip(outs, shares, strict=True) if n):
            if any(w.poll() is not None for w in workers):
                raise RuntimeError("a client worker exited early")
            time.sleep(0.2)
        t0 = time.time()
        for o in outs:
            Path(str(o) + ".window").write_text(f"{t0} {t0 + seconds}")
        time.sleep(seconds)
        if at_end is not None:
            at_end()
        for w in workers:
            w.wait(timeout=120)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
        for o in outs:
            for suffix in ("", ".ready", ".window"):
                Path(str(o) + suffix).unlink(missing_ok=True)


def measure(label: str, cmd: list[str], port: int, args: argparse.Namespace) -> list[Row]:
    env = {**os.environ, "PYTHONPATH": args.src, "QMTGATE_LOG_LEVEL": "warning"}
    env.update(item.split("=", 1) for item in args.env)
    census = Path(f"{args.census}.{label}") if args.census and label == "gateway" else None
    if census:  # tests/api/fake_server.py traces from its start and writes the top sites on SIGUSR1
        env["QMTGATE_TEST_TRACEMALLOC_DUMP"] = str(census)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    base = f"http://127.0.0.1:{port}"
    rows: list[Row] = []
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(base + "/api/v1/health/live", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{label}: the gateway did not start")
            time.sleep(0.1)
        rows.append(sample("serving", proc.pid))
        wait_live(base, 300)
        time.sleep(args.live_seconds)  # bursts fill the replay ring (500,000 updates: ~92 bursts)
        rows.append(sample("live, no client", proc.pid))
        if census:
            take_census(proc, census, "live")
        url = f"ws://127.0.0.1:{port}/api/v1/ws"
        run_clients(url, args.clients, args.procs, args.encoding, args.seconds)
        rows.append(sample(f"{args.clients} {args.encoding} clients, {args.seconds:g} s", proc.pid))
        if census:
            take_census(proc, census, "clients")
        time.sleep(5)
        rows.append(sample("clients gone, 5 s later", proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--procs", type=int, default=5)
    ap.add_argument("--encoding", default="arrow", help="arrow | columns | json (stream_bench's names)")
    ap.add_argument("--live-seconds", type=float, default=10.0, help="bursts before the clients connect")
    ap.add_argument(
        "--interval", type=float, default=3.0, help="the fake's burst interval (0.5 fills the ring in ~46 s)"
    )
    ap.add_argument(
        "--fill",
        type=int,
        default=100,
        help="first bursts every 0.2 s: the ring is full before the clients come",
    )
    ap.add_argument("--only", choices=("gateway", "sim"), default=None)
    ap.add_argument(
        "--census", default=None, help="path prefix: tracemalloc census of the gateway-alone run (slower)"
    )
    ap.add_argument("--src", default=str(ROOT / "src"), help="the gateway's source tree (a before/after)")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the gateway's environment")
    args = ap.parse_args()
    results: dict[str, list[Row]] = {}
    if args.only in (None, "gateway"):
        port = free_port()
        cmd = [sys.executable, str(ROOT / "tests" / "api" / "fake_server.py"), "--port", str(port),
               "--universe", "5000", "--stream", str(args.interval), "--stream-fill", str(args.fill)]  # fmt: skip
        results["gateway alone (fake xtdata, 5,000 stocks)"] = measure("gateway", cmd, port, args)
    if args.only in (None, "sim"):
        port = free_port()
        cmd = [sys.executable, "-m", "qmtgate", "serve", "--source", "sim", "--port", str(port),
               "--sim-clock", "replay", "--sim-start", "20261120100000", "--sim-speed", "1"]  # fmt: skip
        results["gateway + simulator (qmtgate serve --source sim)"] = measure("sim", cmd, port, args)
    print(f"# memory_bench {time.strftime('%Y-%m-%d %H:%M')} ({os.cpu_count()} CPUs), MB")
    print(f"src {args.src}, env {args.env}")
    print(
        "| run | moment | RSS | peak RSS | private | shared files | pandas |\n|---|---|---|---|---|---|---|"
    )
    for label, rows in results.items():
        for moment, rss, hwm, anon, file, pandas in rows:
            print(f"| {label} | {moment} | {rss:.0f} | {hwm:.0f} | {anon:.0f} | {file:.0f} | {pandas} |")
    if len(results) == 2:
        alone, sim = results.values()
        for a, b in zip(alone, sim, strict=True):  # moment by moment
            print(
                f"| simulator's share (difference) | {a[0]} | {b[1] - a[1]:.0f} | {b[2] - a[2]:.0f} | {b[3] - a[3]:.0f} | |"
            )


if __name__ == "__main__":
    main()
