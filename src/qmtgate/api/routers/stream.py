"""WebSocket streaming: ``/api/v1/ws`` (qmtgate protocol) and ``/ws/realtime`` (qmt-bridge style).

Protocol (JSON text frames; every server message has a ``type``):

client -> server
    {"op": "subscribe", "period": "tick" | "1m" | "5m" | "15m" | "30m" | "1h" | "1d",
     "codes": [...], "markets": ["SH", "SZ", "BJ"], "sectors": [...], "id": any,
     "since": 1234, "epoch": "..."}          # since/epoch: resume after a reconnect
    {"op": "unsubscribe", "period": ..., "codes": [...], "markets": [...], "sectors": [...]}
    {"op": "resume", "since": 1234, "epoch": "..."}
    {"op": "ping", "t": any}
    {"op": "place" | "cancel", "id": any, "body": {...}}   # trading (trade scope): the body of
                                              # POST /api/v1/trading/orders | /cancel (docs/trading.md)
    {"op": "options", "encoding": "json" | "columns" | "arrow",   # data frames as JSON rows (default),
     "compression": "zstd" | "lz4" | "none"}   # columnar JSON or Arrow IPC; compression: Arrow buffers
server -> client
    {"type": "hello", "epoch", "seq", "source", "protocol": 1, "limits": {...}}
    {"type": "subscribed" | "unsubscribed", "id", "period", "codes", "markets", "errors": [...]}
    {"type": "data", "channel", "epoch", "seq_from", "seq_to", "conflated", "replay", "gw_ts",
     "items": [...]}                          # gw_ts: epoch ms the gateway got the burst from the source
    {"type": "resync", "reason": "new_epoch" | "out_of_window", "epoch"}  # followed by a snapshot
    {"type": "status", "event", "source": {...}, "stale": {...}, "prev_seq", "message"}
                                              # one shape, from StreamHub.status_message
    {"type": "error", "error": {"code", "message", "details"}}
    {"type": "pong", "t"}
    {"type": "reply", "op", "id", "status", "result": {...}}  # place / cancel: REST's answer, or
    {"type": "reply", "op", "id", "status", "error": {"code", "message", "details"}}  # its error
    {"type": "options", "encoding", "compression"}

With ``"encoding": "columns"`` data frames are JSON text with ``n``, ``depth`` and ``columns`` (one array per
field) instead of ``items``; see ``api.stream_codec._columns``.
With ``"encoding": "arrow"`` data frames are binary WebSocket messages holding an Arrow IPC stream (zstd
buffers unless another ``compression`` was chosen) whose schema metadata ``qmtgate.frame`` has the header fields above; see ``api.stream_codec``.

Malformed messages (not JSON, not an object, a binary frame, wrong types) get an ``error`` message with
code ``bad_request`` and the connection stays usable. A connection is read all the time, whatever it asked
for, so a client that goes away is noticed at once and its hub slot released.

Every data item carries its ``seq``: within one ``epoch`` seqs only grow, so a client can detect a gap;
a conflated frame says so. Items are the normalized rows (ticks: volume in shares, amount in yuan,
``ts`` epoch ms UTC and ``time`` in Asia/Shanghai; bars: the same units, ``forming`` true while the bar
is still open).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from qmtgate.api.qmt_bridge.realtime import messages as qmt_bridge_messages
from qmtgate.api.stream_codec import ArrowCompression, WireEncoding, encode
from qmtgate.api.trading_stream import ORDER_OPS, TradingChannel, order_op, trading_refusal
from qmtgate.codes import normalize_code
from qmtgate.errors import ErrorCode, QmtgateError, error_body
from qmtgate.hub.stream import BAR_PERIODS, MARKETS, TICK, ClientState, HubError, StreamHub
from qmtgate.security.guard import has_scope
from qmtgate.security.ws import authorize_websocket, held_markets, stream_quota_error

logger = logging.getLogger(__name__)
router = APIRouter(tags=["streaming"])

PROTOCOL = 1
CLOSE_TOO_SLOW = 4001
CLOSE_LIMIT = 1008
CLOSE_BUSY = 1013


async def _close_ended(ws: WebSocket, reason: str | None) -> None:
    """Close a socket whose outbox has ended, with the close code its reason calls for (a client too
    slow for its outbox gets ``CLOSE_TOO_SLOW``, so it knows to resume rather than give up)."""
    reason = reason or "closed"
    with contextlib.suppress(Exception):
        await ws.close(code=CLOSE_TOO_SLOW if "too slow" in reason else 1000, reason=reason[:120])


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()


class _Connection:
    """One WebSocket client: reads control messages, writes its outbox."""

    def __init__(self, ws: WebSocket, hub: StreamHub, services: Any, source_name: str) -> None:
        self.ws = ws
        self.hub = hub
        self.services = services
        self.source_name = source_name
        self.client: ClientState | None = None
        self.encoding = WireEncoding.JSON
        self.compression = ArrowCompression.ZSTD
        self.key: Any = None  # the API key record (None with auth off); its stream quota applies
        self.metrics = getattr(ws.app.state, "metrics", None)
        self.trading: TradingChannel | None = None  # the account events (api/trading_stream.py)
        self.trading_on = getattr(ws.app.state, "trading", None) is not None
        self._order_tasks: set[asyncio.Task] = set()  # place / cancel messages being answered

    async def run(self) -> None:
        await self.ws.accept()
        # with trading on, a key with only the `trade` scope may connect for the trading channel;
        # every subscription then checks its own scope
        allowed, self.key = await authorize_websocket(
            self.ws, ("stream", "trade") if self.trading_on else "stream"
        )
        if not allowed:
            return
        if self.metrics is not None:
            self.metrics.ws_connections.labels("/api/v1/ws").inc()
        try:
            self.client = self.hub.connect()
        except HubError as e:
            with contextlib.suppress(Exception):
                await self._send(
                    {"type": "error", "error": {"code": e.code, "message": e.message, "details": e.details}}
                )
                await self.ws.close(code=CLOSE_BUSY, reason=e.message)
            return
        try:
            await self._hello()
            await serve_socket(self.ws, self._handle, self._sender(), self.client.client_id)
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            pass  # the client went away
        finally:
            if self.trading is not None:
                self.trading.close()
            await self.hub.disconnect(self.client)

    async def _hello(self) -> None:
        await self._send(
            {
                "type": "hello",
                "protocol": PROTOCOL,
                "epoch": self.hub.epoch,
                "seq": self.hub.seq,
                "source": self.source_name,
                "note": self.services.source.status().note,
                "periods": [TICK, *BAR_PERIODS],
                "encodings": [e.value for e in WireEncoding],
                "compressions": [c.value for c in ArrowCompression],
                "channels": ["trading"] if self.trading_on else [],
                "limits": {
                    "max_codes": self.hub.config.max_codes_per_client,
                    "outbox_frames": self.hub.config.outbox_frames,
                    "max_lag_seconds": self.hub.config.max_lag_seconds,
                },
            }
        )

    async def _sender(self) -> None:
        """Drain this client's outbox to its socket; a failure closes the socket (never a silent stall)."""
        try:
            await self._drain()
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            pass  # the client went away
        except Exception:
            logger.exception("stream sender failed; closing the connection")
            with contextlib.suppress(Exception):
                await self.ws.close(code=1011, reason="internal error while sending")

    async def _drain(self) -> None:
        assert self.client is not None
        box = self.client.outbox
        while True:
            frame = await box.get()
            if frame is None:
                await _close_ended(self.ws, box.closed_reason)
                return
            if isinstance(frame, dict):  # a control message (source status)
                await self._send(frame)
                continue
            wire = encode(frame, self.hub.epoch, self.encoding, self.compression)
            if isinstance(wire, bytes):
                await self.ws.send_bytes(wire)
            else:
                await self.ws.send_text(wire)
            box.stats.frames_sent += 1
            box.stats.updates_sent += len(frame.updates)
            if self.metrics is not None and not frame.replay:
                self.metrics.stream_latency.observe(max(time.time() - frame.ts_pub, 0.0))

    async def _send(self, message: dict[str, Any]) -> None:
        await self.ws.send_text(_dumps(message))

    async def _error(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        await self._send(
            {"type": "error", "error": {"code": code, "message": message, "details": details or {}}}
        )

    async def _handle(self, text: str | None) -> None:
        msg = _json_object(text)
        if msg is None:
            await self._error("bad_request", BAD_MESSAGE)
            return
        op = msg.get("op")
        if op in ("subscribe", "resume"):
            bad = _bad_resume_point(msg)
            if bad is not None:
                await self._error("bad_request", bad[1], {"field": bad[0], "op": op})
                return
        try:
            if op == "ping":
                await self._send({"type": "pong", "t": msg.get("t")})
            elif isinstance(op, str) and op in ORDER_OPS:
                # its own task: a slow SDK answer must not hold this connection's other messages
                task = asyncio.get_running_loop().create_task(self._order(op, msg))
                self._order_tasks.add(task)
                task.add_done_callback(self._order_tasks.discard)
            elif op in ("subscribe", "unsubscribe") and "channel" in msg:
                await self._channel(op, msg)
            elif op in ("subscribe", "unsubscribe"):
                await self._subscription(op, msg)
            elif op == "resume":
                await self._resume(msg.get("since"), msg.get("epoch"))
            elif op == "options":
                await self._options(msg)
            else:
                await self._error(
                    "bad_request",
                    f"unknown op {op!r}",
                    {"ops": ["subscribe", "unsubscribe", "resume", "ping", "options", *ORDER_OPS]},
                )
        except HubError as e:
            await self._error(e.code, e.message, e.details)
        except QmtgateError as e:
            await self._error(e.code, e.message, getattr(e, "details", {}) or {})
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            raise  # the socket is gone
        except Exception:  # a message must never end the connection; say so and keep serving
            logger.exception(
                "stream message handling failed (op %r)", op if isinstance(op, str) else type(op)
            )
            await self._error("internal_error", "the gateway could not handle this message")

    async def _order(self, op: str, msg: dict[str, Any]) -> None:
        """A ``place`` / ``cancel``: answered on this socket as REST would (api/trading_stream.py)."""
        try:
            reply = await order_op(self.ws.app.state, self.key, op, msg)
        except Exception:
            logger.exception("trading %s over the WebSocket failed", op)
            reply = {"type": "reply", "op": op, "id": msg.get("id"), "status": 500,
                     **error_body(ErrorCode.INTERNAL_ERROR, "internal server error")}  # fmt: skip
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, ConnectionError):
            await self._send(reply)  # a client gone meanwhile retries with its client_order_id

    async def _options(self, msg: dict[str, Any]) -> None:
        """Per-connection settings: the data frame encoding and the Arrow buffers' compression (they apply
        to frames sent from now on; a request with a bad value changes nothing)."""
        try:
            encoding = WireEncoding(msg.get("encoding", self.encoding))
        except ValueError:
            allowed = [e.value for e in WireEncoding]
            await self._error(
                "invalid_encoding", f"unsupported encoding {msg['encoding']!r}", {"allowed": allowed}
            )
            return
        try:
            compression = ArrowCompression(msg.get("compression", self.compression))
        except ValueError:
            allowed = [c.value for c in ArrowCompression]
            await self._error(
                "invalid_compression",
                f"unsupported compression {msg['compression']!r}",
                {"allowed": allowed},
            )
            return
        self.encoding, self.compression = encoding, compression
        await self._send(
            {
                "type": "options",
                "id": msg.get("id"),
                "encoding": self.encoding.value,
                "compression": self.compression.value,
            }
        )

    async def _channel(self, op: str, msg: dict[str, Any]) -> None:
        """A named channel: today only ``trading``, the account events (api/trading_stream.py)."""
        assert self.client is not None
        channel = msg.get("channel")
        if channel != "trading":
            await self._error("bad_request", f"unknown channel {channel!r}", {"channels": ["trading"]})
            return
        refusal = trading_refusal(self.ws.app.state, self.key)
        if refusal is not None:
            await self._error(*refusal)
            return
        if op == "unsubscribe":
            if self.trading is not None:
                self.trading.close()
            await self._send({"type": "unsubscribed", "channel": "trading", "id": msg.get("id")})
            return
        service = self.ws.app.state.trading
        if self.trading is None:
            self.trading = TradingChannel(
                service.events, self.client.outbox, self.ws.app.state.settings.trading.events_max_pending
            )
        self.trading.subscribe(msg)

    async def _subscription(self, op: str, msg: dict[str, Any]) -> None:
        assert self.client is not None
        if self.key is not None and not has_scope(self.key, "stream"):  # a trade-only key: no quotes
            await self._error(
                "forbidden",
                "this API key lacks the 'stream' scope",
                {"required": "stream", "scopes": list(self.key.scopes)},
            )
            return
        period = msg.get("period", TICK)
        if period not in (TICK, *BAR_PERIODS):
            await self._error(
                "invalid_period", f"unsupported stream period {period!r}", {"allowed": [TICK, *BAR_PERIODS]}
            )
            return
        raw_codes, markets, sectors = (_str_list(msg, name) for name in ("codes", "markets", "sectors"))
        if raw_codes is None or markets is None or sectors is None:
            await self._error("bad_request", "codes, markets and sectors must be lists of strings")
            return
        limit = self.hub.config.max_codes_per_client
        if op == "subscribe" and len(raw_codes) > limit:  # refused before any work on them
            await self._error(
                "too_many_codes",
                f"a connection may subscribe at most {limit} codes",
                {"limit": limit, "requested": len(raw_codes)},
            )
            return
        errors: list[dict[str, Any]] = []
        bad_markets = [m for m in markets if m.upper() not in MARKETS]
        if bad_markets:
            errors.append({"code": "invalid_market", "markets": bad_markets})
        markets = [m.upper() for m in markets if m.upper() in MARKETS]
        codes: list[str] = []
        invalid: list[str] = []
        for raw in raw_codes:
            try:
                codes.append(normalize_code(raw))
            except QmtgateError:
                invalid.append(raw)
        if invalid:
            errors.append({"code": "invalid_code", "codes": invalid})
        unknown_sectors: list[str] = []
        for sector in sectors:
            try:
                codes.extend(await self.services.sector_members(sector))
            except QmtgateError:  # an unknown sector is reported; the rest is still served
                unknown_sectors.append(sector)
        if unknown_sectors:
            errors.append({"code": "unknown_sector", "sectors": unknown_sectors})
        if op == "subscribe" and codes:
            unknown = await self._unknown(codes)
            if unknown:
                errors.append({"code": "unknown_code", "codes": unknown})
                codes = [c for c in codes if c not in set(unknown)]
        codes = list(dict.fromkeys(codes))
        if op == "unsubscribe":
            await self.hub.unsubscribe(self.client, period, codes, markets)
            await self._send(
                {
                    "type": "unsubscribed",
                    "id": msg.get("id"),
                    "period": period,
                    "codes": codes,
                    "markets": markets,
                    "errors": errors,
                }
            )
            return
        interest = self.client.interests.get(period)
        quota = stream_quota_error(
            self.key,
            self.client.codes(),
            interest.codes if interest is not None else set(),
            codes,
            markets=markets,
            held_markets=held_markets(self.client),
            market_size=self.services.market_size,
        )
        if quota is not None:
            await self._error(quota["code"], quota["message"], quota["details"])
            return
        since, epoch = msg.get("since"), msg.get("epoch")
        self.client.paused = since is not None
        try:
            seeds = await self.hub.subscribe(self.client, period, codes, markets)
        except Exception:
            self.client.paused = False
            raise
        # The answer and the seeds go through the outbox, queued before the loop can publish another
        # burst: the client reads "subscribed", then the current values, then live frames, in that order
        # (a seed older than a live frame already sent would move its code back in time).
        self.client.outbox.put_message(
            {
                "type": "subscribed",
                "id": msg.get("id"),
                "period": period,
                "codes": codes,
                "markets": markets,
                "errors": errors,
            }
        )
        if since is not None:
            await self._resume(since, epoch)
        elif seeds:
            self.hub.deliver_seeds(self.client, period, seeds)

    async def _unknown(self, codes: list[str]) -> list[str]:
        return await _unknown_codes(self.services, codes)

    async def _resume(self, since: Any, epoch: Any) -> None:
        assert self.client is not None
        self.client.paused = True
        try:
            frames = self.hub.resume(self.client, int(since), str(epoch)) if isinstance(since, int) else None
            if frames is None:
                reason = "new_epoch" if epoch != self.hub.epoch else "out_of_window"
                self.client.outbox.put_message(
                    {"type": "resync", "reason": reason, "epoch": self.hub.epoch, "seq": self.hub.seq}
                )
                self.hub.deliver(self.client, self.hub.snapshot(self.client))
            else:
                self.hub.deliver(self.client, frames, since=int(since))
        finally:
            self.client.paused = False


