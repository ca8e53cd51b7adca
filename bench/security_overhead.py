"""What the security gate, metrics and access log cost on a small request.

Runs the gateway in-process (ASGI, over the tests' fake xtdata with a live quote cache, so only the
gateway's own request path is measured, without the TCP stack) in three configurations and times
sequential single-code snapshot round trips:

* ``bare``: the app without the security and access middleware (as before issue 6);
* ``default``: both middleware installed, auth off (loopback default), metrics on, access log filtered;
* ``auth+log``: an API key checked on every request, rate limits, metrics, and the JSON access log
  written to a file.

Usage: .venv/bin/python bench/security_overhead.py [requests]
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from api.support import FakeXtdata, make_source
from qmtgate.api.app import create_app
from qmtgate.api.middleware import AccessMiddleware, SecurityMiddleware
from qmtgate.config import LogSettings, Settings
from qmtgate.ops.logs import setup_logging
from qmtgate.security.keys import generate_key


def run(
    name: str, settings: Settings, n: int, *, bare: bool = False, headers: dict[str, str] | None = None
) -> None:
    asyncio.run(_run(name, settings, n, bare, headers or {}))


async def _run(name: str, settings: Settings, n: int, bare: bool, headers: dict[str, str]) -> None:
    fake = FakeXtdata()
    app = create_app(settings, make_source(fake))
    if bare:
        app.user_middleware = [
            m for m in app.user_middleware if m.cls not in (AccessMiddleware, SecurityMiddleware)
        ]
    async with app.router.lifespan_context(app):
        deadline = time.monotonic() + 10
        while not any(period == "tick" for _c, period, _cb in fake.subscriptions.values()):
            assert time.monotonic() < deadline, "no whole-market subscription"
            await asyncio.sleep(0.01)
        for _codes, period, callback in list(fake.subscriptions.values()):
            if period == "tick":  # the first push makes the quote cache live: snapshots skip xtdata
                callback({"600000.SH": FakeXtdata._tick("600000.SH")})
        await asyncio.sleep(0.2)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers=headers) as client:
            for _ in range(300):  # warm up
                response = await client.get("/api/v1/snapshots", params={"codes": "600000.SH"})
                assert response.status_code == 200, response.text
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                response = await client.get("/api/v1/snapshots", params={"codes": "600000.SH"})
                samples.append((time.perf_counter() - t0) * 1e6)
                assert response.status_code == 200
    samples.sort()
    print(
        f"{name:<9} median {statistics.median(samples):6.0f} us   p90 {samples[int(n * 0.9)]:6.0f} us   "
        f"p99 {samples[int(n * 0.99)]:6.0f} us"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    key = generate_key("bench", ["read"])
    base = Settings(source="sim")
    run("bare", base, n, bare=True)
    run("default", base, n)
    with tempfile.TemporaryDirectory() as folder:
        handlers = setup_logging("info", LogSettings(format="json", file=Path(folder) / "q.log"))
        root = logging.getLogger()
        root.removeHandler(handlers[0])  # keep the console quiet; the file handler stays
        try:
            keyed = Settings(
                source="sim",
                auth={"keys": [key.record.model_dump()]},
                rate_limit={
                    "per_key_rate": 1e6,
                    "per_key_burst": 10**6,
                    "per_address_rate": 1e6,
                    "per_address_burst": 10**6,
                },
            )
            run("auth+log", keyed, n, headers={"X-API-Key": key.token})
        finally:
            for h in handlers:
                root.removeHandler(h)
                h.close()


if __name__ == "__main__":
    main()
