"""What the API layer needs from a market-data source, and the contract every source must meet.

The API layer only ever talks to a :class:`MarketSource`; it never imports xtquant or the simulator. Two
implementations exist: ``XtdataSource`` over the real ``xtquant.xtdata`` (name ``"xtquant"``) and the same
class over the simulator's xtdata-shaped module (name ``"simulated"``).
"""

from __future__ import annotations

import enum
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qmtgate.errors import InvalidPeriod, UnknownCode, Unsupported
from qmtgate.source.events import SourceEvent, SourceEventKind, SourceEvents
from qmtgate.vocab import KLINE_PERIODS, TICK_PERIODS

if TYPE_CHECKING:
    import pandas as pd

    from qmtgate.source.executor import ExecutorStatus

# K-line and tick periods: the leaf module qmtgate.vocab (shared with the clients), re-exported here.
#: Periods qmtgate passes to ``history``; Level-2 and feature periods are deliberately not exposed yet.
HISTORY_PERIODS: tuple[str, ...] = KLINE_PERIODS + TICK_PERIODS
#: xtdata ``dividend_type`` values: none, 前复权, 后复权, 等比前复权, 等比后复权.
DIVIDEND_TYPES: tuple[str, ...] = ("none", "front", "back", "front_ratio", "back_ratio")


class SourceState(str, enum.Enum):
    STARTING = "starting"
    READY = "ready"  # connected, executor healthy
    DEGRADED = "degraded"  # connected, but an upstream call overran its deadline (thread may be stuck)
    UNAVAILABLE = "unavailable"  # not connected (QMT down) or executor faulted; reconnect is attempted
    STOPPED = "stopped"


@dataclass(frozen=True)
class SourceStatus:
    """Cheap status for health checks; building it never waits on the executor."""

    name: str
    state: SourceState
    connected: bool
    message: str | None = None
    since: float | None = None  # epoch seconds of the last state change
    executor: ExecutorStatus | None = None
    #: The connection number: +1 on every (re)connect or subscription renewal; upstream subscriptions made
    #: under an older number are gone. (On the wire, the status message's ``source.epoch``.)
    connection: int = 0
    #: What the operator must know about the data, e.g. that the simulator is replaying a past session.
    note: str | None = None

    @property
    def ready(self) -> bool:
        return self.state is SourceState.READY