@router.websocket("/api/v1/ws")
async def stream(ws: WebSocket) -> None:
    """Live ticks and forming bars; see the module docstring for the protocol."""
    hub: StreamHub | None = getattr(ws.app.state, "hub", None)
    services = getattr(ws.app.state, "services", None)
    if hub is None or services is None:
        await ws.accept()
        await ws.send_text(
            _dumps(
                {
                    "type": "error",
                    "error": {
                        "code": "source_unavailable",
                        "message": "the gateway is not started",
                        "details": {},
                    },
                }
            )
        )
        await ws.close(code=CLOSE_BUSY)
        return
    await _Connection(ws, hub, services, services.source.name).run()


@router.websocket("/ws/realtime")
async def realtime_compat(ws: WebSocket) -> None:
    """qmt-bridge style: send ``{"stocks": [...], "period": "tick"}``; receive what qmt-bridge 2.1.3 sends,
    ``{code: [xtquant tick or bar dict]}`` per code and push (encoding: ``api/qmt_bridge/realtime.py``).
    Each such message replaces the subscription; a malformed one gets ``{"type": "error", "code",
    "message"}`` and changes nothing. Status events are not sent: qmt-bridge sends none, and its handlers
    read every message as quotes."""
    hub: StreamHub | None = getattr(ws.app.state, "hub", None)
    services = getattr(ws.app.state, "services", None)
    await ws.accept()
    if hub is None or services is None:
        await ws.close(code=CLOSE_BUSY)
        return
    allowed, key = await authorize_websocket(ws)
    if not allowed:
        return
    metrics = getattr(ws.app.state, "metrics", None)
    if metrics is not None:
        metrics.ws_connections.labels("/ws/realtime").inc()
    try:
        client = hub.connect()
    except HubError as e:
        with contextlib.suppress(Exception):
            await ws.send_text(_dumps({"type": "error", "code": e.code, "message": e.message}))
            await ws.close(code=CLOSE_BUSY, reason=e.message)
        return
    conn = _RealtimeConnection(ws, hub, services, client, key)
    try:
        await serve_socket(ws, conn.handle, conn.send_quotes(), client.client_id)
    except (WebSocketDisconnect, RuntimeError, ConnectionError):
        pass
    finally:
        await hub.disconnect(client)


