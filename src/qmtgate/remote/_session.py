"""One connection of the xtquant drop-in to a gateway: REST calls, the push stream and its callbacks.

Subscriptions follow xtquant's model: ``subscribe_quote`` / ``subscribe_whole_quote`` return an int and
call the user's callback on a background thread with xtquant-shaped payloads. Underneath, one WebSocket
(:class:`qmtgate.client.Stream`: reconnect, resume, resync after a gateway restart) says *which* codes
changed in each burst; the payload values are then read in xtquant's fields and units from the
gateway's ``/api/v1/xt`` routes (the quote cache for ticks, the K-line service for bars), because the
stream carries the normalized schema, which lacks some xtquant fields. That costs one loopback round
trip per burst and keeps every payload exactly what ``xtdata`` would deliver.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import queue
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from qmtgate.client import Client
from qmtgate.client.errors import QmtgateClientError, TooLarge
from qmtgate.client.stream import Batch, Event, Stream
from qmtgate.remote._shapes import kline_frames, last_bar, xt_time
from qmtgate.vocab import KLINE_PERIODS, MARKETS

logger = logging.getLogger(__name__)

#: How long the first subscription waits for the stream to connect, so that a refusal (a key without the
#: ``stream`` scope, a certificate that is not the pinned one) raises in ``subscribe_quote`` itself. A
#: gateway that is merely unreachable does not raise: the stream keeps trying, as xtquant would.
FIRST_CONNECT_WAIT = 5.0

#: Periods the gateway's stream pushes (forming bars per code, or ticks).
STREAM_PERIODS = ("tick", "1m", "5m", "15m", "30m", "1h", "60m", "1d")


@dataclass
class XtSubscription:
    seq: int
    period: str  # "tick" or a bar period
    whole: bool  # subscribe_whole_quote: payload {code: tick}; else {code: [item]}
    codes: frozenset[str]
    markets: frozenset[str]
    callback: Callable[[dict[str, Any]], Any] | None
    dividend_type: str = "none"

    def wants(self, code: str) -> bool:
        return code in self.codes or code.rpartition(".")[2] in self.markets

    def targets(self) -> list[tuple[str, str]]:
        period = "1h" if self.period == "60m" else self.period
        return [(period, t) for t in (*sorted(self.codes), *sorted(self.markets))]


class RemoteSession:
    """The drop-in's state: a :class:`Client`, the push stream, and the xtquant subscriptions."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        tls_fingerprint: str | Sequence[str] | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        # K-lines travel as Arrow; the many small dict answers (ticks, details, calendars) as JSON over the
        # sync client's kept-alive connection, which is what keeps a one-code get_full_tick near 1 ms
        self.client = Client(
            self.url,
            api_key=api_key,
            timeout=timeout,
            format="arrow",
            tls_fingerprint=tls_fingerprint,
            tls_ca=tls_ca,
        )
        self._subs: dict[int, XtSubscription] = {}
        self._refs: collections.Counter[tuple[str, str]] = collections.Counter()
        self._seqs = itertools.count(1)
        self._lock = threading.RLock()
        self._stream: Stream | None = None
        self._pump: Any = None
        self._inbox: queue.Queue[Batch | Event | None] = queue.Queue(maxsize=64)
        self._dispatcher: threading.Thread | None = None
        self.events: collections.deque[Event] = collections.deque(maxlen=500)
        self.callback_errors = 0
        self.closed = False
        self._max_codes: int | None = None

    # -- limits ------------------------------------------------------------------------------------------

    def max_history_codes(self) -> int:
        if self._max_codes is None:
            caps = self.client.capabilities()
            self._max_codes = int(caps.get("max_history_codes") or 500)
        return self._max_codes

    # -- reads ---------------------------------------------------------------------------------------------

    def kline_frames(
        self,
        field_list: Sequence[str],
        stock_list: Sequence[str] | str,
        period: str,
        start_time: Any,
        end_time: Any,
        count: int,
        dividend_type: str | None,
        fill_data: bool,
    ) -> dict[str, pd.DataFrame]:
        """``get_market_data_ex``'s answer, read in chunks of the gateway's per-request code limit."""
        stock_list = [stock_list] if isinstance(stock_list, str) else list(stock_list)
        if period not in KLINE_PERIODS:
            raise NotImplementedError(
                f"xtdata.get_market_data_ex(period={period!r}) is not served by qmtgate.remote "
                f"(K-line periods only: {', '.join(KLINE_PERIODS)})"
            )
        codes = list(dict.fromkeys(stock_list))
        if not codes:
            return {}
        limit = self.max_history_codes()
        tables: list[pa.Table] = []
        known: list[str] = []
        pending = [codes[i : i + limit] for i in range(0, len(codes), limit)]
        while pending:
            chunk = pending.pop(0)
            try:
                table, meta = self.client.xt_market_data(
                    chunk,
                    period,
                    xt_time(start_time),
                    xt_time(end_time),
                    int(count),
                    dividend_type or "none",
                    bool(fill_data),
                )
            except TooLarge:
                if len(chunk) == 1:
                    raise  # one code's range over the gateway's row limit: the error says how to page
                half = len(chunk) // 2  # over the per-request row limit: fewer codes per request
                pending[:0] = [chunk[:half], chunk[half:]]
                continue
            tables.append(table)
            known.extend(meta.get("codes") or [])
        table = (
            tables[0] if len(tables) == 1 else pa.concat_tables([t.cast(tables[0].schema) for t in tables])
        )
        return kline_frames(table, known, stock_list, field_list, period)

    # -- subscriptions -----------------------------------------------------------------------------------

    def subscribe(
        self,
        period: str,
        codes: Sequence[str],
        markets: Sequence[str],
        callback: Callable[[dict[str, Any]], Any] | None,
        *,
        whole: bool,
        dividend_type: str = "none",
    ) -> int:
        if period not in STREAM_PERIODS:
            raise NotImplementedError(
                f"xtdata.subscribe_quote(period={period!r}) is not served by qmtgate.remote: the gateway "
                f"streams {', '.join(STREAM_PERIODS)}"
            )
        sub = XtSubscription(
            next(self._seqs), period, whole, frozenset(codes), frozenset(markets), callback, dividend_type
        )
        with self._lock:
            first = self._stream is None
            stream = self._ensure_stream()
        if first:
            self._await_first_connect(stream)
        with self._lock:
            self._subs[sub.seq] = sub
            fresh = [t for t in sub.targets() if self._refs[t] == 0]
            self._refs.update(sub.targets())
        if fresh:
            self._stream_op("subscribe", fresh)
        return sub.seq

    def _await_first_connect(self, stream: Stream) -> None:
        """Raise the gateway's refusal of the stream once, here, instead of reconnecting forever."""
        try:
            self.client.run(stream.wait_connected(FIRST_CONNECT_WAIT), timeout=FIRST_CONNECT_WAIT + 5)
        except QmtgateClientError:
            with self._lock:
                if self._stream is stream:  # a later subscribe opens a new stream (and is refused again)
                    self._stream = None
            with contextlib.suppress(Exception):
                self.client.run(stream.close(), timeout=10)
            raise

    def unsubscribe(self, seq: int) -> None:
        with self._lock:
            sub = self._subs.pop(int(seq), None)
            if sub is None:
                return
            self._refs.subtract(sub.targets())
            gone = [t for t in sub.targets() if self._refs[t] <= 0]
            for t in gone:
                del self._refs[t]
        if gone:
            self._stream_op("unsubscribe", gone)

    def _stream_op(self, op: str, targets: list[tuple[str, str]]) -> None:
        stream = self._stream
        assert stream is not None
        by_period: dict[str, list[str]] = collections.defaultdict(list)
        for period, target in targets:
            by_period[period].append(target)
        for period, items in by_period.items():
            fn = stream.subscribe if op == "subscribe" else stream.unsubscribe
            self.client.run(fn(items, period), timeout=10)

    def _ensure_stream(self) -> Stream:
        if self._stream is not None:
            return self._stream
        self._stream = self.client.open_stream(max_reconnect_delay=2.0)
        if self._dispatcher is None:  # one for the session, also when a refused stream is replaced
            self._dispatcher = threading.Thread(
                target=self._dispatch_loop, name="qmtgate-xtdata-callback", daemon=True
            )
            self._dispatcher.start()
        stream, inbox = self._stream, self._inbox

        async def pump() -> None:
            import asyncio

            loop = asyncio.get_running_loop()
            async for item in stream:
                # a full inbox (slow callbacks) stops the reader; the gateway then conflates for us
                await loop.run_in_executor(None, inbox.put, item)

        self._pump = self.client._loop.submit(pump())
        return stream

    # -- dispatch (callback thread) ------------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            try:
                if isinstance(item, Event):
                    self.events.append(item)
                    if item.kind in ("disconnected", "resync", "gap", "stale", "error", "status"):
                        logger.warning("qmtgate.remote stream %s: %s", item.kind, item.data)
                    continue
                self._deliver(item)
            except Exception:  # the dispatcher must outlive any one burst
                logger.exception("qmtgate.remote: delivering a batch failed")

    def _deliver(self, batch: Batch) -> None:
        with self._lock:
            subs = list(self._subs.values())
        codes = list(dict.fromkeys(item["code"] for item in batch.items if "code" in item))
        if not codes or not subs:
            return
        channel = batch.channel
        if channel == "tick":
            wanted = [s for s in subs if s.period == "tick"]
            need = [c for c in codes if any(s.wants(c) for s in wanted)]
            if not need:
                return
            ticks = self.client.xt_full_tick(need)
            for sub in wanted:
                mine = {c: ticks[c] for c in need if c in ticks and sub.wants(c)}
                if not mine:
                    continue
                if sub.whole:
                    self._call(sub, mine)
                else:
                    for code, tick in mine.items():
                        self._call(sub, {code: [tick]})
            return
        wanted = [
            s for s in subs if s.period != "tick" and ("1h" if s.period == "60m" else s.period) == channel
        ]
        for sub in wanted:
            mine = [c for c in codes if sub.wants(c)]
            if not mine:
                continue
            frames = self.kline_frames([], mine, sub.period, "", "", 1, sub.dividend_type, True)
            for code in mine:
                item = last_bar(frames.get(code))
                if item is not None:
                    self._call(sub, {code: [item]})

    def _call(self, sub: XtSubscription, payload: dict[str, Any]) -> None:
        if sub.callback is None:
            return
        try:
            sub.callback(payload)
        except Exception:  # as xtquant: print and keep the subscription running
            self.callback_errors += 1
            print("subscribe callback error:")
            traceback.print_exc()

    # -- lifecycle ------------------------------------------------------------------------------------------

    def close(self) -> None:
        self.closed = True
        stream = self._stream
        if stream is not None:
            try:
                self.client.run(stream.close(), timeout=10)
            except Exception:
                logger.exception("qmtgate.remote: closing the stream failed")
        if self._dispatcher is not None:
            with contextlib.suppress(queue.Full):  # a daemon thread: it ends with the process anyway
                self._inbox.put_nowait(None)
        self.client.close()


MARKET_TOKENS = MARKETS
