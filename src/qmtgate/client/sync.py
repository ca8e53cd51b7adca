"""``Client``: the blocking client (httpx.Client for REST; streams run on a private loop thread)."""

from __future__ import annotations

import collections
import contextlib
import http.client
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import httpx

from qmtgate.client._base import (
    OPERATIONS,
    Options,
    bind_sync,
    finish,
    finish_raw,
    request_kwargs,
    transport_error,
)
from qmtgate.client._calls import Call
from qmtgate.client._keepalive import KeepAliveJson
from qmtgate.client._loop import LoopThread
from qmtgate.client.stream import Batch, Event, Stream, _Intent, split_targets

if TYPE_CHECKING:
    from qmtgate.client.orders import OrderSocket

logger = logging.getLogger(__name__)


class Subscription:
    """A running subscription of the sync client: its callback runs on the client's stream thread.

    ``events`` keeps the latest feed events (connected, disconnected, resync, gap, stale, status...);
    ``batches`` counts data batches delivered. ``close()`` ends it.
    """

    def __init__(self, client: Client, stream: Stream) -> None:
        self._client = client
        self.stream = stream
        self.events: collections.deque[Event] = collections.deque(maxlen=200)
        self.batches = 0
        self.errors = 0
        self._future: Any = None

    def close(self) -> None:
        self._client._loop.run(self.stream.close(), timeout=10)
        if self._future is not None:
            with contextlib.suppress(Exception):
                self._future.result(timeout=5)


class Client:
    """Blocking client of a qmtgate gateway; the same methods as :class:`qmtgate.client.AsyncClient`.

    The one rule: methods block the calling thread; callbacks of :meth:`subscribe` run on the client's own
    stream thread, never on the caller's, so keep them short (a slow callback makes the gateway conflate
    for this client, and the batches say so). Safe to use from several threads. Use as a context manager
    or call :meth:`close`.
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
        self._http = httpx.Client(**self.options.httpx_options())
        self._fast = (
            KeepAliveJson(self.options.base_url, self.options.headers(), timeout)
            if self.options.base_url.startswith("http://")
            else None
        )
        self._loop = LoopThread()
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()

    def send(self, call: Call) -> Any:
        """Send one prepared :class:`Call` (all methods go through here)."""
        if (
            self._fast is not None
            and call.idempotent
            and not (call.tabular and self.options.format == "arrow")
        ):
            try:
                status, content_type, content = self._fast.request(
                    call.method, call.path, call.params, call.body
                )
            except (OSError, http.client.HTTPException) as e:
                raise transport_error(e, call, self.options) from e
            return finish_raw(call, status, content_type, content)
        try:
            response = self._http.request(call.method, call.path, **request_kwargs(call, self.options))
        except httpx.TransportError as e:
            raise transport_error(e, call, self.options) from e
        return finish(call, response)

    def open_stream(
        self,
        *,
        stale_after: float | None = None,
        max_reconnect_delay: float = 5.0,
        encoding: Literal["auto", "json", "columns", "arrow"] = "auto",
        compression: Literal["zstd", "lz4", "none"] = "zstd",
    ) -> Stream:
        """A :class:`Stream` bound to this client's loop thread (drive it with :meth:`run`)."""
        return Stream(
            self.options.ws_url(),
            self.options.headers(),
            ssl_context=self.options.ssl_context,
            stale_after=stale_after,
            max_reconnect_delay=max_reconnect_delay,
            encoding=encoding,
            compression=compression,
        )

    def order_socket(
        self, on_event: Callable[[dict[str, Any]], Any] | None = None, *, connect_timeout: float = 10.0
    ) -> OrderSocket:
        """Orders and cancels over the trading WebSocket (the lowest-latency way to trade; REST when
        the socket is down): ``sock.place(...)`` / ``sock.cancel(...)`` as :meth:`trading_place` /
        :meth:`trading_cancel`; ``on_event`` gets the account events (docs/trading.md)."""
        from qmtgate.client.orders import OrderSocket

        return OrderSocket(self, on_event, connect_timeout=connect_timeout)

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        """Run a coroutine on the client's loop thread (e.g. ``stream.subscribe(...)``) and wait."""
        return self._loop.run(coro, timeout)

    def subscribe(
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
    ) -> Subscription:
        """Subscribe to codes and/or whole markets (``"SH"``, ``"SZ"``, ``"BJ"``); ``callback(batch)`` per
        batch and ``on_event(event)`` per feed event, both on the stream thread. Reconnects by itself.
        ``encoding="arrow"`` (with ``compression``) suits whole-market consumers: see :class:`Stream`.
        ``nats="nats://bus:4222"``: the same from a NATS bus (``gateway``: an id or ``"*"``; docs/nats.md)."""
        if nats is not None:
            from qmtgate.client.bus import NatsStream

            stream: Stream = NatsStream(  # type: ignore[assignment]
                nats, gateway=gateway, encoding=encoding, stale_after=stale_after
            )
        else:
            stream = self.open_stream(stale_after=stale_after, encoding=encoding, compression=compression)
        codes, markets = split_targets(targets)
        stream._intents.append(_Intent(period, codes, markets, tuple(sectors)))
        sub = Subscription(self, stream)

        async def pump() -> None:
            async for item in stream:
                try:
                    if isinstance(item, Batch):
                        sub.batches += 1
                        if callback is not None:
                            callback(item)
                    else:
                        sub.events.append(item)
                        if on_event is not None:
                            on_event(item)
                except Exception:  # a raising callback must not end the subscription
                    sub.errors += 1
                    logger.exception("subscription callback raised")

        sub._future = self._loop.submit(pump())
        with self._lock:
            self._subscriptions.append(sub)
        return sub

    def close(self) -> None:
        with self._lock:
            subs, self._subscriptions = self._subscriptions, []
        for sub in subs:
            with contextlib.suppress(Exception):
                sub.close()
        self._loop.stop()
        if self._fast is not None:
            self._fast.close()
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


for _build in OPERATIONS:
    setattr(Client, _build.__name__, bind_sync(_build))
