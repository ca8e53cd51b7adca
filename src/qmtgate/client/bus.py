"""The NATS transport: the same stream API as :class:`qmtgate.client.stream.Stream`, from a NATS bus.

``NatsStream`` yields the same :class:`Batch` and :class:`Event` objects as the WebSocket stream (async
iteration; the sync :class:`~qmtgate.client.Client` drives it with callbacks), so a consumer switches with
one argument: ``client.stream(["SH"], nats="nats://bus:4222")``. It subscribes to the gateways' subjects
(``qmtgate.natswire``; ``gateway="*"`` for every gateway on the bus) and checks every message:

* **gaps**: each message names the seq of the message its gateway published before it on the same subject
  (``prev_seq``); a later one than the seq held for that subject means messages went missing (the bus or
  this consumer lost them, or the gateway's buffer dropped them while NATS was away): ``Batch.gap`` (how
  many subjects skipped) and ``Event("gap")``;
* **repeats**: a seq already held (a gateway resends what the bus never confirmed after a reconnect) is
  dropped, counted in :attr:`NatsStream.duplicates`;
* **resync**: a gateway's new epoch (it restarted) resets its seqs: ``Event("resync")``;
* **several gateways** (``dedupe=True``, the default for ``gateway="*"``): the same tick from an active
  and a standby gateway is delivered once, by (code, exchange time ``ts``);
* **staleness** (``stale_after``), **disconnects** and the gateways' **status** events (the bus coming back
  with what it dropped, the QMT source's status) become events as on the WebSocket.

:func:`replay` reads a JetStream stream (a gateway with ``nats.jetstream`` on) by time range, as batches.

Needs ``nats-py`` (``pip install "qmtgate[nats]"``); imported on first use only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import numpy as np
import orjson
import pyarrow as pa

from qmtgate.client.stream import Batch, Event, _Intent, _StreamAPI, split_targets
from qmtgate.natswire import FRAME_META_KEY, data_subjects, parse_subject, status_subject, stream_name

logger = logging.getLogger(__name__)

_READ_OPTIONS = pa.ipc.IpcReadOptions(use_threads=False)
_NO_TS = np.iinfo(np.int64).min  # no tick delivered yet for a (channel, code)
#: message fields that are the envelope, not the row
_ENVELOPE = ("epoch", "channel", "gw_ts", "prev_seq", "conflated")


def _import_nats() -> Any:
    try:
        import nats
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError('the NATS transport needs nats-py: pip install "qmtgate[nats]"') from e
    return nats


class _Checker:
    """Per-subject seq bookkeeping shared by the live stream and the replay: gaps, repeats, epochs,
    and the cross-gateway de-duplication by (code, exchange time)."""

    def __init__(self, dedupe: bool) -> None:
        self.dedupe = dedupe
        self.held: dict[tuple[str, str, str], int] = {}  # (gw, channel or "batch", code or market) -> seq
        self.epochs: dict[str, str] = {}
        # the newest exchange ts delivered per (channel, code): a slot per pair and the times in one array,
        # so a whole-market batch is checked with array operations rather than a Python call per row
        self._slots: dict[tuple[str, str], int] = {}
        self._last = np.full(1024, _NO_TS, dtype=np.int64)
        # (gw, market) -> (the batch's code column, its slots, whether a code repeats in it): a market's
        # batches list the same codes burst after burst, so the slots are looked up once, not per batch
        self._memo: dict[tuple[str, str], tuple[pa.ChunkedArray, np.ndarray, bool]] = {}
        self.duplicates = 0
        self.cross_duplicates = 0

    def epoch(self, gw: str, epoch: str, events: list[Event]) -> None:
        previous = self.epochs.get(gw)
        if previous == epoch:
            return
        self.epochs[gw] = epoch
        if previous is not None:
            for key in [k for k in self.held if k[0] == gw]:
                del self.held[key]
            events.append(Event("resync", {"gateway": gw, "epoch": epoch, "previous_epoch": previous}))

    def check(self, key: tuple[str, str, str], seq: int, prev: int | None) -> tuple[bool, bool]:
        """(keep, gap) for a message with ``seq`` and ``prev_seq`` on subject ``key``."""
        held = self.held.get(key)
        if held is not None and seq <= held:
            self.duplicates += 1
            return False, False
        self.held[key] = seq
        return True, prev is not None and held is not None and prev > held

    def _slot(self, channel: str, code: str) -> int:
        slot = self._slots.get((channel, code))
        if slot is None:
            slot = self._slots[(channel, code)] = len(self._slots)
            if slot == len(self._last):
                self._last = np.concatenate([self._last, np.full(len(self._last), _NO_TS, dtype=np.int64)])
        return slot

    def fresh(self, channel: str, code: str, ts: int | None) -> bool:
        """False for a tick another gateway already delivered (same code, same or older exchange time)."""
        if not self.dedupe or channel != "tick" or ts is None:
            return True
        slot = self._slot(channel, code)
        if ts <= self._last[slot]:
            self.cross_duplicates += 1
            return False
        self._last[slot] = ts
        return True

    def fresh_rows(self, key: tuple[str, str], codes: pa.ChunkedArray, stamps: pa.ChunkedArray) -> np.ndarray:
        """:meth:`fresh` for every row of a tick batch at once (``key``: its gateway and market), as a mask;
        the same answers, in the same order, as calling it row by row."""
        memo = self._memo.get(key)
        if memo is not None and memo[0].equals(codes):
            _, slots, repeated = memo
        else:
            slots = np.fromiter(
                (self._slot("tick", c) for c in codes.to_pylist()), dtype=np.int64, count=len(codes)
            )
            repeated = bool(len(slots)) and bool(np.bincount(slots).max() > 1)
            self._memo[key] = (codes, slots, repeated)
        if stamps.null_count or repeated:  # rows that depend on each other: one at a time
            return np.fromiter(
                (
                    self.fresh("tick", c, t)
                    for c, t in zip(codes.to_pylist(), stamps.to_pylist(), strict=True)
                ),
                dtype=bool,
                count=len(codes),
            )
        ts = stamps.to_numpy()
        keep = ts > self._last[slots]
        self._last[slots[keep]] = ts[keep]
        self.cross_duplicates += int(len(keep) - np.count_nonzero(keep))
        return keep


class _Decoder:
    """Messages -> batches and events (the order of arrival is kept within a channel)."""

    def __init__(self, checker: _Checker, replay: bool = False) -> None:
        self.checker = checker
        self.replay = replay

    def decode(self, msgs: Sequence[tuple[str, bytes]]) -> list[Batch | Event]:
        out: list[Batch | Event] = []
        events: list[Event] = []
        rows: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (gw, channel) -> rows
        gaps: dict[tuple[str, str], int] = {}
        conflated: set[tuple[str, str]] = set()
        ck = self.checker

        def flush_rows() -> None:
            for (gw, channel), items in rows.items():
                if items:
                    out.append(
                        self._batch(
                            gw, channel, items, gaps.get((gw, channel), 0), (gw, channel) in conflated
                        )
                    )
            rows.clear()
            gaps.clear()
            conflated.clear()

        for subject, data in msgs:
            parsed = parse_subject(subject)
            if parsed is None:
                continue
            gw, kind, _period = parsed
            if kind == "status":
                try:
                    body = orjson.loads(data)
                except orjson.JSONDecodeError:
                    continue
                if body.get("type") == "heartbeat":
                    continue
                flush_rows()
                out.extend(events)
                events.clear()
                out.append(Event("status", {"gateway": gw, **body}))
                continue
            if kind == "batch":
                flush_rows()
                item = self._arrow(gw, data, events)
                out.extend(events)
                events.clear()
                if item is not None:
                    out.append(item)
                continue
            try:
                msg = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            ck.epoch(gw, msg.get("epoch"), events)
            if events:
                flush_rows()
                out.extend(events)
                events.clear()
            channel = msg.get("channel", "tick")
            code = msg.get("code", "")
            keep, gap = ck.check((gw, channel, code), msg["seq"], msg.get("prev_seq"))
            if not keep:
                continue
            group = (gw, channel)
            if gap:
                gaps[group] = gaps.get(group, 0) + 1
                out.append(
                    Event(
                        "gap",
                        {
                            "gateway": gw,
                            "channel": channel,
                            "code": code,
                            "prev_seq": msg.get("prev_seq"),
                            "seq": msg["seq"],
                        },
                    )
                )
            if msg.get("conflated"):
                conflated.add(group)
            if not ck.fresh(channel, code, msg.get("ts")):
                continue
            for name in _ENVELOPE:
                msg.pop(name, None)
            rows.setdefault(group, []).append(msg)
        flush_rows()
        out.extend(events)
        return out

    def _batch(self, gw: str, channel: str, items: list[dict[str, Any]], gap: int, conflated: bool) -> Batch:
        return Batch(
            channel=channel,
            epoch=self.checker.epochs.get(gw),
            seq_from=items[0]["seq"],
            seq_to=items[-1]["seq"],
            conflated=conflated,
            replay=self.replay,
            gap=gap,
            rows=items,
        )

    def _arrow(self, gw: str, data: bytes, events: list[Event]) -> Batch | None:
        table = pa.ipc.open_stream(pa.py_buffer(data), options=_READ_OPTIONS).read_all()
        header = orjson.loads((table.schema.metadata or {})[FRAME_META_KEY])
        ck = self.checker
        ck.epoch(gw, header["epoch"], events)
        keep, gap = ck.check((gw, "batch", header["market"]), header["seq_to"], header.get("prev_seq"))
        if not keep:
            return None
        if gap:
            events.append(
                Event(
                    "gap",
                    {
                        "gateway": gw,
                        "channel": "tick",
                        "market": header["market"],
                        "prev_seq": header.get("prev_seq"),
                        "seq_from": header["seq_from"],
                    },
                )
            )
        if ck.dedupe:
            mask = ck.fresh_rows((gw, header["market"]), table.column("code"), table.column("ts"))
            if not mask.all():
                table = table.filter(pa.array(mask))
        table = table.replace_schema_metadata(None)
        return Batch(
            channel="tick",
            epoch=header["epoch"],
            seq_from=header["seq_from"],
            seq_to=header["seq_to"],
            conflated=bool(header.get("conflated")),
            replay=self.replay,
            gap=1 if gap else 0,
            table=table,
        )


class NatsStream(_StreamAPI):
    """A subscription stream over NATS with :class:`~qmtgate.client.stream.Stream`'s API.

    ``gateway``: one gateway's id, or ``"*"`` for all on the bus. ``encoding="arrow"``: whole markets come
    as one Arrow batch per burst per market (``Batch.table``); codes always come as JSON messages.
    ``connect_options``: extra ``nats.connect`` arguments (``user_credentials``, ``nkeys_seed``, ``tls``...).
    """

    def __init__(
        self,
        url: str,
        *,
        gateway: str = "*",
        encoding: Literal["json", "arrow"] = "json",
        stale_after: float | None = None,
        dedupe: bool | None = None,
        queue_size: int = 256,
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 5.0,
        connect_options: dict[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.gateway = gateway
        self._encoding = encoding
        self._stale_after = stale_after
        self._checker = _Checker(dedupe if dedupe is not None else gateway == "*")
        self._decoder = _Decoder(self._checker)
        self._delay0 = reconnect_delay
        self._delay_max = max_reconnect_delay
        self._options = dict(connect_options or {})
        self._intents: list[_Intent] = []
        self._subs: dict[str, Any] = {}  # subject -> nats subscription
        self._items: deque[Batch | Event] = deque()
        self._max_items = queue_size
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._pending: list[tuple[str, bytes]] = []
        self._flush_scheduled = False
        self._nc: Any = None
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._closed = False
        self._last_data = time.monotonic()
        self.connected = asyncio.Event()
        self.refused: Exception | None = None
        self.reconnects = 0

    # -- the Stream API --------------------------------------------------------------------------------

    @property
    def duplicates(self) -> int:
        """Messages dropped because their seq was held already (resends after a gateway's reconnect)."""
        return self._checker.duplicates

    @property
    def cross_duplicates(self) -> int:
        """Ticks dropped because another gateway delivered the same (code, exchange time) first."""
        return self._checker.cross_duplicates

    async def subscribe(
        self,
        targets: str | Sequence[str] | None = None,
        period: str = "tick",
        *,
        markets: Sequence[str] = (),
        sectors: Sequence[str] = (),
    ) -> None:
        if sectors:
            raise ValueError("sectors are not subjects on the bus: subscribe to their codes or markets")
        codes, tokens = split_targets(targets)
        intent = _Intent(period, codes, tuple(dict.fromkeys([*tokens, *markets])))
        self._intents.append(intent)
        if self._nc is not None:
            await self._subscribe_intent(intent)
        self.start()

    async def unsubscribe(
        self, targets: str | Sequence[str] | None = None, period: str = "tick", *, markets: Sequence[str] = ()
    ) -> None:
        codes, tokens = split_targets(targets)
        gone = set(self._subjects(_Intent(period, codes, tuple(dict.fromkeys([*tokens, *markets])))))
        self._intents = [i for i in self._intents if not set(self._subjects(i)) <= gone]
        for subject in gone:
            sub = self._subs.pop(subject, None)
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    def start(self) -> None:
        if self._task is None and not self._closed:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name=f"qmtgate-nats-stream {self.url}")
            if self._stale_after:
                self._watch = loop.create_task(self._stale_watch(), name="qmtgate-nats-stale")

    async def close(self) -> None:
        self._closed = True
        for task in (self._task, self._watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._watch = None
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()
        self._push(Event("closed"))

    async def wait_connected(self, timeout: float) -> bool:
        self.start()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout)
        return self.connected.is_set()

    # -- internals -------------------------------------------------------------------------------------

    async def _get(self) -> Batch | Event:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if len(self._items) < self._max_items:
            self._space.set()
        return item

    def _push(self, item: Batch | Event) -> None:
        self._items.append(item)
        self._ready.set()
        if len(self._items) >= self._max_items:
            self._space.clear()

    def _subjects(self, intent: _Intent) -> list[str]:
        return data_subjects(
            self.gateway, intent.period, intent.codes, intent.markets, batches=self._encoding == "arrow"
        )

    async def _subscribe_intent(self, intent: _Intent) -> None:
        for subject in self._subjects(intent):
            if subject not in self._subs and self._nc is not None:
                self._subs[subject] = await self._nc.subscribe(subject, cb=self._on_msg)

    async def _on_msg(self, msg: Any) -> None:
        if not self._space.is_set():  # the consumer is behind: hold the bus's delivery (it buffers, then
            await self._space.wait()  # counts a slow consumer; the seqs show what was lost)
        self._pending.append((msg.subject, msg.data))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        msgs, self._pending = self._pending, []
        if not msgs:
            return
        if len(self._subs) > 2:  # several subscriptions deliver independently: put the arrivals in order
            msgs.sort(key=_arrival_order)
        for item in self._decoder.decode(msgs):
            if isinstance(item, Batch):
                self._last_data = time.monotonic()
            self._push(item)

    async def _run(self) -> None:
        nats = _import_nats()
        delay = self._delay0
        loop = asyncio.get_running_loop()

        async def disconnected() -> None:
            if self.connected.is_set():
                self.connected.clear()
                self._push(Event("disconnected", {"url": self.url}))

        async def reconnected() -> None:
            self.reconnects += 1
            self.connected.set()
            self._push(Event("connected", {"url": self.url, "reconnect": True}))

        async def on_error(e: Exception) -> None:
            logger.debug("NATS: %s", e)
            if type(e).__name__ == "SlowConsumerError":
                self._push(Event("error", {"code": "slow_consumer", "message": str(e)}))

        while not self._closed:
            try:
                self._nc = await nats.connect(
                    self.url,
                    name=f"qmtgate-client-{uuid.uuid4().hex[:6]}",
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=self._delay0,
                    connect_timeout=2,
                    disconnected_cb=disconnected,
                    reconnected_cb=reconnected,
                    error_cb=on_error,
                    **self._options,
                )
                break
            except asyncio.CancelledError:
                raise
            except Exception as e:
                logger.debug("NATS %s unreachable: %s", self.url, e)
                await asyncio.sleep(delay * (1 + 0.2 * random.random()))
                delay = min(delay * 2, self._delay_max)
        if self._closed:
            return
        self._subs[status_subject(self.gateway)] = await self._nc.subscribe(
            status_subject(self.gateway), cb=self._on_msg
        )
        for intent in list(self._intents):
            await self._subscribe_intent(intent)
        await self._nc.flush()
        self.connected.set()
        self._push(Event("connected", {"url": self.url, "reconnect": False, "gateway": self.gateway}))
        await loop.create_future()  # nats-py reconnects by itself from here on; close() cancels this

    async def _stale_watch(self) -> None:
        assert self._stale_after
        sent = False
        while True:
            await asyncio.sleep(min(self._stale_after / 4, 1.0))
            quiet = time.monotonic() - self._last_data
            if quiet >= self._stale_after and self._intents and self.connected.is_set():
                if not sent:
                    sent = True
                    self._push(Event("stale", {"seconds": self._stale_after}))
            else:
                sent = False


