"""Webhook alerts: source disconnects and reconnects, stale markets during trading hours, repeated errors.

Alerts are about *conditions*, not events, so that one outage is one alert: a condition that becomes active
sends one alert, sends a reminder only after ``repeat_seconds`` if it is still active, and sends one
"resolved" message when it clears. On top of that a token bucket caps everything sent (``max_per_minute``)
in case several conditions flap at once. Every alert is also logged (WARNING), webhooks or not.

Payload formats: ``json`` (generic: kind, severity, title, text, details, host, time, resolved), ``wecom``
(企业微信 group robot, text message), ``dingtalk`` (钉钉 robot, text; with a secret, the ``timestamp`` and
``sign`` URL parameters of 加签), ``feishu`` (飞书 robot, text; with a secret, ``timestamp`` and ``sign`` in
the body). Robots with keyword security need the keyword ``qmtgate``, which every message contains.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote_plus

from qmtgate.config import AlertSettings, WebhookSettings
from qmtgate.security.ratelimit import RateLimiter
from qmtgate.source.events import SourceEvent, SourceEventKind

logger = logging.getLogger(__name__)

CST = dt.timezone(dt.timedelta(hours=8))
#: Continuous-trading segments (CST) during which a silent market is stale.
SESSIONS = ((dt.time(9, 30), dt.time(11, 30)), (dt.time(13, 0), dt.time(15, 0)))


@dataclasses.dataclass(frozen=True)
class Alert:
    # source_disconnected, source_reconnected, source_restarted, market_stale, market_recovered, errors,
    # trading_disconnected, trading_reconnected, trading_restarted, trading_unknown_outcome
    kind: str
    severity: str  # critical | warning | info
    title: str
    text: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    resolved: bool = False
    time: float = dataclasses.field(default_factory=time.time)


def render(
    alert: Alert, hook: WebhookSettings, *, host: str | None = None, now: float | None = None
) -> tuple[str, dict[str, Any]]:
    """URL and JSON body of ``alert`` for ``hook``'s format (signed when the hook has a secret)."""
    host = host or socket.gethostname()
    stamp = dt.datetime.fromtimestamp(alert.time, CST).isoformat(timespec="seconds")
    mark = "✅" if alert.resolved else ("🔴" if alert.severity == "critical" else "⚠️")
    text = f"{mark} qmtgate [{host}] {alert.title}\n{alert.text}\n{stamp}"
    url = hook.url
    if hook.format == "wecom":
        return url, {"msgtype": "text", "text": {"content": text}}
    if hook.format == "dingtalk":
        if hook.secret:
            ts = str(int((now if now is not None else time.time()) * 1000))
            digest = hmac.new(hook.secret.encode(), f"{ts}\n{hook.secret}".encode(), hashlib.sha256).digest()
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}timestamp={ts}&sign={quote_plus(base64.b64encode(digest).decode())}"
        return url, {"msgtype": "text", "text": {"content": text}}
    if hook.format == "feishu":
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
        if hook.secret:
            ts = str(int(now if now is not None else time.time()))
            digest = hmac.new(f"{ts}\n{hook.secret}".encode(), b"", hashlib.sha256).digest()
            body.update(timestamp=ts, sign=base64.b64encode(digest).decode())
        return url, body
    return url, {
        "source": "qmtgate",
        "host": host,
        "kind": alert.kind,
        "severity": alert.severity,
        "resolved": alert.resolved,
        "title": alert.title,
        "text": alert.text,
        "details": alert.details,
        "time": stamp,
    }


