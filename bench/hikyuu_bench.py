"""Hikyuu feed benchmark (issue 23): encode cost of a whole simulated market, and WebSocket p99 with and
without the publisher.

Run: ``PYTHONPATH=src .venv/bin/python bench/hikyuu_bench.py`` (``--encode-only`` skips the gateways).

1. **Encode** (in process, no sockets): the simulator's whole market (SH+SZ+BJ, ~5,500 codes) as one hub
   burst; per burst the publisher's work on its thread: hub updates -> Hikyuu columns in Hikyuu's units
   (``records.spot_columns``) -> ``SpotList`` buffers of 1,000 records (``encode.encode_spot_list``).
   Wall and CPU (``process_time``) per burst, median and p95 of ``--reps``, and CPU per record. Also the
   whole-market bracket from the last-value cache once the replay ring has dropped the bursts (every
   entry a row of its own: the slowest input), and the flatc-generated builder Hikyuu's own producer
   uses, once, for scale.
2. **WebSocket p99, same run** (``bench/stream_bench.py``'s ``one_run``): a gateway on the replayed
   simulator with N whole-market Arrow clients, first without the feed, then with ``--hikyuu`` and a
   ``pynng.Sub0`` consumer reading every message in this process; client-receipt latency p50/p99, gateway
   CPU per delivered tick, and the feed's brackets / records / bytes. The extra gateway CPU over the
   records the consumer received is the publisher's CPU per record in place (encode, send, hub client).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def encode_bench(reps: int) -> dict[str, Any]:
    from qmtgate.config import Settings
    from qmtgate.hikyuu.encode import encode_spot_list, encode_with_builder
    from qmtgate.hikyuu.records import spot_columns
    from qmtgate.hub.stream import TICK, HubConfig, StreamHub
    from qmtgate.source.factory import build_simulated_source

    build_simulated_source(Settings(source="sim", sim={"clock": "manual", "start": "20250612103000"}))
    xtdata = sys.modules["xtquant.xtdata"]
    t = time.perf_counter()
    data = xtdata.get_full_tick(["SH", "SZ", "BJ"])
    print(f"simulated market ready: {len(data)} codes ({time.perf_counter() - t:.1f} s)")

    class _Src:
        name = "bench"

    def burst_work(updates: Any) -> tuple[int, int]:
        cols, _ = spot_columns(updates)
        out = [encode_spot_list(cols.slice(i, i + 1000)) for i in range(0, len(cols), 1000)]
        return len(cols), sum(map(len, out))

    def measure(label: str, updates: Any) -> dict[str, Any]:
        burst_work(updates)  # warm: the code table, numpy
        wall, cpu = [], []
        for _ in range(reps):
            w0, c0 = time.perf_counter(), time.process_time()
            n, size = burst_work(updates)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        wall.sort()
        cpu.sort()
        r = {
            "label": label,
            "records": n,
            "bytes": size,
            "wall_ms_p50": statistics.median(wall) * 1e3,
            "wall_ms_p95": wall[int(0.95 * (len(wall) - 1))] * 1e3,
            "cpu_ms_p50": statistics.median(cpu) * 1e3,
            "cpu_us_per_record": statistics.median(cpu) / n * 1e6,
        }
        print(
            f"  {label:<44} {n:>5} records {size / 1e6:5.2f} MB  wall p50 {r['wall_ms_p50']:6.2f} ms "
            f"p95 {r['wall_ms_p95']:6.2f} ms  CPU p50 {r['cpu_ms_p50']:6.2f} ms "
            f"= {r['cpu_us_per_record']:.2f} us/record"
        )
        return r

    print(f"encode, {reps} reps (hub updates -> Hikyuu columns -> SpotList buffers of 1,000):")
    hub = StreamHub(_Src(), HubConfig())
    updates = hub.publish(TICK, data)
    results = [measure("whole-market live burst", updates)]
    small = StreamHub(_Src(), HubConfig(ring_capacity=len(data)))
    small.publish(TICK, data)
    small.publish(TICK, {c: data[c] for c in list(data)[-1000:]})  # the ring drops the first burst
    cache = list(small.lvc.latest(TICK))
    rows = sum(1 for u in cache if u.burst is None)
    results.append(measure(f"cache snapshot, {rows} detached rows", cache))
    cols, _ = spot_columns(updates)
    w0 = time.perf_counter()
    size = sum(len(encode_with_builder(cols.slice(i, i + 1000))) for i in range(0, len(cols), 1000))
    builder_ms = (time.perf_counter() - w0) * 1e3
    print(
        f"  flatc builder (Hikyuu's own way), once:      {len(cols):>5} records {size / 1e6:5.2f} MB  {builder_ms:.0f} ms"
    )
    return {"runs": results, "builder_ms": builder_ms}


class FeedReader:
    """A Hikyuu-like consumer: counts brackets, records per bracket (from the FlatBuffers) and bytes."""

    def __init__(self, address: str) -> None:
        import pynng

        self.pynng = pynng
        self.sock = pynng.Sub0(recv_timeout=200)
        self.sock.subscribe(b":spot:")
        self.sock.dial(address, block=False)  # NNG redials until the gateway listens
        self.brackets = self.records = self.bytes = self.messages = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from qmtgate.hikyuu.flat import spot_generated as fb

        while not self.stop.is_set():
            try:
                msg = self.sock.recv()
            except self.pynng.Timeout:
                continue
            self.messages += 1
            self.bytes += len(msg)
            if msg == b":spot:[end spot]":
                self.brackets += 1
            elif msg != b":spot:[start spot]":
                self.records += fb.SpotList.GetRootAs(msg[6:], 0).SpotLength()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def ws_bench(clients: int, speed: float, seconds: float, warmup: float, procs: int) -> list[dict[str, Any]]:
    import stream_bench

    stream_bench.QMTGATE = Path(sys.executable).with_name("qmtgate")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    out = []
    for with_feed in (False, True):
        print(
            f"\n=== WebSocket: {clients} whole-market clients, speed {speed:g}, {'WITH' if with_feed else 'without'} the Hikyuu feed ==="
        )
        reader = None
        if with_feed:
            port = stream_bench.free_port()
            os.environ["QMTGATE_HIKYUU__ENABLED"] = "true"
            os.environ["QMTGATE_HIKYUU__ADDRESSES"] = f'["tcp://127.0.0.1:{port}"]'
            reader = FeedReader(f"tcp://127.0.0.1:{port}")
        try:
            s = stream_bench.one_run(clients, speed, "arrow", procs, seconds, warmup)
        finally:
            os.environ.pop("QMTGATE_HIKYUU__ENABLED", None)
            os.environ.pop("QMTGATE_HIKYUU__ADDRESSES", None)
            if reader is not None:
                reader.close()
        s["hikyuu"] = with_feed
        if reader is not None:
            s["feed"] = {"brackets": reader.brackets, "records": reader.records, "bytes": reader.bytes}
            print(
                f"  Hikyuu consumer: {reader.brackets} brackets, {reader.records} records, "
                f"{reader.bytes / 1e6:.1f} MB over the whole run (start-up included)"
            )
        out.append(s)
    a, b = out
    print("\n=== with / without the Hikyuu feed ===")
    print(
        f"  WebSocket p50 {a['lat_p50']:.1f} -> {b['lat_p50']:.1f} ms, p99 {a['lat_p99']:.1f} -> {b['lat_p99']:.1f} ms"
    )
    print(
        f"  gateway CPU {a['gw_cpu']:.2f} -> {b['gw_cpu']:.2f} s over {seconds:g} s "
        f"({a['gw_cpu_per_tick_us']:.2f} -> {b['gw_cpu_per_tick_us']:.2f} us per delivered tick)"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--encode-only", action="store_true")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument(
        "--speed", type=float, default=3.0, help="replay speed (3: a whole-market burst per second)"
    )
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared with other work)")
    encode_bench(a.reps)
    if not a.encode_only:
        ws_bench(a.clients, a.speed, a.seconds, a.warmup, a.procs)


if __name__ == "__main__":
    main()
