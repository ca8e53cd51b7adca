"""Soak: the whole simulated market at accelerated speed with 20 streaming clients, QMT restarts and link cuts.

    .venv/bin/python bench/soak.py                      # 30 min wall, a whole trading day (auto speed)
    .venv/bin/python bench/soak.py --minutes 12 --speed 20 --json soak.json

The gateway runs in THIS process (real uvicorn on loopback, the simulator on a manual clock that a driver
thread advances 3 s slot by slot, skipping the lunch break, from 09:15 to 15:00), so faults can be injected
and the hub observed: a hub listener records the ground truth, i.e. which seqs were published for the BJ
market and for each tracked code. The 20 clients (``qmtgate.client`` streams) run in a CHILD process and
reach the gateway through a TCP proxy (tests/reliability/proxy.py) that cuts every link periodically;
every ``--restart-every`` seconds QMT restarts (every upstream subscription lost). Clients:

* 13 normal clients on the whole BJ market, 6 normal clients on 10 SH/SZ codes (different sets);
* 1 deliberately slow client on BJ (sleeps on every batch): it may be conflated and dropped, never the others.

At the end each client's received seqs are compared with the ground truth: a normal client must have every
seq published for its subscription between its first one and the end (zero missing, no resync). RSS, open
file descriptors and threads of the gateway process are sampled every 5 s. Verdict: PASS when there are no
gaps for normal clients (by the ground truth, and no ``gap`` event from ``qmtgate.client``), RSS grew < ``--rss-limit`` (10) % after warm-up and fds and threads are flat.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/api/support.py (uvicorn thread), tests/reliability/proxy.py

CST = dt.timezone(dt.timedelta(hours=8))
DAY = "20250612"
TRACKED = [
    "600000.SH", "600519.SH", "601318.SH", "600036.SH", "601398.SH",
    "000001.SZ", "000858.SZ", "300750.SZ", "002594.SZ", "000333.SZ",
]  # fmt: skip
NORMAL_BJ, NORMAL_CODES = 13, 6

Intervals = list[tuple[int, int]]


# ---------------------------------------------------------------------------------------------- intervals


def merge(points: Iterable[tuple[int, int]]) -> Intervals:
    out: Intervals = []
    for lo, hi in sorted(points):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def clip(iv: Intervals, lo: int, hi: int) -> Intervals:
    return [(max(a, lo), min(b, hi)) for a, b in iv if b >= lo and a <= hi]


def subtract(a: Intervals, b: Intervals) -> Intervals:
    """Parts of ``a`` not covered by ``b`` (both merged)."""
    out: Intervals = []
    j = 0
    for lo, hi in a:
        cur = lo
        while j < len(b) and b[j][1] < cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] <= hi:
            if b[k][0] > cur:
                out.append((cur, b[k][0] - 1))
            cur = max(cur, b[k][1] + 1)
            k += 1
        if cur <= hi:
            out.append((cur, hi))
    return out


def count(iv: Intervals) -> int:
    return sum(b - a + 1 for a, b in iv)


# ---------------------------------------------------------------------------------------------- clients


def client_plan() -> list[dict[str, Any]]:
    plan: list[dict[str, Any]] = [
        {"name": f"bj-{i}", "markets": ["BJ"], "codes": []} for i in range(NORMAL_BJ)
    ]
    for i in range(NORMAL_CODES):
        codes = [TRACKED[(i + k) % len(TRACKED)] for k in range(4)]
        plan.append({"name": f"codes-{i}", "markets": [], "codes": codes})
    plan.append({"name": "slow", "markets": ["BJ"], "codes": [], "slow": True})
    return plan


async def run_clients(url: str, out: Path, slow_delay: float) -> None:
    """Child process: run every planned client until stdin closes, then write what each received."""
    from qmtgate.client import AsyncClient, Batch

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(
        target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True
    ).start()
    results: dict[str, dict[str, Any]] = {}

    async def one(spec: dict[str, Any], gw: Any) -> None:
        rec: dict[str, Any] = {"spec": spec, "points": [], "batches": 0, "items": 0, "replay": 0,
                               "conflated": 0, "snapshot": 0, "gap_events": 0, "events": {}, "decreasing": 0}  # fmt: skip
        results[spec["name"]] = rec
        last = 0
        async with gw.stream(spec["codes"] + spec["markets"], "tick") as stream:
            async for item in stream:
                if isinstance(item, Batch):
                    seqs = [int(i["seq"]) for i in item.items]
                    rec["batches"] += 1
                    rec["items"] += len(seqs)
                    rec["replay"] += item.replay
                    rec["conflated"] += item.conflated
                    rec["snapshot"] += item.snapshot
                    if seqs:
                        if not (item.replay or item.snapshot) and seqs[0] <= last:
                            rec["decreasing"] += 1
                        last = max(last, seqs[-1])
                        rec["points"].extend(merge((s, s) for s in seqs))
                        if len(rec["points"]) > 4096:
                            rec["points"] = merge(rec["points"])
                    if spec.get("slow"):
                        await asyncio.sleep(slow_delay)
                else:
                    rec["events"][item.kind] = rec["events"].get(item.kind, 0) + 1
                    rec["gap_events"] += item.kind == "gap"
                if stop.is_set():
                    return

    async with AsyncClient(url) as gw:
        tasks = [asyncio.create_task(one(spec, gw)) for spec in client_plan()]
        await stop.wait()
        await asyncio.sleep(0.5)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for rec in results.values():
        rec["points"] = merge(rec["points"])
    out.write_text(json.dumps(results))


# ---------------------------------------------------------------------------------------------- gateway side


class GroundTruth:
    """Hub listener: the seqs published for the BJ market and for each tracked code (compact)."""

    def __init__(self) -> None:
        self.bj: Intervals = []
        self.codes: dict[str, list[int]] = {c: [] for c in TRACKED}

    def listener(self, updates: Any) -> None:
        if not updates or updates[0].channel != "tick":
            return
        codes = self.codes
        bj = self.bj
        for u in updates:
            if u.market == "BJ":
                if bj and bj[-1][1] == u.seq - 1:
                    bj[-1] = (bj[-1][0], u.seq)
                else:
                    bj.append((u.seq, u.seq))
            else:
                seqs = codes.get(u.code)
                if seqs is not None:
                    seqs.append(u.seq)

    def expected(self, spec: dict[str, Any]) -> Intervals:
        points: list[tuple[int, int]] = list(self.bj) if spec["markets"] else []
        for code in spec["codes"]:
            points.extend((s, s) for s in self.codes[code])
        return merge(points)


def proc_stats() -> dict[str, Any]:
    """RSS (MB), open fds and threads of this process (Linux /proc; None elsewhere)."""
    rss = fds = None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        pass
    return {"rss_mb": rss, "fds": fds, "threads": threading.active_count()}


def object_census() -> dict[str, int]:
    """Live GC-tracked objects by type name (~1 s with a few million objects: taken twice per run)."""
    import collections
    import gc

    return dict(collections.Counter(type(o).__name__ for o in gc.get_objects()))


def trim_probe() -> dict[str, Any]:
    """RSS before and after a full collection and glibc's ``malloc_trim(0)`` at the end of the run.

    What the trim gives back was free memory the allocator kept (fragmentation, the high-water mark of
    bursty allocations), not live data: a leak would survive it. Linux/glibc only (None elsewhere)."""
    import ctypes
    import gc

    before = proc_stats()["rss_mb"]
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return {"rss_mb_end_before_trim": before, "rss_mb_end_after_trim": None}
    return {"rss_mb_end_before_trim": before, "rss_mb_end_after_trim": proc_stats()["rss_mb"]}


def census_growth(before: dict[str, int], after: dict[str, int], top: int = 12) -> dict[str, int]:
    """The types whose live count grew the most between two censuses (what a leak would show)."""
    grown = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}
    return dict(sorted(((k, v) for k, v in grown.items() if v > 0), key=lambda kv: -kv[1])[:top])


def session_seconds() -> float:
    return (2 * 3600 + 15 * 60) + 2 * 3600  # 09:15-11:30 and 13:00-15:00


def market_now(env: Any) -> dt.datetime:
    return dt.datetime.fromtimestamp(env.market.clock.now_ms() / 1000, CST)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from api.sim_support import wait_live
    from api.support import start_server
    from qmtgate.api.app import create_app
    from qmtgate.config import Settings
    from qmtgate.sim.xtquant import _env
    from reliability.proxy import LinkProxy

    duration = args.minutes * 60
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(1)
    speed = args.speed if args.speed > 0 else session_seconds() / duration
    settings = Settings(
        source="sim",
        sim={"clock": "manual", "start": f"{DAY}091500", "seed": 0},
        stream={"ring_capacity": args.ring},
        log_level="warning",
    )
    app = create_app(settings, process_tuning=True)  # as `qmtgate serve` runs it
    server = start_server(app)
    http = httpx.Client(base_url=server.url, timeout=60)
    wait_live(http, timeout=300)
    env = _env.current()
    hub = app.state.hub
    truth = GroundTruth()
    hub.listeners.append(truth.listener)
    target = urlparse(server.url)
    proxy = LinkProxy(target.hostname or "127.0.0.1", target.port or 80)
    out = Path(args.json or "soak-clients.json").with_suffix(".clients.json")
    child = subprocess.Popen(
        [sys.executable, __file__, "--client-mode", "--url", proxy.url, "--out", str(out),
         "--slow-delay", str(args.slow_delay)],
        stdin=subprocess.PIPE,
        cwd=str(ROOT),
    )  # fmt: skip
    time.sleep(3)  # let the clients connect and take their snapshots

    stop = threading.Event()
    driven: dict[str, Any] = {"slots": 0, "lag_max": 0.0, "day_done": False, "waits": 0}

    def drive() -> None:
        """Advance the market 3 s per 3/speed wall seconds; jump over lunch; stop at 15:00."""
        interval = 3.0 / speed
        next_at = time.monotonic()
        while not stop.is_set():
            now = market_now(env)
            if now.time() >= dt.time(15, 0):
                driven["day_done"] = True
                stop.wait(0.2)
                continue
            step = 3.0
            if dt.time(11, 30) <= now.time() < dt.time(13, 0):
                step = (dt.datetime.combine(now.date(), dt.time(13, 0), CST) - now).total_seconds()
            # backpressure: never run ahead of the gateway (the hub's inbox is unbounded by design, so an
            # overloaded box would otherwise just queue); the achieved speed is reported
            backlog_until = time.monotonic() + 10
            while (
                env.publisher.delivered_slot < env.market.time().slot or len(hub._inbox) > 2
            ) and time.monotonic() < backlog_until:
                driven["waits"] += 1
                stop.wait(0.01)
            env.market.clock.advance(step)
            driven["slots"] += 1
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            else:
                driven["lag_max"] = max(driven["lag_max"], -delay)
                if -delay > 5:  # cannot keep up: do not bank an ever-growing debt
                    next_at = time.monotonic()

    driver = threading.Thread(target=drive, name="soak-market-driver", daemon=True)
    began = time.monotonic()
    driver.start()
    samples: list[dict[str, Any]] = []
    restarts = cuts = 0
    next_restart = began + args.restart_every
    next_cut = began + args.cut_every
    next_sample = began
    census: dict[str, dict[str, int]] = {}
    traced: dict[str, Any] = {}
    while time.monotonic() - began < duration:
        t = time.monotonic()
        if "warm" not in census and t - began >= args.warmup * 60:
            census["warm"] = object_census()
            if args.tracemalloc:
                import tracemalloc

                traced["warm"] = tracemalloc.take_snapshot()
        if t >= next_sample:
            st = app.state.source.status()
            samples.append({"t": round(t - began, 1), **proc_stats(), "market": market_now(env).strftime("%H:%M:%S"),
                            "connection": st.connection, "seq": hub.seq, "clients": len(hub.clients),
                            "ring": len(hub.ring), "inbox": len(hub._inbox)})  # fmt: skip
            if len(samples) % 12 == 1:  # a progress line a minute
                print(json.dumps(samples[-1]), flush=True)
            next_sample += 5
        if t >= next_restart:
            env.faults.restart()
            restarts += 1
            next_restart += args.restart_every
        if t >= next_cut:
            proxy.cut()
            cuts += 1
            time.sleep(args.cut_seconds)
            proxy.restore()
            next_cut += args.cut_every
        time.sleep(0.1)
    stop.set()
    driver.join(5)
    time.sleep(4)  # no new market data: let every client drain what was published
    final_seq = hub.seq
    census["end"] = object_census()
    retained = trim_probe()
    assert child.stdin is not None
    child.stdin.close()
    child.wait(60)
    clients = json.loads(out.read_text())
    out.unlink()
    report = verdict(args, speed, began, samples, clients, truth, final_seq, restarts, cuts, driven, proxy)
    watch = app.state.ops.loop_watch
    if watch is not None:  # the gateway's event-loop watchdog (ops.loopwatch): did anything hold the loop?
        report["loop_max_lag_s"] = round(watch.stats.max_lag, 3)
        report["loop_stalls"] = watch.stats.stalls
        report["loop_stalled_seconds"] = round(watch.stats.stalled_seconds, 2)
        report["loop_stalls_in_gc"] = sum(s.gc_generation is not None for s in watch.stats.recent)
        report["gc_max_seconds"] = {g: round(v, 3) for g, v in sorted(watch.stats.gc_max_seconds.items())}
        report["gc_gen2_seconds"] = round(watch.stats.gc_seconds, 2)
        report["loop_stall_stacks"] = [
            {
                "seconds": round(s.seconds, 2),
                "gc_generation": s.gc_generation,
                "stack": s.stack.splitlines()[-12:],
            }
            for s in watch.stats.recent
        ]
    report.update(retained)
    if "warm" in traced:
        import tracemalloc

        grown = tracemalloc.take_snapshot().compare_to(traced["warm"], "lineno")
        report["tracemalloc_grown_after_warmup"] = [str(d) for d in grown[:15]]
    if "warm" in census:
        report["objects_grown_after_warmup"] = census_growth(census["warm"], census["end"])
        report["objects_after_warmup"] = sum(census["warm"].values())
        report["objects_at_end"] = sum(census["end"].values())
    proxy.close()
    http.close()
    server.stop()
    return report


def verdict(
    args: argparse.Namespace,
    speed: float,
    began: float,
    samples: list[dict[str, Any]],
    clients: dict[str, Any],
    truth: GroundTruth,
    final_seq: int,
    restarts: int,
    cuts: int,
    driven: dict[str, Any],
    proxy: Any,
) -> dict[str, Any]:
    per_client: dict[str, Any] = {}
    missing_total = 0
    problems: list[str] = []
    for name, rec in clients.items():
        got = [tuple(p) for p in rec["points"]]
        first = got[0][0] if got else final_seq
        expected = clip(truth.expected(rec["spec"]), first, final_seq)
        missing = subtract(expected, got)
        n_missing = count(missing)
        slow = bool(rec["spec"].get("slow"))
        per_client[name] = {
            "expected": count(expected), "received": count(got), "missing": n_missing,
            "batches": rec["batches"], "replay": rec["replay"], "conflated": rec["conflated"],
            "snapshot": rec["snapshot"], "gap_events": rec["gap_events"], "events": rec["events"],
            "out_of_order": rec["decreasing"],
        }  # fmt: skip
        if slow:
            continue
        missing_total += n_missing
        if n_missing:
            problems.append(f"{name}: {n_missing} missing seqs, first {missing[:3]}")
        if rec["events"].get("resync"):
            problems.append(f"{name}: {rec['events']['resync']} resyncs")
        if not count(expected):
            problems.append(f"{name}: received nothing to check")
        if rec["decreasing"]:
            problems.append(f"{name}: {rec['decreasing']} out-of-order batches")
    warm = [s for s in samples if s["t"] >= args.warmup * 60]
    rss = [s["rss_mb"] for s in warm if s["rss_mb"] is not None]
    fds = [s["fds"] for s in warm if s["fds"] is not None]
    threads = [s["threads"] for s in warm]
    rss_growth = (rss[-1] - rss[0]) / rss[0] * 100 if len(rss) >= 2 else None
    rss_peak_growth = (max(rss) - rss[0]) / rss[0] * 100 if len(rss) >= 2 else None
    if rss_growth is not None and rss_growth >= args.rss_limit:
        problems.append(f"RSS grew {rss_growth:.1f} % after warm-up (limit {args.rss_limit:g} %)")
    if fds and max(fds) - fds[0] > 4:
        problems.append(f"fds grew from {fds[0]} to {max(fds)}")
    if threads and max(threads) - threads[0] > 2:
        problems.append(f"threads grew from {threads[0]} to {max(threads)}")
    normal = [v for k, v in per_client.items() if k != "slow"]
    lib_gaps = sum(v["gap_events"] for v in normal)
    if lib_gaps:  # frames chain by prev_seq: the client library reports only real losses
        problems.append(f"qmtgate.client reported {lib_gaps} gap events to normal clients")
    report = {
        "verdict": "PASS" if not problems else "FAIL",
        "problems": problems,
        "wall_minutes": round((time.monotonic() - began) / 60, 2),
        "speed": round(speed, 2),
        "market_slots": driven["slots"],
        "market_end": samples[-1]["market"] if samples else None,
        "day_done": driven["day_done"],
        "driver_max_lag_s": round(driven["lag_max"], 2),
        "achieved_speed": round(driven["slots"] * 3 / max(time.monotonic() - began, 1), 2),
        "qmt_restarts": restarts,
        "link_cuts": cuts,
        "proxy_accepted": proxy.accepted,
        "published_seq": final_seq,
        "normal_clients": len(normal),
        "normal_missing": missing_total,
        "normal_updates_checked": sum(v["expected"] for v in normal),
        "normal_gap_events_from_client_lib": lib_gaps,
        "reconnects_median": statistics.median(v["events"].get("connected", 0) for v in normal)
        if normal
        else 0,
        "slow_client": per_client.get("slow"),
        "rss_mb_first_after_warmup": rss[0] if rss else None,
        "rss_mb_last": rss[-1] if rss else None,
        "rss_mb_max": max(rss) if rss else None,
        "rss_growth_pct": None if rss_growth is None else round(rss_growth, 2),
        "rss_peak_growth_pct": None if rss_peak_growth is None else round(rss_peak_growth, 2),
        "fds_first_after_warmup": fds[0] if fds else None,
        "fds_max": max(fds) if fds else None,
        "fds_last": fds[-1] if fds else None,
        "threads_first_after_warmup": threads[0] if threads else None,
        "threads_max": max(threads) if threads else None,
        "clients": per_client,
        "samples": samples,
    }
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="wall-clock duration (default 30)")
    p.add_argument("--speed", type=float, default=0.0,
                   help="market seconds per wall second; 0 = fit 09:15-15:00 into --minutes")  # fmt: skip
    p.add_argument("--restart-every", type=float, default=60.0, help="seconds between QMT restarts")
    p.add_argument("--cut-every", type=float, default=45.0, help="seconds between link cuts")
    p.add_argument("--cut-seconds", type=float, default=1.0, help="how long a cut lasts")
    p.add_argument("--slow-delay", type=float, default=0.5, help="the slow client's sleep per batch (s)")
    p.add_argument("--warmup", type=float, default=2.0, help="minutes before RSS/fd baselines")
    p.add_argument("--rss-limit", type=float, default=10.0, help="allowed RSS growth after warm-up, %%")
    p.add_argument("--ring", type=int, default=500_000,
                   help="replay ring capacity (updates); it fills during warm-up and holds most of the RSS")  # fmt: skip
    p.add_argument("--json", help="write the full report here")
    p.add_argument("--tracemalloc", action="store_true",
                   help="trace allocations (slow) and report what grew after warm-up by source line")  # fmt: skip
    p.add_argument("--client-mode", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.client_mode:
        asyncio.run(run_clients(args.url, Path(args.out), args.slow_delay))
        return 0
    args.warmup = min(args.warmup, args.minutes / 3)
    report = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    brief = {k: v for k, v in report.items() if k not in ("clients", "samples", "loop_stall_stacks")}
    print(json.dumps(brief, indent=1))
    print(f"VERDICT: {report['verdict']}" + ("" if not report["problems"] else f" {report['problems']}"))
    return 0 if report["verdict"] == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
