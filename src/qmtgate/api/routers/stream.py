"""WebSocket streaming: ``/api/v1/ws`` (qmtgate protocol) and ``/ws/realtime`` (qmt-bridge style).

Protocol (JSON text frames; every server message has a ``type``):

client -> server
    {"op": "subscribe", "period": "tick" | "1m" | "5m" | "15m" | "30m" | "1h" | "1d",
     "codes": [...], "markets": ["SH", "SZ", "BJ"], "sectors": [...], "id": any,
     "since": 1234, "epoch": "..."}          # since/epoch: resume after a reconnect
    {"op": "unsubscribe", "period": ..., "codes": [...], "markets": [...], "sectors": [...]}
    {"op": "resume", "since": 1234, "epoch": "..."}
    {"op": "ping", "t": any}
    {"op": "options", "encoding": "json" | "arrow",   # data frames as JSON text (default) or Arrow IPC
     "compression": "zstd" | "lz4" | "none"}          # Arrow buffers (default zstd)
server -> client
    {"type": "hello", "epoch", "seq", "source", "protocol": 1, "limits": {...}}
    {"type": "subscribed" | "unsubscribed", "id", "period", "codes", "markets", "errors": [...]}
    {"type": "data", "channel", "epoch", "seq_from", "seq_to", "conflated", "replay", "gw_ts",
     "items": [...]}                          # gw_ts: epoch ms the gateway got the burst from the source
    {"type": "resync", "reason": "new_epoch" | "out_of_window", "epoch"}  # followed by a snapshot
    {"type": "status", "source": {...}}       # source connected / disconnected
    {"type": "error", "error": {"code", "message", "details"}}
    {"type": "pong", "t"}
    {"type": "options", "encoding", "compression"}

With ``"encoding": "arrow"`` data frames are binary WebSocket messages holding an Arrow IPC stream (zstd
buffers unless another ``compression`` was chosen) whose schema metadata ``qmtgate.frame`` has the header fields above; see ``api.stream_codec``.

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
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from qmtgate.api.stream_codec import ArrowCompression, WireEncoding, encode
from qmtgate.codes import normalize_code
from qmtgate.errors import QmtgateError
from qmtgate.hub.clients import Frame
from qmtgate.hub.stream import BAR_PERIODS, MARKETS, TICK, ClientState, HubError, StreamHub
from qmtgate.security.ws import authorize_websocket, held_markets, stream_quota_error

logger = logging.getLogger(__name__)
router = APIRouter(tags=["streaming"])

PROTOCOL = 1
CLOSE_TOO_SLOW = 4001
CLOSE_LIMIT = 1008
CLOSE_BUSY = 1013


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

    async def run(self) -> None:
        await self.ws.accept()
        allowed, self.key = await authorize_websocket(self.ws)
        if not allowed:
            return
        if self.metrics is not None:
            self.metrics.ws_connections.labels("/api/v1/ws").inc()
        try:
            self.client = self.hub.connect()
        except HubError as e:
            await self._send(
                {"type": "error", "error": {"code": e.code, "message": e.message, "details": e.details}}
            )
            await self.ws.close(code=CLOSE_BUSY, reason=e.message)
            return
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
                "limits": {
                    "max_codes": self.hub.config.max_codes_per_client,
                    "outbox_frames": self.hub.config.outbox_frames,
                    "max_lag_seconds": self.hub.config.max_lag_seconds,
                },
            }
        )
        sender = asyncio.create_task(self._sender(), name=f"qmtgate-ws-send-{self.client.client_id}")
        try:
            while True:
                text = await self.ws.receive_text()
                await self._handle(text)
        except WebSocketDisconnect:
            pass
        except RuntimeError:  # the socket was closed under us (e.g. by the sender)
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            await self.hub.disconnect(self.client)

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
                reason = box.closed_reason or "closed"
                code = CLOSE_TOO_SLOW if "too slow" in reason else 1000
                with contextlib.suppress(Exception):
                    await self.ws.close(code=code, reason=reason[:120])
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

    async def _handle(self, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self._error("bad_request", "messages must be JSON objects")
            return
        if not isinstance(msg, dict):
            await self._error("bad_request", "messages must be JSON objects")
            return
        op = msg.get("op")
        try:
            if op == "ping":
                await self._send({"type": "pong", "t": msg.get("t")})
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
                    {"ops": ["subscribe", "unsubscribe", "resume", "ping", "options"]},
                )
        except HubError as e:
            await self._error(e.code, e.message, e.details)
        except QmtgateError as e:
            await self._error(e.code, e.message, getattr(e, "details", {}) or {})

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

    async def _subscription(self, op: str, msg: dict[str, Any]) -> None:
        assert self.client is not None
        period = msg.get("period", TICK)
        if period not in (TICK, *BAR_PERIODS):
            await self._error(
                "invalid_period", f"unsupported stream period {period!r}", {"allowed": [TICK, *BAR_PERIODS]}
            )
            return
        raw_codes = msg.get("codes") or []
        markets = msg.get("markets") or []
        sectors = msg.get("sectors") or []
        if not all(isinstance(x, str) for x in [*raw_codes, *markets, *sectors]):
            await self._error("bad_request", "codes, markets and sectors must be lists of strings")
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
            self.hub.deliver(
                self.client, [Frame(period, seeds[0].seq, seeds[-1].seq, seeds, conflated=True, replay=True)]
            )

    async def _unknown(self, codes: list[str]) -> list[str]:
        try:
            await self.services.require_exists(codes)
        except QmtgateError as e:
            details = getattr(e, "details", {}) or {}
            unknown = details.get("codes") or details.get("unknown") or []
            if unknown:
                return list(unknown)
            raise
        return []

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
    """qmt-bridge style: send ``{"stocks": [...], "period": "tick"}``; receive ``{"type": "quote",
    "data": {code: tick}}`` per burst (the normalized tick rows, keyed by code)."""
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
    client = hub.connect()
    try:
        msg = orjson.loads(await ws.receive_text())
        stocks = msg.get("stocks") or []
        period = msg.get("period", TICK)
        codes, bad = [], []
        for s in stocks if isinstance(stocks, list) else []:
            try:
                codes.append(normalize_code(str(s)))
            except QmtgateError:
                bad.append(s)
        conn = _Connection(ws, hub, services, services.source.name)
        unknown = await conn._unknown(codes) if codes else []
        codes = [c for c in codes if c not in set(unknown)]
        if bad or unknown or not codes:
            await ws.send_text(
                _dumps({"type": "error", "message": "unknown or invalid codes", "codes": bad + unknown})
            )
        if period not in (TICK, *BAR_PERIODS):
            await ws.send_text(_dumps({"type": "error", "message": f"unsupported period {period!r}"}))
            return
        quota = stream_quota_error(key, 0, set(), codes)
        if quota is not None:
            await ws.send_text(_dumps({"type": "error", "message": quota["message"], "codes": []}))
            return
        await hub.subscribe(client, period, codes, [])
        while True:
            frame = await client.outbox.get()
            if frame is None:
                await ws.close(code=CLOSE_TOO_SLOW, reason=(client.outbox.closed_reason or "closed")[:120])
                return
            await ws.send_text(
                _dumps({"type": "quote", "period": period, "data": {u.code: u.row for u in frame.updates}})
            )
    except (WebSocketDisconnect, RuntimeError, orjson.JSONDecodeError):
        pass
    finally:
        await hub.disconnect(client)
