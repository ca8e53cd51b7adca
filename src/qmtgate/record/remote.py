"""Recording a remote gateway (``qmtgate record --url http://gateway --api-key ...``).

A Mac or Linux box records what a Windows gateway streams, through :mod:`qmtgate.client`: the same
:class:`~qmtgate.record.recorder.Recorder`, writer, bars and completeness record as a local recording, with
two stand-ins for what the recorder uses locally:

* :class:`GatewayFeed` stands in for the streaming hub: one resilient :class:`qmtgate.client.Stream`
  (JSON frames; it reconnects and resumes by itself), or with ``record --nats`` the same stream from a NATS
  bus (:class:`qmtgate.client.bus.NatsStream`, one gateway's subjects). Every batch goes to the recorder's outbox; a batch
  the gateway conflated or a seq gap, a resync or a disconnect is a *break*: the recorder starts a new live
  span and its backfill looks for the hole.
* :class:`GatewaySource` stands in for the market source: market time (the newest tick seen, moved on by
  the wall clock), code lists (``/xt/full_tick``), reference data (``/xt/instrument_detail``, sectors,
  ``/xt/trading_dates``) and tick history for backfill from the gateway's own recording
  (``/api/v1/recorded/ticks``) when it records; a gateway that does not record has no tick history over
  REST, so holes are then reported (``record --status``), not filled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qmtgate.errors import Unsupported

logger = logging.getLogger(__name__)

#: how long ``subscribe`` waits for the first batch (it carries the gateway's market time)
FIRST_BATCH_S = 15.0
#: error codes after which the subscription is sent again (the gateway's source is busy or warming up)
RETRYABLE = frozenset({"source_timeout", "source_busy", "source_unavailable", "warming_up", "unavailable"})


@dataclass
class RemoteFrame:
    """One batch of the gateway's stream, as the recorder's drain takes it."""

    rows: list[dict[str, Any]]
    conflated: bool = False
    gap: int = 0
    #: current values sent on subscribe or after a resync (each code's latest tick, not a live push)
    seed: bool = False


@dataclass
class StreamBreak:
    """The stream lost (or may have lost) ticks: a disconnect, a resync, a gap."""

    reason: str


@dataclass
class _Config:
    max_codes_per_client: int = 1_000_000


class _Outbox:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(4096)
        self.closed_reason: str | None = None

    def __len__(self) -> int:
        return self.queue.qsize()

    async def get(self) -> Any:
        return await self.queue.get()


@dataclass
class _RemoteClient:
    outbox: _Outbox = field(default_factory=_Outbox)
    stream: Any = None
    pump: asyncio.Task[None] | None = None


class GatewaySource:
    """What the recorder asks its source, answered by a remote gateway (see the module docstring)."""

    name = "gateway"

    def __init__(self, client: Any) -> None:
        self.client = client
        self._seen_ts: int | None = None
        self._seen_at = 0.0

    def saw(self, ts: int) -> None:
        if self._seen_ts is None or ts > self._seen_ts:
            self._seen_ts, self._seen_at = ts, time.monotonic()

    def now_ms(self) -> int:
        """The gateway's market time: its newest tick, moved on by the wall clock since it came."""
        if self._seen_ts is None:
            return int(time.time() * 1000)
        return self._seen_ts + int((time.monotonic() - self._seen_at) * 1000)

    async def market_snapshot(self, markets: Sequence[str]) -> dict[str, dict[str, Any]]:
        return dict(await self.client.xt_full_tick(list(markets)))

    async def download_history(
        self, codes: Sequence[str], period: str, start: str = "", end: str = ""
    ) -> None:
        """Nothing: the backfill reads the gateway's recording, which needs no download."""

    async def history_rows(self, codes: Sequence[str], lo: int, hi: int) -> list[dict[str, Any]]:
        """Normalized tick rows of ``codes`` in ``[lo, hi]`` from the gateway's recording (the recorder
        asks only for what :meth:`covered` says it holds)."""
        from qmtgate.client._calls import Call, table

        params = {"codes": ",".join(codes), "start": _text(lo), "end": _text(hi + 999)}
        tbl, _meta = await self.client.send(
            Call("GET", "/api/v1/recorded/ticks", table, params, tabular=True)
        )
        rows = tbl.to_pylist()
        return [r for r in rows if r.get("ts") is not None and lo <= r["ts"] <= hi]

    async def covered(self, day: str, scopes: Sequence[str]) -> list[tuple[int, int]] | None:
        """The spans of ``day`` (YYYYMMDD) the gateway's own recording covers for every one of ``scopes``
        (a code counts its market's coverage too); empty while it has claimed nothing of the day. The
        backfill takes from the gateway only what its recording covers."""
        from qmtgate.client._calls import Call, body
        from qmtgate.client.errors import NotFound as GatewayNotFound
        from qmtgate.record.completeness import intersect, merge, scope_market

        try:
            report = await self.client.send(Call("GET", "/api/v1/recorded/completeness", body, {"date": day}))
        except GatewayNotFound as e:
            raise Unsupported(
                "the gateway keeps no recording, so it serves no tick history: holes stay reported", {}
            ) from e
        days = report.get("days") or []
        if not days or not days[0].get("known"):
            return []  # nothing of the day claimed (yet): nothing to take
        spans: dict[str, list[tuple[int, int]]] = {}
        for row in days[0].get("covered") or []:
            for scope in row["scopes"]:
                spans.setdefault(scope, []).append((int(row["start_ms"]), int(row["end_ms"])))
        common: list[tuple[int, int]] | None = None
        for scope in scopes:
            mine = merge(spans.get(scope, []) + spans.get(scope_market(scope) or "", []))
            common = mine if common is None else intersect(common, mine)
        return common or []

    async def instrument_details(self, codes: Sequence[str], complete: bool = False) -> dict[str, Any]:
        return dict(await self.client.xt_instrument_detail(list(codes)))

    async def sector_list(self) -> list[str]:
        return list(await self.client.sectors())

    async def sector_members(self, sector: str) -> list[str]:
        return list(await self.client.sector_members(sector))

    async def trading_dates(self, market: str, start: str = "", end: str = "", count: int = -1) -> list[int]:
        return list(await self.client.xt_trading_dates(market, start, end, count))

    async def start(self) -> None:
        """Nothing to start: the client connects on first use."""

    async def stop(self) -> None:
        await self.client.aclose()


