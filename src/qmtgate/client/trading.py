"""The account events of the gateway's WebSocket ``trading`` channel, with reconnect and resume.

:class:`TradingEvents` keeps one WebSocket to ``/api/v1/ws`` subscribed to the ``trading`` channel and
hands every event, in ``seq`` order, to ``on_event(event)``; feed events (``subscribed``, ``resync``,
``disconnected``, ``refused``) go to ``on_feed(kind, data)``. After a dropped connection it reconnects
and resumes with ``since`` (the last seq it handed on) and the ``epoch``: the gateway replays what was
missed from its ring, so no account event is lost and none is given twice. When the gateway cannot
replay (it restarted: a new epoch; or the client was away longer than its ring holds) it says
``resync``: events were lost, re-read orders / positions / asset over REST.

Events (docs/trading.md): ``{"seq", "prev_seq", "epoch", "event": "order" | "trade" | "position" |
"asset" | "order_error" | "cancel_error" | "account_status" | "disconnected" | "reconnected", "ts",
"data": {...xttype attributes...}, "replay": bool}``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

import orjson
import websockets

logger = logging.getLogger(__name__)

#: WebSocket close codes of a refused key (qmtgate.security.ws): retrying cannot help.
CLOSE_REFUSED = (4401, 4403)
#: error codes on the channel that retrying cannot fix
FINAL_ERRORS = ("forbidden", "trading_disabled", "unauthorized")


class SocketDown(ConnectionError):
    """No answer could come over the trading WebSocket (not open, closed meanwhile, timed out);
    ``sent``: whether the request had been written to the socket (the gateway may have it)."""

    def __init__(self, message: str, sent: bool = False) -> None:
        super().__init__(message)
        self.sent = sent


def _no_answer(timeout: float) -> SocketDown:
    return SocketDown(f"no answer on the trading WebSocket within {timeout} s", sent=True)


class TradingEvents:
    """One subscription to the account events; run :meth:`run` as a task, :meth:`close` to end it."""

    def __init__(
        self,
        ws_url: str,
        headers: dict[str, str],
        on_event: Callable[[dict[str, Any]], Any],
        on_feed: Callable[[str, dict[str, Any]], Any] | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_reconnect_delay: float = 2.0,
        subscribe: bool = True,
    ) -> None:
        #: False: the socket only carries orders (no account events; "connected" at the gateway's hello)
        self.subscribe = subscribe
        self.ws_url = ws_url
        self.headers = headers
        self.on_event = on_event
        self.on_feed = on_feed or (lambda kind, data: None)
        self.ssl_context = ssl_context
        self.max_reconnect_delay = max_reconnect_delay
        #: the last seq handed on and its epoch: where a resume starts
        self.since: int | None = None
        self.epoch: str | None = None
        self.connected = asyncio.Event()
        #: set when the gateway refused for good (no trade scope, trading off): {"code", "message", ...}
        self.refused: dict[str, Any] | None = None
        self.reconnects = 0
        self._closing = False
        self._ws: Any = None
        #: place / cancel messages sent on this socket and not answered yet: id -> future of the reply
        #: (an asyncio future for :meth:`request`, a concurrent one for :meth:`request_threadsafe`)
        self._replies: dict[int, asyncio.Future | concurrent.futures.Future] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop :meth:`run` runs on
        self._loop_thread: threading.Thread | None = None

    async def run(self) -> None:
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.current_thread()
        delay = 0.1
        while not self._closing:
            try:
                await self._session()
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except websockets.exceptions.ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd is not None else None
                if code in CLOSE_REFUSED:
                    self._refuse(
                        {"code": "forbidden" if code == 4403 else "unauthorized", "close_code": code}
                    )
                    return
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as e:
                logger.debug("trading events: connection failed: %r", e)
            if self.refused is not None or self._closing:
                return
            if self.connected.is_set():
                self.connected.clear()
                self.on_feed("disconnected", {"since": self.since, "epoch": self.epoch})
            self.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_reconnect_delay)

    async def _session(self) -> None:
        kwargs: dict[str, Any] = {"additional_headers": self.headers, "max_size": None, "open_timeout": 10}
        if self.ssl_context is not None:
            kwargs["ssl"] = self.ssl_context
        async with websockets.connect(self.ws_url, **kwargs) as ws:
            self._ws = ws
            try:
                if self.subscribe:
                    request: dict[str, Any] = {"op": "subscribe", "channel": "trading"}
                    if self.since is not None:
                        request.update(since=self.since, epoch=self.epoch)
                    await ws.send(orjson.dumps(request).decode())
                async for raw in ws:
                    msg = orjson.loads(raw)
                    if not isinstance(msg, dict):
                        continue
                    if self._handle(msg):
                        return
            finally:
                self._ws = None
                self._fail_replies("the trading WebSocket closed before the answer")

    def _fail_replies(self, why: str) -> None:
        replies, self._replies = self._replies, {}
        for future in replies.values():
            if not future.done():
                future.set_exception(SocketDown(why, sent=True))

    async def request(self, op: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send ``{"op": op, "id", "body"}`` on the open, subscribed socket and wait for its reply
        (``{"type": "reply", "status", "result" | "error"}``). Raises :class:`SocketDown` when there is
        no open socket, it closes before the reply, or no reply comes within ``timeout``; the request
        may then have reached the gateway (resend it only where that is safe: an order with the same
        client_order_id)."""
        ws = self._open_socket()
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        rid, message = self._register(op, body, future)
        try:
            await self._send_request(ws, rid, message)
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError as e:
            raise _no_answer(timeout) from e
        finally:
            self._replies.pop(rid, None)

    def request_threadsafe(self, op: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """:meth:`request` for a caller on another thread than the socket's loop (the sync client and
        the remote xttrader). The reader hands the reply straight to the waiting thread: no task on the
        loop waits for it, which saves the loop passes between the reply's arrival and the caller
        (a few tens of microseconds of every order's round trip). Same answers and exceptions."""
        if threading.current_thread() is self._loop_thread:
            raise RuntimeError("request_threadsafe would block the socket's own loop: await request() there")
        ws, loop = self._open_socket(), self._loop
        if loop is None:
            raise SocketDown("the trading WebSocket is not open")
        future: concurrent.futures.Future = concurrent.futures.Future()
        rid, message = self._register(op, body, future)
        try:
            asyncio.run_coroutine_threadsafe(self._send_request(ws, rid, message), loop)
        except RuntimeError as e:  # the loop is closed
            self._replies.pop(rid, None)
            raise SocketDown("the trading WebSocket is not open") from e
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as e:
            raise _no_answer(timeout) from e
        finally:
            self._replies.pop(rid, None)

    def _open_socket(self) -> Any:
        """The socket a request may go on now, or :class:`SocketDown` (nothing sent)."""
        ws = self._ws
        if ws is None or not self.connected.is_set() or self.refused is not None:
            raise SocketDown("the trading WebSocket is not open")
        return ws

    def _register(self, op: str, body: dict[str, Any], future: Any) -> tuple[int, str]:
        """A new request id waiting on ``future`` for its reply, and the message that carries it."""
        rid = next(self._ids)
        self._replies[rid] = future
        return rid, orjson.dumps({"op": op, "id": rid, "body": body}).decode()

    async def _send_request(self, ws: Any, rid: int, message: str) -> None:
        """Write a registered request; a failed write fails its future (it may have left: ``sent``)."""
        try:
            await ws.send(message)
        except (OSError, websockets.exceptions.WebSocketException) as e:
            future = self._replies.pop(rid, None)
            if future is not None and not future.done():
                future.set_exception(SocketDown(f"the trading WebSocket failed: {e!r}", sent=True))

    def _handle(self, msg: dict[str, Any]) -> bool:
        """One server message; True when the subscription is over for good."""
        kind = msg.get("type")
        if kind == "reply":
            future = self._replies.pop(msg.get("id"), None)  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(msg)
        elif kind == "trading":
            seq, epoch = msg.get("seq"), msg.get("epoch")
            if self.since is not None and epoch == self.epoch and isinstance(seq, int):
                if seq <= self.since:
                    return False  # already handed on (cannot happen with the gateway's resume; be safe)
                prev = msg.get("prev_seq")
                if isinstance(prev, int) and prev > self.since:  # never expected: say so, do not hide it
                    self.on_feed("gap", {"since": self.since, "prev_seq": prev})
            self.since, self.epoch = seq, epoch
            self.on_event(msg)
        elif kind == "hello" and not self.subscribe:  # an orders-only socket is ready at the hello
            self.connected.set()
        elif kind == "subscribed" and msg.get("channel") == "trading":
            if self.since is None or msg.get("epoch") != self.epoch:
                self.since, self.epoch = msg.get("seq"), msg.get("epoch")
            self.connected.set()
            self.on_feed("subscribed", msg)
        elif kind == "resync" and msg.get("channel") == "trading":
            self.since, self.epoch = msg.get("seq"), msg.get("epoch")
            self.on_feed("resync", msg)
        elif kind == "error":
            error = msg.get("error") or {}
            if error.get("code") in FINAL_ERRORS:
                self._refuse(error)
                return True
            logger.warning("trading events: gateway error %s", error)
        return False

    def _refuse(self, error: dict[str, Any]) -> None:
        self.refused = dict(error)
        self.connected.set()  # wake whoever waits for the first connect: it reads `refused`
        self.on_feed("refused", self.refused)

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self.connected.wait(), timeout)

    async def close(self) -> None:
        self._closing = True
        self._fail_replies("closed")
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