def _arrival_order(item: tuple[str, bytes]) -> tuple[str, int]:
    """(gateway, seq) of a data message, so arrivals of several subscriptions are merged in seq order
    within one flush (status and batch messages sort first among their gateway's, in arrival order)."""
    subject, data = item
    parts = subject.split(".", 3)
    if len(parts) > 2 and parts[2] in ("tick", "bar"):
        at = data.find(b'"seq":')
        if at >= 0:
            end = data.find(b",", at)
            with contextlib.suppress(ValueError):
                return parts[1], int(data[at + 6 : end])
    return (parts[1] if len(parts) > 1 else "", -1)


def _as_datetime(when: dt.datetime | float | int | str) -> dt.datetime:
    """A datetime (naive: Asia/Shanghai), epoch ms, or ISO text -> an aware datetime."""
    if isinstance(when, dt.datetime):
        return when if when.tzinfo else when.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
    if isinstance(when, str):
        return _as_datetime(dt.datetime.fromisoformat(when))
    return dt.datetime.fromtimestamp(when / 1000.0, dt.timezone.utc)


async def replay(
    url: str,
    gateway: str,
    targets: str | Sequence[str] | None = None,
    period: str = "tick",
    *,
    start: dt.datetime | float | int | str,
    end: dt.datetime | float | int | str | None = None,
    encoding: Literal["json", "arrow"] = "json",
    fetch: int = 5000,
    connect_options: dict[str, Any] | None = None,
) -> AsyncIterator[Batch | Event]:
    """What gateway ``gateway`` published between ``start`` and ``end`` (the bus's receive time; None: up
    to now), from its JetStream stream, as batches (``replay=True``) with the live stream's checks."""
    nats = _import_nats()
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    codes, markets = split_targets(targets)
    subjects = [
        *data_subjects(gateway, period, codes, markets, batches=encoding == "arrow"),
        status_subject(gateway),
    ]
    begin = _as_datetime(start)
    stop = _as_datetime(end) if end is not None else None
    nc = await nats.connect(url, connect_timeout=2, **(connect_options or {}))
    js = nc.jetstream()
    name = f"qmtgate-replay-{uuid.uuid4().hex[:10]}"
    decoder = _Decoder(_Checker(dedupe=False), replay=True)
    stream = stream_name(gateway)
    try:
        await js.add_consumer(
            stream,
            ConsumerConfig(
                name=name,
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=begin,
                ack_policy=AckPolicy.NONE,
                filter_subjects=subjects,
                inactive_threshold=30.0,
            ),
        )
        sub = await js.pull_subscribe_bind(consumer=name, stream=stream)
        done = False
        while not done:
            try:
                msgs = await sub.fetch(fetch, timeout=1.0)
            except nats.errors.TimeoutError:
                break
            batch: list[tuple[str, bytes]] = []
            for m in msgs:
                meta = m.metadata
                if stop is not None and meta.timestamp > stop:
                    done = True
                    break
                batch.append((m.subject, m.data))
                if meta.num_pending == 0:
                    done = True
            for item in decoder.decode(batch):
                yield item
    finally:
        with contextlib.suppress(Exception):
            await js.delete_consumer(stream, name)
        with contextlib.suppress(Exception):
            await nc.close()


__all__ = ["NatsStream", "replay"]
