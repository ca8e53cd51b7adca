"""Whole-market snapshots served from the answer encoded once per burst (issue 22 item 4).

Run: ``PYTHONPATH=src .venv/bin/python bench/snapshot_burst_bench.py [--src OTHER/src ...] [--seconds 8]``

For each ``--src`` tree (default: this checkout's ``src``; give an older checkout's too for a before /
after in one sitting) it starts ``qmtgate serve --source sim`` (replay clock at 1x: a whole-market burst
every 3 s, the quote cache on) on a free loopback port, waits until the cache is live, then for each
request below asks it back to back for ``--seconds`` over one keep-alive connection and prints the end to
end time (request sent -> body read, ms):

* ``GET /api/v1/snapshots?markets=SH,SZ,BJ`` as Arrow and as JSON;
* ``GET /api/v1/snapshots?sector=沪深A股`` as Arrow;
* ``POST /api/v1/xt/full_tick {"codes": ["SH", "SZ", "BJ"]}`` (the drop-in's whole-market get_full_tick).

"first of a burst" is a request whose body differs from the one before (the burst changed: with the
shared answer, this request paid the encode); "repeat" is every other request (same burst: the shared
bytes). The machine is shared with other work: compare trees within one run.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ARROW = "application/vnd.apache.arrow.stream"
REQUESTS = [
    ("markets=SH,SZ,BJ arrow", "GET", "/api/v1/snapshots?markets=SH,SZ,BJ&format=arrow", None),
    ("markets=SH,SZ,BJ json", "GET", "/api/v1/snapshots?markets=SH,SZ,BJ&format=json", None),
    ("sector=沪深A股 arrow", "GET", "/api/v1/snapshots?sector=沪深A股&format=arrow", None),
    ("xt/full_tick SH,SZ,BJ", "POST", "/api/v1/xt/full_tick", {"codes": ["SH", "SZ", "BJ"]}),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(src: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(src), "QMTGATE_LOG_LEVEL": "warning"}
    cmd = [sys.executable, "-m", "qmtgate", "serve", "--source", "sim", "--port", str(port)]
    cmd += ["--sim-clock", "replay", "--sim-start", "20261120100000", "--sim-speed", "1"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_live(client: httpx.Client, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}")
        try:
            if client.get("/api/v1/health/ready").json().get("quotes", {}).get("live"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.25)
    raise RuntimeError("the quote cache did not become live")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))] if s else float("nan")


class Stdlib:
    """``http.client`` on one keep-alive connection: the least a Python client can add to a request."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, json_body: object) -> bytes:
        body = None if json_body is None else json.dumps(json_body).encode()
        headers = {} if body is None else {"Content-Type": "application/json"}
        self.conn.request(method, urllib.parse.quote(path, safe="/?=&,"), body=body, headers=headers)
        response = self.conn.getresponse()
        content = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status}")
        return content


class Httpx:
    """httpx (what bench/peer_bench.py and most users' scripts use): adds its own ms per large body."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def request(self, method: str, path: str, json_body: object) -> bytes:
        response = self.client.request(method, path, json=json_body)
        response.raise_for_status()
        return response.content


def measure(
    client: Stdlib | Httpx, method: str, path: str, body: object, seconds: float
) -> dict[str, object]:
    client.request(method, path, body)  # warm
    first: list[float] = []
    repeat: list[float] = []
    previous = b""
    size = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        began = time.perf_counter()
        content = client.request(method, path, body)
        took = (time.perf_counter() - began) * 1000
        (repeat if content == previous else first).append(took)
        previous, size = content, len(content)
    return {"first": first, "repeat": repeat, "bytes": size}


def run(src: Path, seconds: float) -> None:
    port = free_port()
    proc = start(src, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            wait_live(client, proc)
            time.sleep(3)  # the first bursts' conversion is done
            print(f"\n## src = {src}")
            print(
                f"{'request':26} {'bytes':>10} {'n first':>8} {'first median':>13} {'n repeat':>9} "
                f"{'repeat median':>14} {'repeat p90':>11} {'all median':>11}"
            )
            for (label, method, path, body), name in itertools.product(REQUESTS, ("http.client", "httpx")):
                # a new stdlib connection each time: the server closes one idle for 5 s (keep-alive timeout)
                http_client = Stdlib(port) if name == "http.client" else Httpx(client)
                r = measure(http_client, method, path, body, seconds)
                first, repeat = r["first"], r["repeat"]
                assert isinstance(first, list) and isinstance(repeat, list)
                both = first + repeat
                print(
                    f"{label:26} {name:>11} {r['bytes']:>10,} {len(first):>8} {statistics.median(first):>10.2f} ms "
                    f"{len(repeat):>9} {pct(repeat, 50):>11.2f} ms {pct(repeat, 90):>8.2f} ms "
                    f"{statistics.median(both):>8.2f} ms"
                )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", type=Path, help="a qmtgate src tree (repeatable)")
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="per request kind and client (bursts come every 3 s)"
    )
    args = parser.parse_args()
    print(f"# snapshot_burst_bench {time.strftime('%Y-%m-%d %H:%M')} ({os.cpu_count()} CPUs, shared)")
    for src in args.src or [ROOT / "src"]:
        run(src.resolve(), args.seconds)


if __name__ == "__main__":
    main()