class AlertSender:
    """Deliver alerts to every webhook (each in the background; failures are logged, not retried)."""

    def __init__(
        self,
        hooks: Sequence[WebhookSettings],
        max_per_minute: int = 10,
        *,
        on_sent: Callable[[Alert, str], None] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.hooks = list(hooks)
        self._bucket = RateLimiter(max_per_minute / 60.0, max_per_minute)
        self._on_sent = on_sent or (lambda alert, outcome: None)
        self._timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent: list[Alert] = []  # accepted alerts, newest last (bounded)

    def send(self, alert: Alert) -> bool:
        """Queue ``alert`` for delivery; False when the global cap dropped it."""
        log = logger.info if alert.resolved or alert.severity == "info" else logger.warning
        if self._bucket.take("all"):
            logger.warning("alert dropped by the alert rate cap: %s", alert.title)
            self._on_sent(alert, "capped")
            return False
        log("ALERT %s: %s (%s)", alert.kind, alert.title, alert.text)
        self.sent = [*self.sent[-99:], alert]
        for hook in self.hooks:
            task = asyncio.create_task(self._post(alert, hook), name=f"qmtgate-alert-{alert.kind}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not self.hooks:
            self._on_sent(alert, "logged")
        return True

    async def _post(self, alert: Alert, hook: WebhookSettings) -> None:
        import httpx  # here, not at import: with rich and pygments it is ~15 MB a gateway without webhooks never needs

        url, body = render(alert, hook)
        try:
            async with httpx.AsyncClient(timeout=self._timeout, trust_env=False) as client:
                response = await client.post(url, json=body)
            ok = response.status_code < 300
            if not ok:
                logger.warning("alert webhook %s answered %d", hook.format, response.status_code)
        except httpx.HTTPError as e:
            ok = False
            logger.warning("alert webhook %s failed: %s", hook.format, e)
        self._on_sent(alert, "sent" if ok else "failed")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class _Condition:
    __slots__ = ("active", "last_sent", "since")

    def __init__(self) -> None:
        self.active = False
        self.since = 0.0
        self.last_sent = 0.0


class AlertMonitor:
    """Check the market activity and error counters periodically and follow the source's events; raise
    and clear conditions.

    The source part: its ``disconnected`` / ``connected`` events (:mod:`qmtgate.source.events`) tell the
    monitor about every outage, however short; a check raises ``source_disconnected`` while the source is
    still down (so a restart shorter than a check interval is one ``source_restarted`` notice, not a
    critical alert and its all-clear), and a ``connected`` event clears it at once.

    ``error_count()`` returns a monotonic total of errors (upstream call errors + 5xx answers); the monitor
    alerts when it grows by ``error_threshold`` within ``error_window`` seconds.
    """

    def __init__(
        self,
        settings: AlertSettings,
        sender: AlertSender,
        source: Any,
        *,
        markets: Sequence[str] = (),
        last_tick_age: Callable[[str], float | None] = lambda market: None,
        is_trading_day: Callable[[dt.date], Any] | None = None,
        error_count: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.sender = sender
        self.source = source
        self.markets = list(markets)
        self.last_tick_age = last_tick_age
        self.is_trading_day = is_trading_day
        self.error_count = error_count
        self._clock = clock
        #: when watching began: a market never heard from has been silent since then, not since its open
        self._watching_since = clock()
        self._conditions: dict[str, _Condition] = {}
        self._dropped = False  # a disconnected event came since the source was last seen connected
        self._unlisten: Callable[[], None] | None = None
        self._errors: deque[tuple[float, int]] = deque()
        self._task: asyncio.Task[None] | None = None
        #: the trading service (docs/trading.md), bound once trading started (``bind_trading``)
        self.trading: Any = None
        self._trading_seen = (0, 0)  # (disconnects, unknown outcomes) already alerted on

    def bind_trading(self, service: Any) -> None:
        self.trading = service
        self._trading_seen = (service.disconnects, len(service.unknown_coids))

    async def start(self) -> None:
        events = getattr(self.source, "events", None)
        if events is not None:
            self._unlisten = events.subscribe(self.on_source_event)
        self._task = asyncio.create_task(self._run(), name="qmtgate-alert-monitor")

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.sender.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # a monitoring bug must not end monitoring
                logger.exception("alert check failed")
            await asyncio.sleep(self.settings.check_interval)

    async def check(self) -> None:
        """One round of every check (tests call it directly)."""
        self._check_source()
        await self._check_markets()
        self._check_errors()
        self._check_trading()

    # -- conditions ------------------------------------------------------------------------------------

    def _raise(self, key: str, alert: Alert) -> None:
        cond = self._conditions.setdefault(key, _Condition())
        now = self._clock()
        if not cond.active:
            cond.active, cond.since, cond.last_sent = True, now, now
            self.sender.send(alert)
        elif now - cond.last_sent >= self.settings.repeat_seconds:
            cond.last_sent = now
            minutes = (now - cond.since) / 60
            self.sender.send(dataclasses.replace(alert, title=f"{alert.title} (still, {minutes:.0f} min)"))

    def _clear(self, key: str, alert: Alert) -> None:
        cond = self._conditions.get(key)
        if cond is not None and cond.active:
            cond.active = False
            self.sender.send(alert)

    def active(self) -> list[str]:
        return sorted(key for key, cond in self._conditions.items() if cond.active)

    # -- checks ----------------------------------------------------------------------------------------

    def on_source_event(self, event: SourceEvent) -> None:
        """Source listener (on the loop)."""
        if event.kind is SourceEventKind.DISCONNECTED:
            self._dropped = True
        elif event.kind is SourceEventKind.CONNECTED:
            dropped, self._dropped = self._dropped, False
            cond = self._conditions.get("source")
            if cond is not None and cond.active:
                self._reconnected(event.source, event.connection)
            elif dropped:  # down and back between two checks (e.g. a quick QMT restart): one notice
                self.sender.send(
                    Alert(
                        "source_restarted",
                        "warning",
                        f"{event.source} source reconnected after a short outage",
                        "The source dropped and came back between checks; subscriptions were restored.",
                        {"source": event.source, "epoch": event.connection},
                    )
                )

    def _reconnected(self, name: str, connection: int) -> None:
        self._clear(
            "source",
            Alert(
                "source_reconnected",
                "info",
                f"{name} source reconnected",
                "The source is connected again; subscriptions are restored.",
                {"source": name, "epoch": connection},
                resolved=True,
            ),
        )

    def _check_source(self) -> None:
        status = self.source.status()
        name = status.name
        if not status.connected:
            self._raise(
                "source",
                Alert(
                    "source_disconnected",
                    "critical",
                    f"{name} source disconnected",
                    f"QMT / the {name} source is not reachable: {status.message or 'no answer'}. "
                    "Data is not updating; the gateway keeps reconnecting.",
                    {"source": name, "state": status.state.value, "message": status.message},
                ),
            )
        elif self._conditions.get("source") is not None and self._conditions["source"].active:
            self._reconnected(name, status.connection)  # a source without events, or the event was missed

    async def _check_markets(self) -> None:
        if not self.markets or not self.source.is_connected():
            return
        since_open = await self._seconds_into_session()
        if since_open is None:  # not in a continuous-trading segment: silence is normal
            for market in self.markets:
                self._clear_stale(market)
            return
        limit = self.settings.stale_seconds
        for market in self.markets:
            age = self.last_tick_age(market)
            if age is None:  # no tick yet: silent since the gateway began watching (a start mid-session)
                age = self._clock() - self._watching_since
            silent = min(age, since_open)
            if silent > limit:
                self._raise(
                    f"stale:{market}",
                    Alert(
                        "market_stale",
                        "warning",
                        f"{market} quotes stale",
                        f"No {market} tick for {silent:.0f} s during trading hours (limit {limit:g} s). "
                        "Check QMT's quote server connection (行情服务器).",
                        {"market": market, "silent_seconds": round(silent, 1)},
                    ),
                )
            else:
                self._clear_stale(market)

    def _clear_stale(self, market: str) -> None:
        self._clear(
            f"stale:{market}",
            Alert(
                "market_recovered",
                "info",
                f"{market} quotes flowing again",
                f"{market} ticks arrive again.",
                {"market": market},
                resolved=True,
            ),
        )

    async def _seconds_into_session(self) -> float | None:
        now = dt.datetime.fromtimestamp(self.source.now_ms() / 1000, CST)
        clock = now.time()
        for start, end in SESSIONS:
            if start <= clock < end:
                break
        else:
            return None
        if self.is_trading_day is not None:
            try:
                if not await self.is_trading_day(now.date()):
                    return None
            except Exception:  # calendar unavailable (source down): the source alert covers it
                return None
        opened = dt.datetime.combine(now.date(), start, CST)
        return (now - opened).total_seconds()

    def _check_errors(self) -> None:
        now = self._clock()
        total = self.error_count()
        source = self._conditions.get("source")
        if source is not None and source.active:
            # calls fail while the source is down; that outage already has its alert
            self._errors.clear()
            self._errors.append((now, total))
            return
        self._errors.append((now, total))
        # keep one sample at or before the window start: it is the baseline the window is measured from
        while len(self._errors) > 1 and now - self._errors[1][0] >= self.settings.error_window:
            self._errors.popleft()
        recent = total - self._errors[0][1]
        if recent >= self.settings.error_threshold:
            self._raise(
                "errors",
                Alert(
                    "errors",
                    "warning",
                    "repeated errors",
                    f"{recent} errors in the last {self.settings.error_window:g} s "
                    "(upstream call failures and 5xx answers). See the gateway log.",
                    {"errors": recent, "window_seconds": self.settings.error_window},
                ),
            )
        elif recent == 0:
            self._clear(
                "errors",
                Alert("errors_cleared", "info", "errors stopped", "No new errors.", resolved=True),
            )

    # -- trading ---------------------------------------------------------------------------------------

    def _check_trading(self) -> None:
        """The trader's connection (a condition, like the source's) and every ``unknown`` outcome (an
        event: each one is an order the gateway cannot say is live or not, so each gets its alert)."""
        service = self.trading
        if service is None:
            return
        disconnects, unknown = service.disconnects, len(service.unknown_coids)
        seen_disconnects, seen_unknown = self._trading_seen
        self._trading_seen = (disconnects, unknown)
        error = service.connect_error
        connected = service.lane.connected and error is None
        account = service.settings.account_id
        cond = self._conditions.get("trading")
        if not connected:
            reason = error.message if error is not None else "on_disconnected: the trader lost QMT"
            self._raise(
                "trading",
                Alert(
                    "trading_disconnected",
                    "critical",
                    f"trader for account {account} disconnected",
                    f"{reason}. No order can be placed or cancelled through the gateway and protective "
                    "orders cannot fire; the gateway keeps reconnecting with a new session.",
                    {"account": account, "reason": error.reason if error is not None else "disconnected"},
                ),
            )
        elif cond is not None and cond.active:
            self._clear(
                "trading",
                Alert(
                    "trading_reconnected",
                    "info",
                    f"trader for account {account} reconnected",
                    "The trader is connected again (new session); orders were reconciled.",
                    {"account": account, "session_id": service.lane.session_id},
                    resolved=True,
                ),
            )
        elif disconnects > seen_disconnects:
            self.sender.send(
                Alert(
                    "trading_restarted",
                    "warning",
                    f"trader for account {account} reconnected after a short outage",
                    "The trader dropped and came back between checks; orders were reconciled.",
                    {"account": account, "disconnects": disconnects - seen_disconnects},
                )
            )
        for coid in service.unknown_coids[seen_unknown:unknown]:
            self.sender.send(
                Alert(
                    "trading_unknown_outcome",
                    "critical",
                    f"order {coid} outcome unknown",
                    f"The SDK did not answer order {coid} in time: it may be live. It is never retried; "
                    "the gateway reconciles it from QMT's pushes and queries. Check it in the terminal.",
                    {"client_order_id": coid, "account": account},
                )
            )