class GatewayFeed:
    """The recorder's hub, fed by the gateway's WebSocket stream (see the module docstring)."""

    def __init__(
        self, client: Any, source: GatewaySource, nats: str | None = None, gateway: str = "*"
    ) -> None:
        self.client = client
        self.source = source
        self.config = _Config()
        self.breaks = 0
        #: live ticks from a NATS bus instead of the gateway's WebSocket (``record --nats``, docs/nats.md)
        self.nats = nats
        self.gateway = gateway

    def connect(self) -> _RemoteClient:
        return _RemoteClient()

    async def subscribe(
        self, rc: _RemoteClient, channel: str, codes: Sequence[str], markets: Sequence[str]
    ) -> list[Any]:
        """Subscribe on the gateway; wait (bounded) for the first batch, which sets the market time.

        A subscription the gateway refuses for a passing reason (its source still warming up:
        ``source_timeout``, ``source_busy``, ...) is sent again on a new stream, with backoff."""
        first = asyncio.Event()
        rc.pump = asyncio.create_task(
            self._supervise(rc, channel, [*markets, *codes], first), name="qmtgate-record-remote"
        )
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await asyncio.wait_for(first.wait(), FIRST_BATCH_S)
        if not first.is_set():
            logger.warning("no data from the gateway within %.0f s; recording what comes", FIRST_BATCH_S)
        return []

    async def _supervise(
        self, rc: _RemoteClient, channel: str, targets: list[str], first: asyncio.Event
    ) -> None:
        delay = 1.0
        while True:
            via = {"nats": self.nats, "gateway": self.gateway} if self.nats else {}
            stream = self.client.stream(targets, channel, max_reconnect_delay=10.0, **via)
            rc.stream = stream
            stream.start()
            outcome = await self._pump(rc, stream, first)
            if outcome == "closed":
                rc.outbox.closed_reason = "stream closed"
                await rc.outbox.queue.put(None)
                return
            await stream.close()
            await self._break(rc, "subscription refused for now; subscribing again")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _pump(self, rc: _RemoteClient, stream: Any, first: asyncio.Event) -> str:
        from qmtgate.client.stream import Batch, Event

        async for item in stream:
            if isinstance(item, Batch):
                rows = item.items
                seed = item.replay or item.snapshot
                if not seed:  # seeds carry each code's latest tick, however old: not the market's time
                    for row in rows:
                        ts = row.get("ts")
                        if isinstance(ts, int):
                            self.source.saw(ts)
                if item.gap > 0:
                    await self._break(rc, f"{item.gap} seqs missed")
                if rows:
                    await rc.outbox.queue.put(RemoteFrame(rows, item.conflated and not seed, item.gap, seed))
                if not seed:
                    first.set()
            elif isinstance(item, Event):
                if item.kind in ("disconnected", "resync"):
                    await self._break(rc, item.kind)
                elif item.kind == "error":
                    code = (item.data.get("error") or {}).get("code") or item.data.get("code")
                    logger.warning("gateway stream error: %s", item.data)
                    if code in RETRYABLE:
                        return "retry"
                elif item.kind == "closed":
                    return "closed"
        return "closed"

    async def _break(self, rc: _RemoteClient, reason: str) -> None:
        self.breaks += 1
        await rc.outbox.queue.put(StreamBreak(reason))

    async def disconnect(self, rc: _RemoteClient) -> None:
        if rc.pump is not None:
            rc.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await rc.pump
        if rc.stream is not None:
            await rc.stream.close()

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop (the recorder disconnects its stream)."""


def _text(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m%d%H%M%S")
