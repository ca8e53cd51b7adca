"""The streaming core: one WebSocket to ``/api/v1/ws`` that survives disconnects and gateway restarts.

A :class:`Stream` remembers what was subscribed (the intent), connects, sends the subscriptions, and
yields what arrives: :class:`Batch` for data frames and :class:`Event` for everything the user must know
about the feed. Nothing is hidden:

* **reconnect**: on any disconnect it emits ``Event("disconnected")``, waits with exponential backoff
  (``reconnect_delay`` .. ``max_reconnect_delay`` seconds) and connects again;
* **resume**: it re-sends every subscription with ``since`` (the last seq seen) and ``epoch``; the
  gateway replays what was missed (``Batch.replay``) or, after a restart (new epoch) or outside its
  replay window, answers ``resync`` (``Event("resync")``) followed by a fresh snapshot
  (``Batch.snapshot``);
* **gaps**: every data frame names the seq of the frame the gateway sent this client before it on its
  channel (``prev_seq``); when that is later than the last seq the client holds, frames went missing:
  ``Batch.gap`` (seqs skipped) and ``Event("gap")``. This holds for any interest (a market, a few codes,
  bars), not only for the whole market; conflated frames say so instead (``Batch.conflated``);
* **staleness**: with ``stale_after`` set, no data for that long while connected emits ``Event("stale")``;
* **source status**: the gateway's ``status`` messages (QMT connected or not) become ``Event("status")``.

Encodings: by default (``encoding="auto"``) columnar JSON frames when the gateway offers them (one array
per field: a whole-market frame parses ~5x faster than one object per row; ``Batch.items`` is made only
when read), else JSON row frames (``encoding="json"`` asks for those); ``encoding="arrow"`` asks for Arrow
IPC frames (``compression`` zstd, lz4 or none), which a whole-market consumer decodes ~10x faster still:
:meth:`Batch.frame` is then ``Table.to_pandas()``.

Backpressure: the queue between the socket reader and the consumer is bounded; a consumer that falls
behind stops the reader, the gateway's outbox then conflates for this client and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import repeat
from typing import Any, Literal, TypeVar

import orjson
import pandas as pd
import pyarrow as pa
import websockets

from qmtgate.client.errors import ConnectionFailed, GatewayError, QmtgateClientError, error_from_body
from qmtgate.vocab import MARKETS, local_iso

logger = logging.getLogger(__name__)


#: WebSocket close codes of a refused key (qmtgate.security.ws): retrying cannot help.
CLOSE_REFUSED = (4401, 4403)


class _Refused(Exception):
    """The gateway (or the TLS peer) refused this client for good: end the stream, say why once."""

    def __init__(self, error: QmtgateClientError, data: dict[str, Any]) -> None:
        super().__init__(str(error))
        self.error = error
        self.data = data


def _refusal_from_message(msg: dict[str, Any], close_code: int | None) -> _Refused:
    error = error_from_body(403 if close_code == 4403 else 401, msg)
    data = {
        "code": getattr(error, "code", "error"),
        "message": getattr(error, "message", str(error)),
        "details": getattr(error, "details", {}),
        "close_code": close_code,
        "final": True,
    }
    return _Refused(error, data)


FRAME_META_KEY = b"qmtgate.frame"  # the Arrow frame's header (api.stream_codec)
#: frames are decoded on the calling thread: for a < 2 MB frame Arrow's thread pool costs more than it
#: saves, most of all when several consumers share the CPU (api.stream_codec.READ_OPTIONS)
_READ_OPTIONS = pa.ipc.IpcReadOptions(use_threads=False)


@dataclass(frozen=True)
class Batch:
    """One data frame: all updates of one upstream burst for this connection.

    A JSON row frame arrives as ``rows``, a columnar JSON frame as ``columns`` and an Arrow frame as
    ``table``; ``items`` and :meth:`frame` give any of them in one form (the same fields and values;
    ``time`` is the Asia/Shanghai ISO text in ``items`` and a tz-aware timestamp in the Arrow table and
    its DataFrame)."""

    channel: str  # "tick" or a bar period ("1m", ...)
    epoch: str | None
    seq_from: int | None
    seq_to: int | None
    conflated: bool = False  # the gateway merged frames to the latest row per code (this client lagged)
    replay: bool = False  # missed updates replayed after a reconnect
    snapshot: bool = False  # current values sent after a resync (new epoch / outside the replay window)
    gap: int = 0  # seqs skipped before this batch (0: nothing missed); exact for a whole-market stream
    rows: list[dict[str, Any]] | None = None  # a JSON row frame's items
    table: pa.Table | None = None  # an Arrow frame's columns (``seq`` first)
    #: a columnar JSON frame's fields, one list per field in row order (``seq``, ``code``, ``ts``,
    #: ``time``, ...; a book column is one list of levels per row), built from the frame when first read
    columnar: dict[str, Any] | None = field(default=None, repr=False)

    @cached_property
    def columns(self) -> dict[str, list[Any]] | None:
        """A columnar frame's fields as equal-length lists (None for the other encodings)."""
        return None if self.columnar is None else _unflatten(self.columnar)

    @cached_property
    def items(self) -> list[dict[str, Any]]:
        """The updates as dicts (made from the columns or the Arrow table on first read)."""
        if self.rows is not None:
            return self.rows
        columns = self.columns
        if columns is not None:  # map() at C speed: ~2x cheaper than a comprehension over 5,000 rows
            return list(map(dict, map(zip, repeat(tuple(columns)), zip(*columns.values(), strict=True))))
        if self.table is None:
            return []
        table = self.table
        if "time" not in table.column_names:
            return table.to_pylist()
        times = local_iso(table.column("ts").to_numpy(zero_copy_only=False)).tolist()
        rows = table.drop_columns(["time"]).to_pylist()
        for row, text in zip(rows, times, strict=True):
            row["time"] = text
        return rows

    def __len__(self) -> int:
        if self.table is not None:
            return self.table.num_rows
        if self.columnar is not None:
            return int(self.columnar["n"])
        return len(self.rows or [])

    def codes(self) -> list[str]:
        if self.table is not None:
            return self.table.column("code").to_pylist()
        if self.columnar is not None:
            return list(self.columnar["columns"].get("code", []))
        return [item["code"] for item in self.items]

    def frame(self) -> pd.DataFrame:
        """The items as a DataFrame (normalized units: volume in shares, ``ts`` epoch ms UTC)."""
        if self.table is not None:
            return self.table.to_pandas()
        if self.columns is not None:
            return pd.DataFrame(self.columns)
        return pd.DataFrame.from_records(self.items)


