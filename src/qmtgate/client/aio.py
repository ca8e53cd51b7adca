"""``AsyncClient``: the asyncio client (httpx.AsyncClient for REST, :class:`Stream` for push)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import httpx

from qmtgate.client._base import (
    OPERATIONS,
    Options,
    bind_async,
    finish,
    request_kwargs,
    transport_error,
)
from qmtgate.client._calls import Call
from qmtgate.client.stream import Batch, Event, Stream


class AsyncClient:
    """Asyncio client of a qmtgate gateway.

    The one rule: every method is a coroutine and must be awaited on the loop that created the client.
    Methods are the same as :class:`qmtgate.client.Client`'s; tables come back as pandas DataFrames
    (Arrow IPC on the wire unless ``format="json"``), failures as typed exceptions from
    :mod:`qmtgate.client.errors`. ``api_key`` is sent only in the ``X-API-Key`` header (HTTP and the
    WebSocket handshake). ``timeout`` (seconds) bounds every request.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        format: str = "arrow",
        max_connections: int = 10,
        tls_fingerprint: str | Sequence[str] | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
    ) -> None:
        self.options = Options.create(
            base_url, api_key, timeout, format, max_connections, tls_fingerprint, tls_ca
        )
        self._http = httpx.AsyncClient(**self.options.httpx_options())
        self._streams: list[Stream] = []

    async def send(self, call: Call) -> Any:
        """Send one prepared :class:`Call` (all methods go through here)."""
        try:
            response = await self._http.request(call.method, call.path, **request_kwargs(call, self.options))
        except httpx.TransportError as e:
            raise transport_error(e, call, self.options) from e
        return finish(call, response)

    def stream(
        self,
        targets: str | Sequence[str] | None = None,
        period: str = "tick",
        *,
        sectors: Sequence[str] = (),
        stale_after: float | None = None,
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 5.0,
        encoding: Literal["auto", "json", "columns", "arrow"] = "auto",
        compression: Literal["zstd", "lz4", "none"] = "zstd",
        nats: str | None = None,
        gateway: str = "*",
    ) -> Stream:
        """A :class:`Stream` subscribed to codes and/or whole markets (``"SH"``, ``"SZ"``, ``"BJ"``).

        ``async for item in client.stream(["SH", "SZ"])`` yields :class:`Batch` and :class:`Event`.
        ``encoding="arrow"`` (with ``compression``) suits whole-market consumers: see :class:`Stream`.
        ``nats="nats://bus:4222"``: the same stream from a NATS bus instead of this gateway's WebSocket
        (:class:`qmtgate.client.bus.NatsStream`; ``gateway``: one gateway id or ``"*"``; docs/nats.md).
        """
        if nats is not None:
            from qmtgate.client.bus import NatsStream

            bus = NatsStream(
                nats,
                gateway=gateway,
                encoding=encoding,
                stale_after=stale_after,
                reconnect_delay=reconnect_delay,
                max_reconnect_delay=max_reconnect_delay,
            )
            if targets is not None or sectors:
                bus._intents.append(_intent(targets, period, sectors))
            self._streams.append(bus)  # type: ignore[arg-type]
            return bus  # type: ignore[return-value]
        stream = Stream(
            self.options.ws_url(),
            self.options.headers(),
            ssl_context=self.options.ssl_context,
            stale_after=stale_after,
            reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay,
            encoding=encoding,
            compression=compression,
        )
        if targets is not None or sectors:
            stream._intents.append(_intent(targets, period, sectors))
        self._streams.append(stream)
        return stream

    async def subscribe(
        self,
        targets: str | Sequence[str] | None,
        period: str = "tick",
        callback: Callable[[Batch], Any] | None = None,
        *,
        on_event: Callable[[Event], Any] | None = None,
        sectors: Sequence[str] = (),
        stale_after: float | None = None,
        encoding: Literal["auto", "json", "columns", "arrow"] = "auto",
        compression: Literal["zstd", "lz4", "none"] = "zstd",
        nats: str | None = None,
        gateway: str = "*",
    ) -> Stream:
        """Call ``callback(batch)`` (sync or async) for every batch; ``on_event(event)`` for events.
        ``nats``: from a NATS bus instead of the WebSocket (see :meth:`stream`)."""
        stream = self.stream(
            targets,
            period,
            sectors=sectors,
            stale_after=stale_after,
            encoding=encoding,
            compression=compression,
            nats=nats,
            gateway=gateway,
        )

        async def pump() -> None:
            async for item in stream:
                handler = callback if isinstance(item, Batch) else on_event
                if handler is None:
                    continue
                result = handler(item)
                if inspect.isawaitable(result):
                    await result

        task = asyncio.get_running_loop().create_task(pump(), name="qmtgate-subscribe")
        stream._pump = task  # type: ignore[attr-defined]
        return stream

    async def aclose(self) -> None:
        for stream in self._streams:
            with contextlib.suppress(Exception):
                await stream.close()
        self._streams.clear()
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _intent(targets: str | Sequence[str] | None, period: str, sectors: Sequence[str]) -> Any:
    from qmtgate.client.stream import _Intent, split_targets

    codes, markets = split_targets(targets)
    return _Intent(period, codes, markets, tuple(sectors))


for _build in OPERATIONS:
    setattr(AsyncClient, _build.__name__, bind_async(_build))
