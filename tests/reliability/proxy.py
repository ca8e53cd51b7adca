"""A TCP proxy on its own thread that can cut and restore the link between a client and the gateway.

``cut()`` aborts every proxied connection (both sides see a reset, as when a LAN cable is pulled or a NAT
entry expires) and refuses new ones until ``restore()``. Used by the link-cut tests and bench/soak.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any


class LinkProxy:
    """``127.0.0.1:<port>`` -> ``target``; thread-safe ``cut``/``restore``; ``close`` when done."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.loop = asyncio.new_event_loop()
        self._links: set[asyncio.StreamWriter] = set()
        self._open = True
        self.cuts = 0
        self.accepted = 0
        self.refused = 0
        ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None

        async def start() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            ready.set()

        self._thread = threading.Thread(target=self.loop.run_forever, name="link-proxy", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        assert self._server is not None
        self.port: int = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.accepted += 1
        self._links.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._links.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        writer.transport.abort()  # one side gone: drop the other at once

    def _call(self, fn: Any) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def cut(self) -> int:
        """Abort every live link and refuse new ones; returns how many links were cut."""

        def do() -> int:
            self._open = False
            self.cuts += 1
            links = list(self._links)
            for w in links:
                w.transport.abort()
            return len(links)

        return int(self._call(do))

    def restore(self) -> None:
        def do() -> None:
            self._open = True

        self._call(do)

    def close(self) -> None:
        def do() -> None:
            self._open = False
            for w in list(self._links):
                w.transport.abort()
            if self._server is not None:
                self._server.close()

        with contextlib.suppress(Exception):
            self._call(do)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()