def _unflatten(frame: dict[str, Any]) -> dict[str, list[Any]]:
    """A columnar frame's ``columns`` as one list per field, a row's book levels as one list, and
    ``time`` (left off the wire) derived from ``ts`` after it, as in a row frame."""
    depth: dict[str, int] = frame.get("depth") or {}
    n = int(frame["n"])
    out: dict[str, list[Any]] = {}
    for name, values in frame["columns"].items():
        d = depth.get(name)
        if d is None:
            out[name] = values
        else:  # row i's levels: values[d*i : d*i + d]
            out[name] = [values[i : i + d] for i in range(0, n * d, d)]
        if name == "ts":
            out["time"] = _local_times(values)
    return out


def _local_times(ts: list[Any]) -> list[Any]:
    """``local_iso`` of each ts, converted once per distinct value (a burst's ticks share few)."""
    distinct = list(dict.fromkeys(ts))
    texts = dict(zip(distinct, local_iso(distinct).tolist(), strict=True))
    return list(map(texts.__getitem__, ts))


@dataclass(frozen=True)
class Event:
    """Something about the feed rather than data: connected, disconnected, subscribed, resync, gap,
    stale, status, error, closed."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class _Intent:
    period: str
    codes: tuple[str, ...] = ()
    markets: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()

    def message(self, op: str) -> dict[str, Any]:
        msg: dict[str, Any] = {"op": op, "period": self.period}
        if self.codes:
            msg["codes"] = list(self.codes)
        if self.markets:
            msg["markets"] = list(self.markets)
        if self.sectors:
            msg["sectors"] = list(self.sectors)
        return msg


def split_targets(targets: str | Sequence[str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``["SH", "600000.SH"]`` -> (codes, markets): the tokens SH/SZ/BJ mean whole markets."""
    if targets is None:
        return (), ()
    items = [targets] if isinstance(targets, str) else list(targets)
    return (
        tuple(t for t in items if t.upper() not in MARKETS),
        tuple(t.upper() for t in items if t.upper() in MARKETS),
    )


_S = TypeVar("_S", bound="_StreamAPI")