class _RealtimeConnection:
    """One ``/ws/realtime`` client: every message is a subscription request; quotes go out as they come."""

    def __init__(self, ws: WebSocket, hub: StreamHub, services: Any, client: ClientState, key: Any) -> None:
        self.ws = ws
        self.hub = hub
        self.services = services
        self.client = client
        self.key = key
        self.period = TICK
        self.codes: list[str] = []

    async def _error(self, code: str, message: str, **extra: Any) -> None:
        await self.ws.send_text(_dumps({"type": "error", "code": code, "message": message, **extra}))

    async def handle(self, text: str | None) -> None:
        msg = _json_object(text)
        if msg is None:
            await self._error(
                "bad_request", 'send a JSON object: {"stocks": ["600000.SH"], "period": "tick"}'
            )
            return
        try:
            await self._subscribe(msg)
        except HubError as e:
            await self._error(e.code, e.message, details=e.details)
        except QmtgateError as e:
            await self._error(e.code, e.message, details=getattr(e, "details", None) or {})
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            raise
        except Exception:  # a message must never end the connection
            logger.exception("realtime message handling failed")
            await self._error("internal_error", "the gateway could not handle this message")

    async def _subscribe(self, msg: dict[str, Any]) -> None:
        stocks = msg.get("stocks")
        stocks = [] if stocks is None else stocks
        period = msg.get("period", TICK)
        if not isinstance(stocks, list) or not all(isinstance(s, str) for s in stocks):
            await self._error("bad_request", "stocks must be a list of code strings")
            return
        if not isinstance(period, str) or period not in (TICK, *BAR_PERIODS):
            await self._error(
                "invalid_period", f"unsupported period {period!r}", allowed=[TICK, *BAR_PERIODS]
            )
            return
        limit = self.hub.config.max_codes_per_client
        if len(stocks) > limit:
            await self._error(
                "too_many_codes",
                f"a connection may subscribe at most {limit} codes",
                details={"limit": limit, "requested": len(stocks)},
            )
            return
        codes: list[str] = []
        bad: list[str] = []
        for s in stocks:
            try:
                codes.append(normalize_code(s))
            except QmtgateError:
                bad.append(s)
        unknown = await _unknown_codes(self.services, codes) if codes else []
        codes = list(dict.fromkeys(c for c in codes if c not in set(unknown)))
        quota = stream_quota_error(self.key, 0, set(), codes)
        if quota is not None:
            await self._error(quota["code"], quota["message"], codes=[], details=quota["details"])
            return
        if bad or unknown or not codes:
            await self._error("invalid_code", "unknown or invalid codes", codes=bad + unknown)
        await self.hub.unsubscribe(self.client, self.period, self.codes, [])
        self.period, self.codes = period, codes
        if codes:
            await self.hub.subscribe(self.client, period, codes, [])

    async def send_quotes(self) -> None:
        """Drain the outbox as qmt-bridge quote messages; status events are dropped (see the route)."""
        box = self.client.outbox
        while True:
            frame = await box.get()
            if frame is None:
                await _close_ended(self.ws, box.closed_reason)
                return
            if isinstance(frame, dict):  # status events: qmt-bridge has none, its handlers read quotes
                continue
            for text in qmt_bridge_messages(frame, self.period, self.services.quotes):  # {code: [item]}
                await self.ws.send_text(text)
            box.stats.frames_sent += 1
            box.stats.updates_sent += len(frame.updates)


