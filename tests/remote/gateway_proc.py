"""A gateway on the simulator in its own process, for the drop-in tests (test support, not shipped).

The simulator registers itself as ``xtquant`` in the process that runs it, so the remote drop-in must live
elsewhere. Run as ``python gateway_proc.py PORT``: serves ``sim_settings()`` (manual clock pinned to
2025-06-12 10:30, seed 0) on 127.0.0.1:PORT, prints ``READY`` once the quote cache is live, and reads
commands on stdin: ``advance SECONDS`` moves the simulated clock (answers ``OK``). EOF on stdin stops it.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import httpx
import uvicorn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from api.sim_support import sim_settings, wait_live
from qmtgate.api.app import create_app


def _commands() -> None:
    for line in sys.stdin:
        parts = line.split()
        if parts[:1] == ["advance"]:
            from qmtgate.sim.xtquant import _env

            _env.current().market.clock.advance(float(parts[1]))
            print("OK", flush=True)
    os._exit(0)  # the test process went away: never outlive it


def _announce(port: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        deadline = time.monotonic() + 120
        while True:
            try:
                wait_live(client, timeout=120)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    print("READY", flush=True)


def main() -> None:
    port = int(sys.argv[1])
    app = create_app(sim_settings())
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws_per_message_deflate=False)
    )
    threading.Thread(target=_commands, daemon=True).start()
    threading.Thread(target=_announce, args=(port,), daemon=True).start()
    server.run()


if __name__ == "__main__":
    main()
