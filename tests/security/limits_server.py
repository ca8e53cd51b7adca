"""Run the gateway over the fake xtdata with auth on and the guarded HTTP protocol, in its own process.

The HTTP-limit tests measure this process's resident memory while they attack it, so it must not share a
process with the test. Settings come as one JSON argument (``Settings(**json)``); the keys file is created
by the test. Prints ``ready`` on stdout once it serves.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for source.fake_xtdata

from qmtgate.api.app import create_app
from qmtgate.config import Settings
from qmtgate.security.http_guard import guarded_protocol
from qmtgate.source.xtdata_source import XtdataSource, XtdataSourceConfig
from source.fake_xtdata import FakeXtdata


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--settings", default="{}", help="Settings as JSON")
    args = parser.parse_args()
    settings = Settings(**json.loads(args.settings))
    source = XtdataSource(FakeXtdata(), name="simulated", config=XtdataSourceConfig(reconnect_interval=60))
    app = create_app(settings, source)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            http=guarded_protocol(settings.http),
        )
    )

    def announce() -> None:
        while not server.started:
            time.sleep(0.01)
        print("ready", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    server.run()


if __name__ == "__main__":
    main()