# -- shared by both routes ---------------------------------------------------------------------------------

BAD_MESSAGE = "messages must be JSON objects sent as text frames"


def _json_object(text: str | None) -> dict[str, Any] | None:
    """The message as a JSON object, or None (a binary frame, not JSON, or JSON that is not an object)."""
    if text is None:
        return None
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return msg if isinstance(msg, dict) else None


def _bad_resume_point(msg: dict[str, Any]) -> tuple[str, str] | None:
    """(field, why) when ``since`` / ``epoch`` cannot name a resume point; None when they can or are
    absent. A malformed one is refused rather than taken as "start over", which would hide the bug."""
    since, epoch = msg.get("since"), msg.get("epoch")
    if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
        return "since", f"since must be a seq (an integer >= 0), not {since!r}"
    if epoch is not None and not isinstance(epoch, str):
        return "epoch", f"epoch must be the string the gateway sent, not {epoch!r}"
    return None


def _str_list(msg: dict[str, Any], name: str) -> list[str] | None:
    """``msg[name]`` as a list of strings ([] when absent or null); None when it is anything else."""
    value = msg.get(name)
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return value
    return None


async def _unknown_codes(services: Any, codes: list[str]) -> list[str]:
    try:
        await services.require_exists(codes)
    except QmtgateError as e:
        details = getattr(e, "details", {}) or {}
        unknown = details.get("codes") or details.get("unknown") or []
        if unknown:
            return list(unknown)
        raise
    return []


async def _read_messages(ws: WebSocket, handle: Callable[[str | None], Awaitable[None]]) -> None:
    """Hand every client message to ``handle`` (None for a binary frame) until the client leaves."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        await handle(message.get("text"))


async def serve_socket(
    ws: WebSocket,
    handle: Callable[[str | None], Awaitable[None]],
    sender: Coroutine[Any, Any, None],
    client_id: int,
) -> None:
    """Read the client and run its ``sender`` until either ends, then stop the other.

    The socket is read all the time, whatever the client subscribed to, so a closed connection (or the
    server's shutdown closing it) is seen at once, not at the next frame it is sent; and a sender that
    closes the socket (a client too slow, the hub stopping) ends the reading too.
    """
    tasks = (
        asyncio.create_task(sender, name=f"qmtgate-ws-send-{client_id}"),
        asyncio.create_task(_read_messages(ws, handle), name=f"qmtgate-ws-read-{client_id}"),
    )
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    for task in done:
        error = None if task.cancelled() else task.exception()
        if error is not None and not isinstance(error, (WebSocketDisconnect, RuntimeError, ConnectionError)):
            logger.error("stream connection failed", exc_info=error)