@dataclass(frozen=True)
class Capabilities:
    """What a source can do, so that unsupported features answer ``unsupported`` instead of faking success."""

    source: str
    markets: tuple[str, ...]
    periods: tuple[str, ...]
    dividend_types: tuple[str, ...]
    features: Mapping[str, bool]
    max_codes_per_request: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "markets": list(self.markets),
            "periods": list(self.periods),
            "dividend_types": list(self.dividend_types),
            "features": dict(self.features),
            "max_codes_per_request": self.max_codes_per_request,
        }


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report of a download; counts are codes, over the whole request."""

    finished: int
    total: int
    code: str = ""
    message: str = ""


@dataclass(frozen=True)
class DownloadResult:
    codes: tuple[str, ...]
    period: str
    start: str
    end: str
    chunks: int
    elapsed_seconds: float
    info: Mapping[str, Any] = field(default_factory=dict)  # xtdata's per-code answer, often empty


ProgressCallback = Callable[[DownloadProgress], None]
#: Receives ``{code: tick dict}`` pushes; called on an upstream thread, so it must only hand data over.
QuoteCallback = Callable[[dict[str, dict[str, Any]]], None]


class MarketSource(ABC):
    """A market-data source for the API layer.

    Contract every implementation must meet:

    * **Lifecycle.** ``start()`` before any data call, ``stop()`` once; both are awaited by the app's
      lifespan. ``start()`` must not raise just because the upstream is down: it reports ``UNAVAILABLE`` in
      :meth:`status` and keeps trying to reconnect. Data calls while unavailable raise ``SourceUnavailable``.
    * **Never block the event loop.** Every data method is ``async`` and does its blocking work elsewhere
      (for xtdata: on the one executor thread). :meth:`status`, :meth:`capabilities` and :attr:`name` are
      synchronous, cheap, and must never wait on upstream work: liveness and readiness use them.
    * **Canonical inputs.** Codes are canonical ``XXXXXX.SH|SZ|BJ`` (see :mod:`qmtgate.codes`), dates are
      strings ``''`` / ``'YYYYMMDD'`` / ``'YYYYMMDDHHMMSS'`` in Asia/Shanghai (never ``datetime``: xtdata
      converts those in the host's zone). The API layer validates; sources may re-check cheaply.
    * **xtdata shapes and units.** Results keep xtdata's own shapes so that the xtquant drop-in can serve them
      unchanged: ``snapshot`` -> ``{code: tick dict}``, ``history`` -> ``{code: DataFrame(times x fields)}``
      with string index labels and ``time`` in epoch ms, volume in 手, amount in 元. Results may be shared
      between concurrent callers: treat them as read-only.
    * **Empty is not an error, failure is.** Unknown codes are simply absent from ``snapshot`` and map to
      empty frames in ``history``, as in xtdata. Upstream failures raise typed errors from
      :mod:`qmtgate.errors`: ``SourceTimeout``, ``SourceBusy``, ``SourceUnavailable``, ``SourceError``,
      ``Unsupported``, ``InvalidPeriod``/``BadRequest`` for arguments the source rejects.
    * **Capabilities tell the truth.** A feature reported False must raise ``Unsupported`` when used.
    * **Market time.** :meth:`now_ms` is the market's clock (wall time for QMT, the simulator's clock for the
      simulated market, which replays a past session outside trading hours). Session logic uses it.
    * **Subscriptions die with the connection.** After a reconnect (a ``connected`` or ``resubscribed``
      event on :attr:`events`, with a new connection number) the caller must subscribe again; callbacks
      run on upstream threads and must only hand data over.
    * **Events, not polling.** Connection changes are announced on :attr:`events`
      (:mod:`qmtgate.source.events`); ``start()`` binds them to the running loop.
    """

    #: "xtquant" for the real terminal, "simulated" for the built-in market.
    name: str

    @abstractmethod
    async def start(self) -> None:
        """Start workers and connect; do not raise when the upstream is merely down."""

    @abstractmethod
    async def stop(self) -> None:
        """Release everything started by :meth:`start`, in reverse order."""

    @abstractmethod
    def status(self) -> SourceStatus:
        """Return the current state without touching the upstream."""

    def is_connected(self) -> bool:
        """``status().connected`` without building the whole status (asked on every cached read)."""
        return self.status().connected

    @property
    def events(self) -> SourceEvents:
        """Where the source announces connected / disconnected / resubscribed / stale."""
        events: SourceEvents | None = self.__dict__.get("_source_events")
        if events is None:
            events = self.__dict__["_source_events"] = SourceEvents()
        return events

    def announce(
        self, kind: SourceEventKind, message: str | None = None, stale: tuple[str, ...] = ()
    ) -> SourceEvent:
        """Emit ``kind`` with the source's current connection number and state (any thread)."""
        status = self.status()
        event = SourceEvent(kind, self.name, status.connection, status.connected, message, stale)
        self.events.emit(event)
        return event

    @abstractmethod
    def capabilities(self) -> Capabilities:
        """Return what this source supports (static per source instance)."""

    def now_ms(self) -> int:
        """The market's current time, epoch milliseconds (UTC)."""
        return int(time.time() * 1000)

    async def subscribe_whole_quote(self, codes: Sequence[str], callback: QuoteCallback) -> int:
        """Subscribe to L1 pushes of whole markets (``['SH', 'SZ', 'BJ']``) or codes; return a handle.

        The first push is the full current snapshot, later pushes carry the codes that changed.
        """
        raise Unsupported(f"the {self.name} source cannot push quotes", {"feature": "subscribe"})

    async def subscribe_quote(self, code: str, period: str, callback: QuoteCallback) -> int:
        """Subscribe to pushes of one code (``tick`` or a K-line period); pushes are ``{code: [item, ...]}``."""
        raise Unsupported(f"the {self.name} source cannot push quotes", {"feature": "subscribe"})

    async def unsubscribe(self, handle: int) -> None:
        """Cancel a subscription made by :meth:`subscribe_whole_quote`; unknown handles are ignored."""
        raise Unsupported(f"the {self.name} source cannot push quotes", {"feature": "subscribe"})

    async def market_snapshot(self, markets: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Snapshots of every instrument of whole markets (``get_full_tick(['SH', 'SZ'])``)."""
        raise Unsupported(f"the {self.name} source cannot snapshot whole markets", {"feature": "snapshot"})

    @abstractmethod
    async def snapshot(self, codes: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Latest L1 snapshot per code (xtdata ``get_full_tick`` dicts); codes without data are absent."""

    @abstractmethod
    async def history(
        self,
        codes: Sequence[str],
        period: str = "1d",
        start: str = "",
        end: str = "",
        count: int = -1,
        dividend_type: str = "none",
        fill_data: bool = True,
        fields: Sequence[str] = (),
    ) -> dict[str, pd.DataFrame]:
        """Bars or ticks per code, exactly as ``get_market_data_ex`` (``fields=()`` means all fields).

        ``count=-1`` is everything in ``[start, end]``; ``count=n`` the last n bars ending at ``end``.
        Reads local data only: call :meth:`download_history` first for ranges not yet downloaded.
        """

    @abstractmethod
    async def instrument_details(
        self, codes: Sequence[str], complete: bool = False
    ) -> dict[str, dict[str, Any] | None]:
        """``get_instrument_detail`` per code; None for unknown codes. Cached per trading day."""

    @abstractmethod
    async def instrument_type(self, code: str) -> dict[str, bool]:
        """``get_instrument_type``: only the True flags, e.g. ``{'stock': True}``; ``{}`` when unknown."""

    @abstractmethod
    async def sector_list(self) -> list[str]:
        """Names of the sectors the source knows (``沪深A股``, ``科创板``...)."""

    @abstractmethod
    async def sector_members(self, sector: str) -> list[str]:
        """Codes in a sector; ``[]`` for an unknown sector (as xtdata)."""

    @abstractmethod
    async def trading_dates(self, market: str, start: str = "", end: str = "", count: int = -1) -> list[int]:
        """Trading days of ``market`` as epoch ms of 00:00 CST."""

    @abstractmethod
    async def trading_calendar(self, market: str, start: str = "", end: str = "") -> list[str]:
        """Past trading days and coming non-holiday weekdays as ``'YYYYMMDD'`` (SH/SZ only)."""

    @abstractmethod
    async def holidays(self) -> list[str]:
        """Exchange holidays as ``'YYYYMMDD'`` up to the end of the current year."""

    @abstractmethod
    async def divid_factors(self, code: str, start: str = "", end: str = "") -> pd.DataFrame:
        """Ex-rights events of one code, one row per ex-date (``get_divid_factors``)."""

    @abstractmethod
    async def download_history(
        self,
        codes: Sequence[str],
        period: str,
        start: str = "",
        end: str = "",
        *,
        incrementally: bool | None = None,
        progress: ProgressCallback | None = None,
        urgent: bool = False,
    ) -> DownloadResult:
        """Download history into the local store, in short chunks so snapshots are not starved.

        ``progress`` is called on the event loop, never on an xtdata thread. ``urgent`` downloads run on the
        history lane (a read is waiting for them) instead of behind background download jobs.
        """

    async def unknown_codes(self, codes: Sequence[str]) -> list[str]:
        """The codes of ``codes`` the source does not know (existence only, no details needed).

        Sources with an instrument index override this so that N codes never cost N upstream calls."""
        details = await self.instrument_details(codes)
        return [code for code in codes if details.get(code) is None]

    async def warm_reference(self) -> None:
        """Load what existence checks need (the instrument index) ahead of the first request; optional."""
        return None

    async def instrument_detail(self, code: str, complete: bool = False) -> dict[str, Any]:
        """One instrument's detail; raises :class:`UnknownCode` instead of returning None."""
        detail = (await self.instrument_details([code], complete)).get(code)
        if detail is None:
            raise UnknownCode(f"unknown code {code!r}", {"code": code, "source": self.name})
        return detail


def check_period(period: str, allowed: Sequence[str] = HISTORY_PERIODS) -> str:
    """Return ``period`` if xtdata accepts it, else raise :class:`InvalidPeriod` listing the valid ones."""
    if period not in allowed:
        raise InvalidPeriod(
            f"invalid period {period!r}; expected one of {', '.join(allowed)}",
            {"period": period, "allowed": list(allowed)},
        )
    return period