class _StreamAPI:
    """What every stream transport offers its user (the WebSocket's :class:`Stream`, NATS's
    ``NatsStream``): ``async with``, ``async for`` until the ``closed`` event, and :meth:`next`. A
    transport provides :meth:`start`, :meth:`close` and :meth:`_get` (the next item, waiting for it)."""

    def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def _get(self) -> Batch | Event:
        raise NotImplementedError

    async def __aenter__(self: _S) -> _S:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Batch | Event]:
        self.start()
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Batch | Event]:
        while True:
            item = await self._get()
            yield item
            if isinstance(item, Event) and item.kind == "closed":
                return

    async def next(self, timeout: float | None = None) -> Batch | Event:
        """The next batch or event (``asyncio.TimeoutError`` after ``timeout`` seconds)."""
        self.start()
        return await asyncio.wait_for(self._get(), timeout)


class Stream(_StreamAPI):
    """A resilient subscription stream; iterate it with ``async for item in stream`` (Batch | Event).

    Create it through :meth:`qmtgate.client.AsyncClient.stream`. It starts connecting on first use
    (iteration, :meth:`start` or ``async with``) and runs until :meth:`close`.
    """

    def __init__(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 5.0,
        stale_after: float | None = None,
        queue_size: int = 256,
        open_timeout: float = 10.0,
        encoding: Literal["auto", "json", "columns", "arrow"] = "auto",
        compression: Literal["zstd", "lz4", "none"] = "zstd",
    ) -> None:
        self.url = url
        #: wss:// only: the pinned/CA context (None: websockets' default, the system CAs)
        self._ssl = ssl_context
        self._encoding = encoding
        self._compression = compression
        self._headers = dict(headers or {})
        self._delay0 = reconnect_delay
        self._delay_max = max_reconnect_delay
        self._stale_after = stale_after
        self._open_timeout = open_timeout
        self._intents: list[_Intent] = []
        self._queue: asyncio.Queue[Batch | Event] = asyncio.Queue(queue_size)
        self._ws: Any = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: the last seq and epoch seen: what a reconnect resumes from
        self.epoch: str | None = None
        self.last_seq: int | None = None
        #: per channel, the highest seq held: what a frame's ``prev_seq`` is checked against
        self._held: dict[str, int] = {}
        self.connected = asyncio.Event()
        #: set when the gateway refused this client for good (key without the stream scope, unknown key,
        #: a certificate that is not the pinned one): the stream has ended, this says why
        self.refused: QmtgateClientError | None = None
        self._settled = asyncio.Event()  # connected once, or refused
        self.reconnects = 0
        self._resynced = False

    # -- intent ------------------------------------------------------------------------------------------

    async def subscribe(
        self,
        targets: str | Sequence[str] | None = None,
        period: str = "tick",
        *,
        markets: Sequence[str] = (),
        sectors: Sequence[str] = (),
    ) -> None:
        """Add a subscription (kept for every reconnect); sent now when connected."""
        codes, tokens = split_targets(targets)
        intent = _Intent(period, codes, tuple(dict.fromkeys([*tokens, *markets])), tuple(sectors))
        self._intents.append(intent)
        await self._send_intent(intent, "subscribe")
        self.start()

    async def unsubscribe(
        self, targets: str | Sequence[str] | None = None, period: str = "tick", *, markets: Sequence[str] = ()
    ) -> None:
        """Remove codes/markets of a period from the intent and from the live connection."""
        codes, tokens = split_targets(targets)
        gone = _Intent(period, codes, tuple(dict.fromkeys([*tokens, *markets])))
        kept: list[_Intent] = []
        for intent in self._intents:
            if intent.period != period:
                kept.append(intent)
                continue
            rest = _Intent(
                period,
                tuple(c for c in intent.codes if c not in gone.codes),
                tuple(m for m in intent.markets if m not in gone.markets),
                intent.sectors,
            )
            if rest.codes or rest.markets or rest.sectors:
                kept.append(rest)
        self._intents = kept
        await self._send_intent(gone, "unsubscribe")

    async def _send_intent(self, intent: _Intent, op: str) -> None:
        ws = self._ws
        if ws is None:
            return
        msg = intent.message(op)
        if op == "subscribe" and self.last_seq is not None and self.epoch is not None:
            msg.update(since=self.last_seq, epoch=self.epoch)
            # the replay brings everything of the interest after since, the rest was held before
            if self._held.get(intent.period, -1) < self.last_seq:
                self._held[intent.period] = self.last_seq
        with contextlib.suppress(Exception):  # a failed send shows up as a disconnect of the reader
            await ws.send(json.dumps(msg))

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"qmtgate-stream {self.url}"
            )

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    async def _get(self) -> Batch | Event:
        return await self._queue.get()

    async def wait_connected(self, timeout: float) -> bool:
        """Start, and wait up to ``timeout`` s for the first connection: True when connected, False when
        not yet (the stream keeps trying); raises the refusal (``Forbidden``, ``Unauthorized``,
        ``ConnectionFailed`` for a TLS verification failure) when the gateway refused this client."""
        self.start()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._settled.wait(), timeout)
        if self.refused is not None:
            raise self.refused
        return self.connected.is_set()

    # -- the connection loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._delay0
        try:
            while not self._closed:
                try:
                    async with websockets.connect(
                        self.url,
                        **({"ssl": self._ssl} if self._ssl is not None else {}),
                        additional_headers=self._headers,
                        open_timeout=self._open_timeout,
                        max_size=None,
                        compression=None,
                        ping_interval=10,
                        ping_timeout=20,
                    ) as ws:
                        self._ws = ws
                        delay = self._delay0
                        await self._session(ws)
                        reason = {"code": ws.close_code, "reason": ws.close_reason}
                except asyncio.CancelledError:
                    raise
                except _Refused as e:
                    await self._refuse(e)
                    break
                except ssl.SSLCertVerificationError as e:  # a wrong pin or an untrusted certificate
                    detail = getattr(e, "verify_message", None) or (e.args[0] if e.args else str(e))
                    message = f"TLS: {detail}"
                    await self._refuse(
                        _Refused(
                            ConnectionFailed(f"{self.url}: {message}"),
                            {"code": "tls_verify_failed", "message": message, "final": True},
                        )
                    )
                    break
                except Exception as e:  # refused, reset, handshake rejected, protocol error
                    reason = {"error": f"{type(e).__name__}: {e}"}
                    closed = getattr(e, "rcvd", None)  # websockets.ConnectionClosed: the server's close frame
                    if closed is not None and closed.code in CLOSE_REFUSED:  # e.g. the key was revoked
                        message = f"the gateway closed the stream: {closed.reason or closed.code}"
                        refused = {"error": {"code": closed.reason or "unauthorized", "message": message}}
                        await self._refuse(_refusal_from_message(refused, closed.code))
                        break
                    status = getattr(getattr(e, "response", None), "status_code", None)
                    if status in (401, 403):  # the handshake itself was refused: retrying cannot help
                        body = getattr(getattr(e, "response", None), "body", b"") or b""
                        try:
                            payload = orjson.loads(body)
                        except orjson.JSONDecodeError:
                            payload = None
                        error = error_from_body(status, payload)
                        code = error.code if isinstance(error, GatewayError) else "unauthorized"
                        data = {"code": code, "status": status, "message": error.message, "final": True}
                        await self._refuse(_Refused(error, {**data, **reason}))
                        break
                finally:
                    self._ws = None
                    was_connected = self.connected.is_set()
                    self.connected.clear()
                if self._closed:
                    break
                if was_connected:
                    await self._emit(Event("disconnected", reason))
                self.reconnects += 1
                await asyncio.sleep(delay * (1 + 0.2 * random.random()))
                delay = min(delay * 2, self._delay_max)
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(Event("closed"))

    async def _refuse(self, refused: _Refused) -> None:
        """End the stream for good: one ``error`` event with the reason (``final: True``), then ``closed``."""
        self.refused = refused.error
        self._closed = True
        self._settled.set()
        await self._emit(Event("error", refused.data))

    async def _session(self, ws: Any) -> None:
        hello = orjson.loads(await asyncio.wait_for(ws.recv(), self._open_timeout))
        if hello.get("type") == "error":  # refused right after the handshake (a key without "stream")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.wait_closed(), 2)
            error = hello.get("error") if isinstance(hello.get("error"), dict) else {}
            if ws.close_code in CLOSE_REFUSED or error.get("code") in ("unauthorized", "forbidden"):
                raise _refusal_from_message(hello, ws.close_code)
            # rate limited or locked out (4429): worth retrying later, with the backoff
            raise ConnectionError(f"refused: {error.get('code')}: {error.get('message')}")
        new_epoch = hello.get("epoch")
        self.connected.set()
        self._settled.set()
        await self._emit(
            Event(
                "connected",
                {
                    "epoch": new_epoch,
                    "previous_epoch": self.epoch,
                    "seq": hello.get("seq"),
                    "source": hello.get("source"),
                    "reconnect": self.reconnects > 0,
                },
            )
        )
        encoding = self._encoding
        if encoding == "auto":  # columnar JSON when this gateway has it (an older one only has rows)
            encoding = "columns" if "columns" in (hello.get("encodings") or ()) else "json"
        if encoding != "json":  # before the subscriptions: their first frames come encoded so
            await ws.send(
                json.dumps({"op": "options", "encoding": encoding, "compression": self._compression})
            )
        for intent in list(self._intents):
            await self._send_intent(intent, "subscribe")
        stale_sent = False
        while True:
            try:
                raw = (
                    await asyncio.wait_for(ws.recv(), self._stale_after)
                    if self._stale_after
                    else await ws.recv()
                )
            except asyncio.TimeoutError:
                if not stale_sent and self._intents:
                    stale_sent = True
                    await self._emit(
                        Event("stale", {"seconds": self._stale_after, "last_seq": self.last_seq})
                    )
                continue
            if isinstance(raw, bytes):  # an Arrow data frame
                stale_sent = False
                table = pa.ipc.open_stream(pa.py_buffer(raw), options=_READ_OPTIONS).read_all()
                await self._on_data(orjson.loads((table.schema.metadata or {})[FRAME_META_KEY]), table)
                continue
            msg = orjson.loads(raw)
            kind = msg.get("type")
            if kind == "data":
                stale_sent = False
                await self._on_data(msg)
            elif kind == "resync":
                self.epoch = msg.get("epoch")
                self._resynced = True
                await self._emit(Event("resync", {"reason": msg.get("reason"), "epoch": self.epoch}))
            elif kind in ("subscribed", "unsubscribed", "status", "error"):
                await self._emit(Event(kind, {k: v for k, v in msg.items() if k != "type"}))
            elif kind == "hello":
                continue

    async def _on_data(self, msg: dict[str, Any], table: pa.Table | None = None) -> None:
        seq_from, seq_to = msg.get("seq_from"), msg.get("seq_to")
        epoch = msg.get("epoch")
        channel = msg.get("channel", "tick")
        snapshot = self._resynced
        self._resynced = False
        held = self._held.get(channel)
        if epoch != self.epoch:
            self.epoch = epoch
            self.last_seq = None  # seqs restart with every gateway run
            self._held.clear()
            gap = 0
        elif snapshot or msg.get("conflated"):
            gap = 0  # said otherwise: a snapshot, or the gateway merged frames for this lagging client
        else:
            gap = self._gap(held, msg, seq_from)
        if seq_to is not None:
            if self.last_seq is None or seq_to > self.last_seq or snapshot:
                self.last_seq = seq_to
            if self._held.get(channel, -1) < seq_to:
                self._held[channel] = seq_to
        columnar = msg if "columns" in msg and table is None else None
        batch = Batch(
            channel=channel,
            rows=None if table is not None or columnar is not None else msg.get("items") or [],
            table=table,
            columnar=columnar,
            epoch=epoch,
            seq_from=seq_from,
            seq_to=seq_to,
            conflated=bool(msg.get("conflated")),
            replay=bool(msg.get("replay")),
            snapshot=snapshot,
            gap=gap,
        )
        if gap:
            await self._emit(
                Event(
                    "gap",
                    {"missing": gap, "seq_from": seq_from, "prev_seq": msg.get("prev_seq"), "held": held},
                )
            )
        await self._emit(batch)

    def _gap(self, held: int | None, msg: dict[str, Any], seq_from: int | None) -> int:
        """Seqs skipped before this frame: the gateway's ``prev_seq`` (the end of the frame it queued for
        this client before) against ``held``, the highest seq this client holds on the frame's channel."""
        if "prev_seq" in msg:
            prev = msg["prev_seq"]
            return prev - held if prev is not None and held is not None and prev > held else 0
        # a gateway without prev_seq: seqs are contiguous only on a whole-market tick stream
        whole_market = any(i.markets for i in self._intents)
        if whole_market and not msg.get("replay") and seq_from is not None and held is not None:
            return max(seq_from - held - 1, 0)
        return 0

    async def _emit(self, item: Batch | Event) -> None:
        await self._queue.put(item)
