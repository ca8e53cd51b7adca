"""Protective orders held by the gateway: stop-loss, take-profit, trailing stop, per position or per order.

They live in the gateway, not at the exchange: they act only while it runs, is connected to QMT and
receives fresh quotes (docs/trading.md, "Protective orders"). The engine:

* keeps every protection in the audit database (:mod:`protect_store`), written before it answers;
* watches the ticks of the codes with active protections through a *feed* (a hub consumer the app
  wires in, ``set_codes``), and ignores quotes older than ``trading.protect.stale_seconds`` (market
  clock), quotes outside continuous trading and quotes of a suspended or halted code (its phase in
  :data:`qmtgate.vocab.HALTED_PHASES`: its last price is yesterday's close or the price before the halt,
  not one anyone can sell at; counted in ``halted_skips``);
* arms a per-order protection when its order fills (the service's trade pushes and, at start, its
  queries), for at most the filled volume;
* fires through the normal order path (:meth:`TradingService.place`: idempotency, pre-trade risk, the
  audit trail) with a deterministic ``client_order_id`` per trigger, recorded *before* it is placed: a
  restart in between re-places the same id, which replays the first outcome and never sends twice;
* emits every trigger as an account event (``protect.triggered`` / ``protect.failed`` /
  ``protect.blocked``) with an audit row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Iterable
from typing import Any, Protocol

from qmtgate.config import TradingProtectSettings
from qmtgate.errors import BadRequest, NotFound, QmtgateError
from qmtgate.source.trading.errors import TradingHalted, TradingUnavailable
from qmtgate.source.trading.protect_rules import (
    FINAL,
    KINDS,
    Protection,
    in_continuous_session,
    observe,
    protective_price,
    sell_volume,
)
from qmtgate.source.trading.protect_store import ProtectionStore
from qmtgate.source.trading.risk import Order
from qmtgate.source.trading.service import TradingService
from qmtgate.vocab import ORDER_FINAL_STATUSES, is_halted

logger = logging.getLogger(__name__)

WATCHED = ("pending", "armed")
#: Risk refusals of a protective sell that clear by themselves: it stays armed and fires again.
TRANSIENT_RULES = frozenset({"orders_per_second", "trading_hours"})
CTX = {"request_id": None, "key_id": "protect"}


class Feed(Protocol):
    async def set_codes(self, codes: Iterable[str]) -> None: ...


class ProtectionEngine:
    def __init__(
        self,
        service: TradingService,
        settings: TradingProtectSettings,
        store: ProtectionStore | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.store = store if store is not None else ProtectionStore(service.audit)
        self.feed: Feed | None = None
        self.protections: dict[str, Protection] = {}
        self.quotes: dict[str, tuple[float, int]] = {}  # code -> (last price, tick ts ms)
        self.stale_skips = 0  # ticks that would have been checked but were stale
        self.halted_skips = 0  # ticks of a suspended / halted code: never a trigger
        self.halted: set[str] = set()  # watched codes whose latest tick says suspended / halted
        self.triggers: dict[str, int] = {}  # "kind:outcome" -> count
        self._lock = asyncio.Lock()  # one change / trigger at a time
        self._firing: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._codes: frozenset[str] = frozenset()
        self._session_second, self._session_open = -1, False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load every stored protection and settle the ones a restart interrupted."""
        for p in self.store.load():
            self.protections[p.id] = p
        for p in self.protections.values():
            if p.status == "triggering":
                self._settle_interrupted(p)
        self.service.listeners.append(self._on_event)
        if self.service.lane.connected:
            await self._arm_filled()
        await self._refresh_feed()

    async def stop(self) -> None:
        if self._on_event in self.service.listeners:
            self.service.listeners.remove(self._on_event)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):  # cancelled or failed: stopping anyway
                await task

    def _settle_interrupted(self, p: Protection) -> None:
        """A trigger was recorded but the gateway stopped before recording its outcome: if the order
        path claimed its client_order_id, adopt that outcome (never send again); if not, the sell never
        left, so the protection is armed again (same attempt number, same id)."""
        coid = p.trigger_coid()
        outcome = self.service.audit.outcome(coid)
        if outcome is None:
            p.status, p.order, p.reason = "armed", None, "a restart interrupted a trigger before it was sent"
        else:
            p.status, p.outcome = ("triggered", outcome)
            p.attempt += 1
        self.store.save(p)
        self.service.audit.append(
            "protect.recovered",
            {"id": p.id, "status": p.status, "client_order_id": coid},
            client_order_id=coid,
        )

    # ------------------------------------------------------------------ REST operations

    async def create(self, spec: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
        """A new protection from ``spec`` (validated by the route's model; cross-field rules here)."""
        async with self._lock:
            coid = spec.get("client_order_id")
            code = spec.get("code")
            filled = 0
            status = "armed"
            if coid:
                entry = self.service.audit.entry(coid)
                if entry is None:
                    raise NotFound(f"no order with client_order_id {coid!r} to attach a protection to")
                request = entry["request"]
                if request.get("side") != "buy":
                    raise BadRequest("a per-order protection attaches to a buy order")
                if code and code != request["code"]:
                    raise BadRequest(f"order {coid!r} is for {request['code']}, not {code}")
                code = request["code"]
                status = "pending"
            if not code:
                raise BadRequest("give the code (per position) or the client_order_id of a buy (per order)")
            now = int(time.time() * 1000)
            p = Protection(
                id=secrets.token_hex(5),
                code=code,
                kind=spec["kind"],
                stop_price=spec.get("stop_price"),
                target_price=spec.get("target_price"),
                trail=spec.get("trail"),
                trail_ratio=spec.get("trail_ratio"),
                volume=spec.get("volume"),
                band=spec.get("band"),
                client_order_id=coid,
                status=status,
                filled=filled,
                created_ms=now,
            )
            validate(p)
            with self.service.audit.transaction():
                self.store.save(p)
                self.service.audit.append("protect.create", p.to_dict(), client_order_id=coid, **ctx)
            self.protections[p.id] = p
        if coid and self.service.lane.connected:
            await self._arm_filled()
        await self._refresh_feed()
        return self.view(p)

    async def change(self, pid: str, changes: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            p = self._get(pid)
            if p.status not in WATCHED:
                raise BadRequest(f"protection {pid} is {p.status}: only pending or armed ones can change")
            candidate = Protection.from_dict({**p.to_dict(), **changes})
            if "trail" in changes and changes["trail"] is not None:
                candidate.trail_ratio = None
            if "trail_ratio" in changes and changes["trail_ratio"] is not None:
                candidate.trail = None
            validate(candidate)
            with self.service.audit.transaction():
                self.store.save(candidate)
                self.service.audit.append("protect.change", {"id": pid, **changes}, **ctx)
            self.protections[pid] = candidate
        return self.view(candidate)

    async def cancel(self, pid: str, ctx: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            p = self._get(pid)
            if p.status in FINAL or p.status == "triggering":
                raise BadRequest(f"protection {pid} is {p.status}: it cannot be cancelled")
            p.status, p.reason = "cancelled", "cancelled by request"
            with self.service.audit.transaction():
                self.store.save(p)
                self.service.audit.append("protect.cancel", {"id": pid}, **ctx)
        await self._refresh_feed()
        return self.view(p)

    def get(self, pid: str) -> dict[str, Any]:
        return self.view(self._get(pid))

    def list(self, status: str | None = None, code: str | None = None) -> list[dict[str, Any]]:
        return [
            self.view(p)
            for p in self.protections.values()
            if (status is None or p.status == status) and (code is None or p.code == code)
        ]

    def _get(self, pid: str) -> Protection:
        p = self.protections.get(pid)
        if p is None:
            raise NotFound(f"no protection {pid!r}")
        return p

    def view(self, p: Protection) -> dict[str, Any]:
        """The stored protection plus the quote it last saw and whether that quote is stale now."""
        out = p.to_dict()
        out.pop("extra", None)
        quote = self.quotes.get(p.code)
        age = None if quote is None else max(self.service.lane.now_ms() - quote[1], 0) / 1000
        out["last_price"] = None if quote is None else quote[0]
        out["quote_age_seconds"] = age
        out["stale"] = p.status in WATCHED and (age is None or age > self.settings.stale_seconds)
        out["halted"] = p.code in self.halted  # suspended / halted now: it cannot fire until trading resumes
        return out

    def stale_count(self) -> int:
        """Active protections without a fresh quote (a metric: they would not fire now)."""
        return sum(1 for p in self.protections.values() if p.status == "armed" and self.view(p)["stale"])

    # ------------------------------------------------------------------ feed and ticks

    async def _refresh_feed(self) -> None:
        codes = frozenset(p.code for p in self.protections.values() if p.status in WATCHED)
        if codes == self._codes:
            return
        self._codes = codes
        if self.feed is not None:
            try:
                await self.feed.set_codes(sorted(codes))
            except Exception:
                self._codes = frozenset()  # tried again at the next change
                logger.exception("protective orders: could not subscribe %s", sorted(codes))

    def on_ticks(self, rows: Iterable[dict[str, Any]]) -> None:
        """Feed callback (event loop): each row has ``code``, ``last_price``, ``ts`` (market ms)."""
        now = self.service.lane.now_ms()
        stale_ms = self.settings.stale_seconds * 1000
        armed: dict[str, list[Protection]] = {}
        for p in self.protections.values():
            if p.status == "armed":
                armed.setdefault(p.code, []).append(p)
        for row in rows:
            code, last, ts = row.get("code"), row.get("last_price"), row.get("ts")
            if code not in self._codes or last is None or ts is None:
                continue
            prev = self.quotes.get(code)
            if prev is not None and ts < prev[1]:  # an older quote (a replayed seed): not news
                continue
            if is_halted(row.get("phase")):
                # suspended / halted: its last price (yesterday's close, or the last trade before the
                # halt) is no price to sell at, and no news about the price: never checked, not kept
                self.halted_skips += 1
                self.halted.add(code)
                continue
            self.halted.discard(code)
            self.quotes[code] = (float(last), int(ts))
            if now - ts > stale_ms:
                self.stale_skips += 1
                continue
            second = int(ts) // 1000  # a burst shares its timestamps: one session check per second
            if second != self._session_second:
                self._session_second, self._session_open = second, in_continuous_session(second * 1000)
            if not self._session_open:
                continue
            for p in armed.get(code, ()):
                if p.status == "armed" and p.id not in self._firing:
                    peak = p.peak
                    fired = observe(p, float(last))
                    if p.peak != peak and not fired:  # a trailing stop's new high survives a restart
                        self.store.save(p)
                    if fired:
                        self._spawn(self._fire(p, float(last), int(ts)))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ triggers

    async def _fire(self, p: Protection, last: float, ts: int) -> None:
        self._firing.add(p.id)
        try:
            await self._fire_locked(p, last, ts)
        except Exception:
            logger.exception("protective order %s: trigger failed", p.id)
            if p.status == "triggering":  # as after a restart: adopt what the order path recorded
                self._settle_interrupted(p)
        finally:
            self._firing.discard(p.id)

    async def _fire_locked(self, p: Protection, last: float, ts: int) -> None:
        async with self._lock:
            if p.status != "armed" or self.protections.get(p.id) is not p:  # changed or cancelled meanwhile
                return
            service = self.service
            if service.halted and not self.settings.act_when_halted:
                self._block(p, "halted", "the kill switch suspends protective orders (act_when_halted=false)")
                return
            if not service.lane.connected or service.connect_error is not None:
                self._block(p, "disconnected", "the trader is not connected to QMT")
                return
            try:
                probe = Order(p.code, "sell", 0, "limit", 0.0)  # a sell's inputs: limits, tick, sellable
                now = service.lane.now_ms()
                market, account = await service._on_lane(lambda: service._market_and_account(probe, now))
            except Exception as exc:  # not connected, unknown code: it fires again on the next tick
                self._block(p, "no_account_data", f"could not read limits / position: {exc}")
                return
            cap = p.volume
            if p.client_order_id is not None:
                cap = p.filled if cap is None else min(cap, p.filled)
            volume = sell_volume(p.code, account.sellable, cap)
            if volume <= 0:
                self._block(
                    p, "nothing_sellable", f"nothing sellable today (T+1): sellable {account.sellable}"
                )
                return
            band = p.band if p.band is not None else self.settings.band
            price = protective_price(last, band, market.down_limit, market.tick)
            coid = p.trigger_coid()
            p.order = {
                "code": p.code,
                "side": "sell",
                "volume": volume,
                "price_type": "limit",
                "price": price,
                "strategy_name": "qmtgate-protect",
                "remark": f"{p.kind} {p.id}",
                "client_order_id": coid,
            }
            p.trigger = {"last_price": last, "ts": ts, "peak": p.peak, "band": band}
            p.status, p.reason = "triggering", None
            self.store.save(p)  # before sending: a restart finds the id and never sends twice
            try:
                outcome = await service.place(dict(p.order), CTX, protective=True)
            except QmtgateError as exc:
                rule = getattr(exc, "rule", None)
                if isinstance(exc, TradingUnavailable | TradingHalted) or rule in TRANSIENT_RULES:
                    # refused before the id was claimed: armed again, the same id fires next time (a
                    # halt turned on after the check above suspends it like one turned on before)
                    reason = rule or ("halted" if isinstance(exc, TradingHalted) else "disconnected")
                    p.status, p.order = "armed", None
                    self._block(p, reason, exc.message)
                    return
                p.status, p.outcome = "failed", {"error": exc.to_body()["error"]}
                p.reason = exc.message
            else:
                p.outcome = outcome
                p.status = (
                    "triggered" if outcome.get("status") in ("accepted", "unknown", "dry_run") else "failed"
                )
                if p.status == "failed":
                    p.reason = outcome.get("error_msg") or outcome.get("status")
            p.attempt += 1
            self.store.save(p)
            kind = f"protect.{p.status}"
            label = f"{p.kind}:{(p.outcome or {}).get('status') or 'refused'}"
            self.triggers[label] = self.triggers.get(label, 0) + 1
            service._metric("protect", label)
            service.emit_event(kind, self.view(p), client_order_id=coid)
            logger.warning(
                "protective %s %s on %s fired at %.3f: %s %s", p.kind, p.id, p.code, last, p.status, p.outcome
            )
        await self._refresh_feed()

    def _block(self, p: Protection, reason: str, message: str) -> None:
        """The protection fired but cannot sell now; it stays armed. One event per change of reason."""
        if p.reason == message:
            return
        p.reason = message
        self.store.save(p)
        self.service.emit_event("protect.blocked", {**self.view(p), "blocked": reason})

    # ------------------------------------------------------------------ per-order arming

    def _on_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind in ("trade", "order") and any(
            p.status in WATCHED and p.client_order_id == data.get("order_remark")
            for p in self.protections.values()
        ):
            self._spawn(self._arm_filled())

    async def _arm_filled(self) -> None:
        """Per-order protections follow their order's fills (the SDK's trades and orders): armed at the
        first fill, for the shares filled so far; dropped when the order ends without a fill."""
        attached = [p for p in self.protections.values() if p.status in WATCHED and p.client_order_id]
        if not attached:
            return
        try:
            trades, orders = await self.service.trades(), await self.service.orders()
        except Exception:
            logger.exception("protective orders: cannot query fills")
            return
        filled: dict[str, int] = {}
        for t in trades:
            remark = t.get("order_remark")
            filled[remark] = filled.get(remark, 0) + int(t.get("traded_volume") or 0)
        final = {o.get("order_remark") for o in orders if o.get("order_status") in ORDER_FINAL_STATUSES}
        async with self._lock:
            for p in attached:
                if p.status not in WATCHED:
                    continue
                got = filled.get(p.client_order_id or "", 0)
                if got > p.filled:
                    p.filled = got
                    if p.status == "pending":
                        p.status = "armed"
                        self.store.save(p)
                        self.service.emit_event("protect.armed", self.view(p), p.client_order_id)
                    else:
                        self.store.save(p)
                elif got == 0 and p.status == "pending" and p.client_order_id in final:
                    p.status, p.reason = "cancelled", "its order ended without a fill"
                    self.store.save(p)
                    self.service.emit_event("protect.cancelled", self.view(p), p.client_order_id)
        await self._refresh_feed()


def validate(p: Protection) -> None:
    """Cross-field rules; each refusal a 400 naming the field."""
    if p.kind not in KINDS:
        raise BadRequest(f"kind must be one of {KINDS}")
    need = {"stop_loss": "stop_price", "take_profit": "target_price"}.get(p.kind)
    if need is not None and getattr(p, need) is None:
        raise BadRequest(f"a {p.kind} needs {need}")
    if p.kind == "trailing_stop" and (p.trail is None) == (p.trail_ratio is None):
        raise BadRequest("a trailing_stop needs exactly one of trail (元) and trail_ratio")
    for name in ("stop_price", "target_price", "trail", "trail_ratio"):
        value = getattr(p, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise BadRequest(f"{name} must be a positive number")
    if p.trail_ratio is not None and p.trail_ratio >= 1:
        raise BadRequest("trail_ratio must be below 1")
    if p.volume is not None and p.volume <= 0:
        raise BadRequest("volume must be positive")
