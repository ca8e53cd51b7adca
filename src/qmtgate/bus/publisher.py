"""The NATS publisher: a hub client (like a WebSocket) whose frames go to a NATS bus.

Three tasks, none of which can hold the hub up:

* ``_drain`` reads the publisher's hub outbox (bounded, conflated by the hub if this task ever falls
  behind, like any client), encodes each frame (``bus.encode``: JSON per update, Arrow per market) in
  slices with a yield between them, and appends the messages to the bounded :class:`OutBuffer`;
* ``_run`` owns the connection: connects with exponential backoff (``reconnect_delay`` doubling up to
  ``max_reconnect_delay``, with jitter), publishes the buffer's head in chunks and removes a chunk only
  when a flush round trip confirmed the server has it; when the connection dies, the unconfirmed rest is
  sent again after the next connect (at least once; consumers drop repeats by seq);
* ``_heartbeat`` publishes ``{"type": "heartbeat", ...}`` on the status subject while connected.

When the bus comes back after an outage, a ``{"type": "bus", "event": "reconnected"}`` status message
reports how long it was away and what the buffer dropped meanwhile (also in :attr:`stats` and /metrics).

Active/standby (``standby_of``): a standby gateway listens to the active one's heartbeats and publishes
data only while they are missing for ``standby_timeout`` seconds (docs/nats.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from qmtgate.bus.buffer import OutBuffer
from qmtgate.bus.encode import Encoder, Message
from qmtgate.config import NatsSettings
from qmtgate.hub.clients import Frame
from qmtgate.hub.stream import TICK, StreamHub
from qmtgate.natswire import all_subject, check_gateway_id, status_subject, stream_name

logger = logging.getLogger(__name__)

#: updates encoded between two yields to the loop (the WebSocket senders run in between)
ENCODE_SLICE = 1000
#: messages / bytes written between two flush confirmations
CHUNK_MESSAGES = 20_000
CHUNK_BYTES = 8 * 1024 * 1024
#: messages written between two yields to the loop while sending a chunk
SEND_SLICE = 2000
#: chunks written and waiting for their confirmation at once
MAX_INFLIGHT = 2


@dataclass
class PublisherStats:
    frames: int = 0
    published_messages: int = 0
    published_updates: int = 0
    resent_messages: int = 0
    dropped_messages: int = 0
    dropped_updates: int = 0
    too_large_messages: int = 0
    conflated_updates: int = 0
    standby_skipped_updates: int = 0
    connects: int = 0
    disconnects: int = 0
    connected: bool = False
    active: bool = True
    buffered_messages: int = 0
    buffered_bytes: int = 0
    buffer_high_water: int = 0
    #: CPU seconds the publisher's own work took on the loop thread (encoding, writing, confirming)
    cpu_seconds: float = 0.0
    last_error: str | None = None


def default_gateway_id() -> str:
    """The host name as one subject token (what ``gateway_id = ""`` means)."""
    name = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in socket.gethostname())
    return name.strip("-")[:64] or "qmtgate"


def connect_options(settings: NatsSettings, name: str) -> dict[str, Any]:
    """nats-py ``connect`` keyword arguments for credentials, nkey, user/password, token and TLS."""
    servers = [u.strip() for u in (settings.url or "").split(",") if u.strip()]
    opts: dict[str, Any] = {"servers": servers, "name": name}
    if settings.creds_file is not None:
        opts["user_credentials"] = str(settings.creds_file)
    if settings.nkey_seed_file is not None:
        opts["nkeys_seed"] = str(settings.nkey_seed_file)
    if settings.user is not None:
        opts["user"] = settings.user
        opts["password"] = settings.password or ""
    if settings.token is not None:
        opts["token"] = settings.token
    if settings.tls_ca_file or settings.tls_cert_file or any(s.startswith("tls://") for s in servers):
        context = ssl.create_default_context(
            cafile=str(settings.tls_ca_file) if settings.tls_ca_file else None
        )
        if settings.tls_cert_file is not None:
            context.load_cert_chain(
                str(settings.tls_cert_file), str(settings.tls_key_file) if settings.tls_key_file else None
            )
        opts["tls"] = context
    return opts


class NatsPublisher:
    """Publish ``hub``'s ticks (and configured bars) to NATS; ``start()`` / ``stop()`` on the hub's loop."""

    def __init__(self, hub: StreamHub, settings: NatsSettings) -> None:
        if not settings.url:
            raise ValueError("nats.url is not set")
        self.hub = hub
        self.settings = settings
        self.gateway_id = check_gateway_id(settings.gateway_id or default_gateway_id())
        self.encoder = Encoder(
            self.gateway_id,
            ticks=settings.ticks,
            batches=settings.batches,
            compression=settings.batch_compression,
        )
        self.buffer = OutBuffer(settings.buffer_messages, settings.buffer_bytes)
        self.stats = PublisherStats()
        self.status_subject = status_subject(self.gateway_id)
        self._client: Any = None
        self._nc: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._more = asyncio.Event()
        self._lost = asyncio.Event()  # the current connection closed
        self._wake: asyncio.Future[None] | None = None  # resolved to wake the idle sender (_idle)
        self._stopping = False
        self._down_since: float | None = None
        self._sent_ids = 0  # the highest message id ever written (one written again is a resend)
        self._active_seen: float | None = None  # monotonic time of the active gateway's last heartbeat
        self._standby_since = time.monotonic()
        self._encoding = 0  # 1 while a frame is being encoded
        self.connected = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        self._client = self.hub.connect()
        seeds = await self.hub.subscribe(self._client, TICK, [], list(s.markets))
        for period in s.bar_periods:
            seeds += await self.hub.subscribe(self._client, period, list(s.bar_codes), [])
        if seeds:
            by_channel: dict[str, list[Any]] = {}
            for u in seeds:
                by_channel.setdefault(u.channel, []).append(u)
            for channel, ups in by_channel.items():  # each code's current value, as per-update messages
                if channel != TICK or self.encoder.ticks:
                    self._put(self.encoder.updates(channel, ups, self.hub.epoch, time.time() * 1000.0))
        self._tasks = [
            asyncio.create_task(self._drain(), name="qmtgate-nats-drain"),
            asyncio.create_task(self._run(), name="qmtgate-nats-connection"),
            asyncio.create_task(self._heartbeat(), name="qmtgate-nats-heartbeat"),
        ]
        logger.info("publishing to NATS %s as gateway %r", s.url, self.gateway_id)

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Stop: what is buffered gets ``drain_timeout`` seconds to reach the bus, then the connection closes."""
        drain = self._tasks[0] if self._tasks else None
        deadline = time.monotonic() + drain_timeout
        while (
            self._nc is not None
            and time.monotonic() < deadline
            and (len(self._client.outbox) or len(self.buffer))
        ):
            await asyncio.sleep(0.02)
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await drain
        while len(self.buffer) and self._nc is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        self._stopping = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.publish(
                    self.status_subject, self._status_payload({"type": "bus", "event": "stopped"})
                )
                await nc.flush(timeout=1)
            with contextlib.suppress(Exception):
                await nc.close()
        if self._client is not None:
            await self.hub.disconnect(self._client)
            self._client = None

    def backlog(self) -> int:
        """Frames not yet encoded plus messages the bus has not confirmed (0: everything is out)."""
        outbox = len(self._client.outbox) if self._client is not None else 0
        return outbox + self._encoding + len(self.buffer)

    def info(self) -> dict[str, Any]:
        self._sync_stats()
        return {"gateway_id": self.gateway_id, **asdict(self.stats)}

    def _sync_stats(self) -> None:
        st = self.stats
        st.dropped_messages = self.buffer.dropped.messages
        st.dropped_updates = self.buffer.dropped.updates
        st.buffered_messages = len(self.buffer)
        st.buffered_bytes = self.buffer.nbytes
        st.buffer_high_water = self.buffer.high_water
        st.active = self._is_active()

    # -- hub side --------------------------------------------------------------------------------------

    def _put(self, messages: list[Message]) -> None:
        put = self.buffer.put
        for m in messages:
            put(m)
        if messages:
            self._signal()

    def _signal(self) -> None:
        """Wake the sender: more to send, or the connection is gone."""
        self._more.set()
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _is_active(self) -> bool:
        if self.settings.standby_of is None:
            return True
        now = time.monotonic()
        seen = self._active_seen if self._active_seen is not None else self._standby_since
        return now - seen > self.settings.standby_timeout

    async def _drain(self) -> None:
        while True:
            client = self._client
            frame = await client.outbox.get()
            if frame is None:  # the hub dropped this client (behind for too long): join again
                logger.error(
                    "the hub closed the NATS publisher's stream (%s); rejoining", client.outbox.closed_reason
                )
                await self.hub.disconnect(client)
                self._client = self.hub.connect()
                await self.hub.subscribe(self._client, TICK, [], list(self.settings.markets))
                for period in self.settings.bar_periods:
                    await self.hub.subscribe(self._client, period, list(self.settings.bar_codes), [])
                continue
            if isinstance(frame, dict):  # a control message (source status): in order with the data
                self._put([Message(self.status_subject, self._status_payload(frame), "status")])
                continue
            if not isinstance(frame, Frame) or not frame.updates:
                continue
            self.stats.frames += 1
            if frame.conflated:
                self.stats.conflated_updates += max(frame.seq_to - frame.seq_from + 1 - len(frame.updates), 0)
            if not self._is_active():
                self.stats.standby_skipped_updates += len(frame.updates)
                continue
            self._encoding = 1
            try:
                await self._encode(frame)
            finally:
                self._encoding = 0

    async def _encode(self, frame: Frame) -> None:
        """The frame's messages into the buffer, a slice at a time (the loop serves others between)."""
        epoch = self.hub.epoch
        ts = frame.ts_pub * 1000.0
        enc = self.encoder
        clock = time.thread_time
        t0 = clock()
        try:
            if frame.channel != TICK:
                self._put(enc.updates(frame.channel, frame.updates, epoch, ts, frame.conflated))
                return
            if enc.batches:
                self._put(enc.market_batches(frame.updates, epoch, ts, frame.conflated))
            if enc.ticks:
                updates = frame.updates
                for i in range(0, len(updates), ENCODE_SLICE):
                    self.stats.cpu_seconds += clock() - t0
                    await asyncio.sleep(0)
                    t0 = clock()
                    self._put(enc.updates(TICK, updates[i : i + ENCODE_SLICE], epoch, ts, frame.conflated))
        finally:
            self.stats.cpu_seconds += clock() - t0

    def _status_payload(self, body: dict[str, Any]) -> bytes:
        return orjson.dumps(
            {"gw": self.gateway_id, "epoch": self.hub.epoch, "ts": int(time.time() * 1000), **body}
        )

    # -- bus side --------------------------------------------------------------------------------------

    async def _connect(self) -> Any:
        import nats

        loop = asyncio.get_running_loop()
        lost = asyncio.Event()

        async def on_closed() -> None:
            lost.set()
            loop.call_soon(self._signal)  # wake the sender

        async def on_error(e: Exception) -> None:
            self.stats.last_error = f"{type(e).__name__}: {e}"
            logger.debug("NATS error: %s", e)

        nc = await nats.connect(
            **connect_options(self.settings, f"qmtgate-{self.gateway_id}"),
            allow_reconnect=False,  # reconnects are ours: backoff, resend, the drop report
            connect_timeout=2,
            ping_interval=5,
            max_outstanding_pings=2,
            pending_size=0,  # nothing is queued inside nats-py while disconnected: the buffer is ours
            closed_cb=on_closed,
            disconnected_cb=on_closed,
            error_cb=on_error,
        )
        self._lost = lost
        return nc

    async def _run(self) -> None:
        delay = self.settings.reconnect_delay
        logged = False
        while not self._stopping:
            try:
                nc = await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.stats.last_error = f"{type(e).__name__}: {e}"
                if not logged:
                    logger.warning("NATS %s unreachable (%s); retrying with backoff", self.settings.url, e)
                    logged = True
                await asyncio.sleep(delay * (1 + 0.2 * random.random()))
                delay = min(delay * 2, self.settings.max_reconnect_delay)
                continue
            delay, logged = self.settings.reconnect_delay, False
            self._nc = nc
            self.stats.connects += 1
            self.stats.connected = True
            try:
                await self._on_connected(nc)
                self.connected.set()
                await self._send_loop(nc)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.stats.last_error = f"{type(e).__name__}: {e}"
                logger.warning("NATS connection lost (%s); %d messages buffered", e, len(self.buffer))
            finally:
                self.connected.clear()
                self.stats.connected = False
                self._nc = None
                if not self._stopping:
                    self.stats.disconnects += 1
                    self._down_since = time.monotonic()
                    with contextlib.suppress(Exception):
                        await nc.close()

    async def _on_connected(self, nc: Any) -> None:
        """Say what happened while away (before the backlog), set up JetStream and the standby watch."""
        dropped = self.buffer.take_unreported()
        event = "reconnected" if self._down_since is not None else "started"
        body: dict[str, Any] = {
            "type": "bus",
            "event": event,
            "dropped_messages": dropped.messages,
            "dropped_updates": dropped.updates,
            "buffered_messages": len(self.buffer),
        }
        if self._down_since is not None:
            body["down_seconds"] = round(time.monotonic() - self._down_since, 3)
            logger.info(
                "NATS back after %.1f s: %d messages buffered, %d dropped (%d updates)",
                body["down_seconds"],
                len(self.buffer),
                dropped.messages,
                dropped.updates,
            )
        self._down_since = None
        if self.settings.jetstream:  # first: the stream keeps the report below
            await self._ensure_stream(nc)
        await nc.publish(self.status_subject, self._status_payload(body))
        if self.settings.standby_of is not None:

            async def seen(msg: Any) -> None:
                now = time.monotonic()
                try:
                    body = orjson.loads(msg.data)
                except orjson.JSONDecodeError:
                    body = {}
                if body.get("type") == "bus" and body.get("event") == "stopped":  # a clean hand-over
                    self._active_seen = now - self.settings.standby_timeout - 1.0
                else:
                    self._active_seen = now

            await nc.subscribe(status_subject(self.settings.standby_of), cb=seen)

    async def _ensure_stream(self, nc: Any) -> None:
        """Create (or update) the stream that keeps this gateway's subjects, with its retention."""
        from nats.js.api import RetentionPolicy, StorageType, StreamConfig

        s = self.settings
        config = StreamConfig(
            name=stream_name(self.gateway_id),
            subjects=[all_subject(self.gateway_id)],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=s.stream_max_age_seconds,
            max_bytes=s.stream_max_bytes,
            num_replicas=s.stream_replicas,
            duplicate_window=min(120.0, s.stream_max_age_seconds),
        )
        js = nc.jetstream()
        try:
            await js.add_stream(config)
        except Exception as e:  # exists with other limits: bring them in line
            try:
                await js.update_stream(config)
            except Exception as e2:
                logger.warning("JetStream stream %s not set up: %s / %s", config.name, e, e2)

    async def _send_loop(self, nc: Any) -> None:
        """Write the buffer in chunks and remove each chunk once confirmed; until the connection is lost.

        Up to ``MAX_INFLIGHT`` chunks wait for their confirmation while the next is written, so the round
        trips (and, on a busy loop, the loop iterations they wait for) do not bound the throughput."""
        lost = self._lost
        buffer = self.buffer
        stats = self.stats
        inflight: deque[tuple[int, asyncio.Future[None], int, int]] = (
            deque()
        )  # (last mid, confirm, msgs, updates)
        sent_to = 0  # the highest message id written on this connection
        try:
            while not lost.is_set():
                while inflight and inflight[0][1].done():
                    mid, done, n_msgs, n_updates = inflight.popleft()
                    done.result()  # a timeout: the connection is not healthy, start over
                    buffer.confirm(mid)
                    stats.published_messages += n_msgs
                    stats.published_updates += n_updates
                self._more.clear()
                chunk = (
                    buffer.after(sent_to, CHUNK_MESSAGES, CHUNK_BYTES) if len(inflight) < MAX_INFLIGHT else []
                )
                if not chunk:
                    await self._idle(lost, inflight[0][1] if inflight else None)
                    continue
                t0 = time.thread_time()
                written_before = self._sent_ids
                self._sent_ids = max(self._sent_ids, chunk[-1].mid)
                stats.resent_messages += sum(1 for m in chunk if m.mid <= written_before)
                for i, m in enumerate(chunk):
                    if i and not i % SEND_SLICE:
                        stats.cpu_seconds += time.thread_time() - t0
                        await asyncio.sleep(0)
                        t0 = time.thread_time()
                        if lost.is_set():
                            return  # what was written stays unconfirmed: sent again after the reconnect
                    try:
                        await nc.publish(m.subject, m.payload)
                    except Exception as e:
                        from nats.errors import MaxPayloadError

                        if not isinstance(e, MaxPayloadError):
                            raise
                        stats.too_large_messages += 1  # its updates are in the tick messages too
                        logger.warning(
                            "message of %d bytes on %s exceeds the server's max_payload",
                            len(m.payload),
                            m.subject,
                        )
                stats.cpu_seconds += time.thread_time() - t0
                sent_to = chunk[-1].mid
                updates = sum(m.updates for m in chunk if m.kind != "batch")
                inflight.append((sent_to, asyncio.ensure_future(self._confirm(nc)), len(chunk), updates))
        finally:
            for _mid, fut, _n, _u in inflight:
                fut.cancel()
            for _mid, fut, _n, _u in inflight:
                with contextlib.suppress(BaseException):
                    await fut

    async def _idle(self, lost: asyncio.Event, confirm: asyncio.Future[None] | None) -> None:
        """Wait until there is more to send, the connection is lost, ``confirm`` (the oldest chunk's
        confirmation) is in, or a second has passed. Each of those resolves one future, so the sender
        runs on the loop pass right after the wake-up: waiting on the events through ``asyncio.wait``
        took three passes, each behind everything else ready on a burst (the WebSocket senders)."""
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[None] = loop.create_future()

        def poke(_: object = None) -> None:
            if not wake.done():
                wake.set_result(None)

        self._wake = wake
        timer = loop.call_later(1.0, poke)
        if confirm is not None:
            confirm.add_done_callback(poke)
        try:
            if not (lost.is_set() or self._more.is_set() or (confirm is not None and confirm.done())):
                await wake
        finally:
            self._wake = None
            timer.cancel()
            if confirm is not None:
                confirm.remove_done_callback(poke)

    async def _confirm(self, nc: Any) -> None:
        """Return once the server has everything written so far.

        Two PING/PONG round trips: nats-py writes a flush's PING straight to the socket while the PUBs of
        the chunk may still wait in its pending list for the flusher task, so the first PONG can come back
        before the server saw them. The first flush gives the flusher its turn (the PUBs go out behind the
        first PING); the second PING follows them, so its PONG proves the server has the chunk."""
        timeout = self.settings.flush_timeout
        await nc.flush(timeout=timeout)
        await nc.flush(timeout=timeout)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            nc = self._nc
            if nc is None or not self.connected.is_set():
                continue
            self._sync_stats()
            body = {
                "type": "heartbeat",
                "seq": self.hub.seq,
                "active": self.stats.active,
                "buffered_messages": self.stats.buffered_messages,
                "dropped_messages": self.stats.dropped_messages,
            }
            with contextlib.suppress(Exception):
                await nc.publish(self.status_subject, self._status_payload(body))
