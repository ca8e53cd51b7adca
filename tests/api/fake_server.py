"""Run the gateway over the fake xtdata (with per-call latencies) in its own process.

Timing tests and the REST bench use it so that client and server do not share a GIL, as in production::

    python tests/api/fake_server.py --port 8123 --latency get_full_tick=0.1 --no-hub
    python tests/api/fake_server.py --port 8123 --latency get_market_data_ex=5 --push

``--stream 3`` pushes every code of the fake's universe to the whole-market subscription every 3 s, each
burst with new prices, volumes and books (the memory and fan-out benches' market without the simulator).
``--push`` feeds the quote cache once (the whole-market subscription's first push) when it subscribes.
The process prints ``ready`` on stdout once it serves.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import tracemalloc
from pathlib import Path

from qmtgate.ops.allocator import prefer_system_arrow_pool

prefer_system_arrow_pool()  # as the console script's `serve` does, before pyarrow loads

import pyarrow as pa  # noqa: E402
import uvicorn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for source.fake_xtdata

from qmtgate.api.app import create_app  # noqa: E402
from qmtgate.config import Settings  # noqa: E402
from qmtgate.source.executor import ExecutorConfig, XtdataExecutor  # noqa: E402
from qmtgate.source.xtdata_source import XtdataSource, XtdataSourceConfig  # noqa: E402
from source.fake_xtdata import FakeXtdata  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", action="append", default=[], help="name=seconds, e.g. get_full_tick=0.1")
    parser.add_argument("--no-hub", action="store_true", help="no quote cache: snapshots reach the source")
    parser.add_argument("--push", action="store_true", help="feed the quote cache once when it subscribes")
    parser.add_argument("--universe", type=int, default=0, help="extra synthetic stocks (fake_xtdata)")
    parser.add_argument(
        "--stream", type=float, default=0.0, help="push the whole market every this many seconds (benches)"
    )
    parser.add_argument(
        "--stream-fill", type=int, default=0, help="first bursts every 0.2 s (fills the ring)"
    )
    parser.add_argument("--merge-window", type=float, default=None, help="executor gather window, seconds")
    parser.add_argument("--merge-window-max", type=float, default=0.02, help="its longest wait, seconds")
    args = parser.parse_args()

    fake = FakeXtdata(universe=args.universe)
    for item in args.latency:
        name, _, seconds = item.partition("=")
        fake.latency[name] = float(seconds)
    executor = None
    if args.merge_window is not None:
        executor = XtdataExecutor(
            ExecutorConfig(merge_window=args.merge_window, merge_window_max=args.merge_window_max)
        )
    source = XtdataSource(
        fake, name="simulated", config=XtdataSourceConfig(reconnect_interval=60), executor=executor
    )
    # as `qmtgate serve` runs it (cli.serve): process tuning, no per-connection permessage-deflate
    app = create_app(
        Settings(source="sim", quotes={"enabled": not args.no_hub}), source, process_tuning=args.stream > 0
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=args.port, log_level="warning", ws_per_message_deflate=False
        )
    )

    def announce() -> None:
        while not server.started:
            time.sleep(0.01)
        if args.push:
            while not fake.subscriptions:
                time.sleep(0.01)
            (_, _, push) = next(iter(fake.subscriptions.values()))
            push({code: fake._tick(code) for code in ("600000.SH", "000001.SZ", "430047.BJ", "510300.SH")})
        print("ready", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    dump = os.environ.get("QMTGATE_TEST_TRACEMALLOC_DUMP")  # memory census: SIGUSR1 writes the top sites
    if dump and hasattr(signal, "SIGUSR1"):
        tracemalloc.start(int(os.environ.get("QMTGATE_TEST_TRACEMALLOC_FRAMES", "1")))

        def write_census(*_: object) -> None:
            stats = tracemalloc.take_snapshot().statistics("traceback")
            total = sum(s.size for s in stats)
            pool = pa.default_memory_pool()
            lines = [
                f"total {total / 2**20:.1f} MB; arrow pool {pool.backend_name}: {pool.bytes_allocated() / 2**20:.1f} MB"
                f" now, {pool.max_memory() / 2**20:.1f} MB peak; modules {len(sys.modules)}, pandas {'pandas' in sys.modules}"
            ]  # fmt: skip
            for stat in stats[:40]:
                lines.append(f"{stat.size / 2**20:8.2f} MB {stat.count:8d}  " + " <- ".join(
                    f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in stat.traceback
                ))  # fmt: skip
            Path(dump).write_text("\n".join(lines) + "\n")

        signal.signal(signal.SIGUSR1, write_census)
    if args.stream > 0:
        threading.Thread(
            target=fake.stream_whole_market, args=(args.stream, None, args.stream_fill), daemon=True
        ).start()
    server.run()


if __name__ == "__main__":
    main()
