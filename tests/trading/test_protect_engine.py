"""The protective-order engine against fed tick sequences (docs/trading.md, "Protective orders"): stop-loss,
take-profit and trailing stop fire once at the right tick with a marketable limit inside the band; stale
or out-of-session quotes fire nothing; a restart in the middle of a trigger never sends a second order; the
kill switch lets protective sells through unless told otherwise; per-order protections arm on fills.

The service is a small stand-in with the real audit database (the store and the idempotency ledger live
there), so these run in milliseconds; the order path itself is covered on the simulator."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qmtgate.config import TradingProtectSettings
from qmtgate.errors import BadRequest
from qmtgate.source.trading.audit import AuditTrail
from qmtgate.source.trading.errors import RiskRefused
from qmtgate.source.trading.protect import ProtectionEngine
from qmtgate.source.trading.protect_rules import Protection, observe, protective_price, sell_volume
from qmtgate.source.trading.risk import BOARD_LOTS, AccountInfo, MarketInfo, board_of, lot_refusal

CST = dt.timezone(dt.timedelta(hours=8))
T0 = int(dt.datetime(2025, 6, 12, 10, 30, tzinfo=CST).timestamp() * 1000)
CODE = "600000.SH"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeService:
    """What the engine uses of TradingService; ``place`` is idempotent on client_order_id like the real
    one (the ledger is the real audit database)."""

    def __init__(self, audit: AuditTrail, sellable: int = 500) -> None:
        self.audit = audit
        self.now = T0
        self.lane = SimpleNamespace(connected=True, now_ms=lambda: self.now)
        self.halted = False
        self.connect_error = None
        self.refuse_next: Exception | None = None
        self.listeners: list[Any] = []
        self.sent: list[dict[str, Any]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.metrics: list[tuple[str, str]] = []
        self.sellable = sellable
        self.fills: list[dict[str, Any]] = []
        self.crash_after_send = False
        self.error_after_send: Exception | None = None

    async def _on_lane(self, fn: Any) -> Any:
        return fn()

    def _market_and_account(self, order: Any, now_ms: int) -> tuple[MarketInfo, AccountInfo]:
        assert order.side == "sell" and now_ms == self.now  # a sell's inputs, at the market's now
        return MarketInfo(up_limit=11.0, down_limit=9.0, tick=0.01, last=10.0), AccountInfo(
            1e6, self.sellable
        )

    async def place(self, req: dict[str, Any], ctx: dict[str, Any], *, protective: bool = False) -> dict:
        coid = req["client_order_id"]
        if self.refuse_next is not None:  # refused before the id is claimed, as the real service does
            exc, self.refuse_next = self.refuse_next, None
            raise exc
        previous = self.audit.outcome(coid)
        if previous is not None:
            return {**previous, "replayed": True}
        outcome = {"client_order_id": coid, "status": "accepted", "order_id": len(self.sent) + 1}
        self.audit.claim(coid, req, outcome)
        self.sent.append({**req, "protective": protective})
        if self.crash_after_send:
            raise asyncio.CancelledError  # the process dies here: nothing after this line runs
        if self.error_after_send is not None:
            raise self.error_after_send
        return outcome

    def emit_event(self, kind: str, data: dict[str, Any], client_order_id: str | None = None) -> None:
        self.audit.append(f"event.{kind}", data, client_order_id=client_order_id)
        self.events.append((kind, data))

    def _metric(self, name: str, label: str, value: float = 0.0) -> None:
        self.metrics.append((name, label))

    async def trades(self) -> list[dict[str, Any]]:
        return self.fills

    async def orders(self) -> list[dict[str, Any]]:
        return []


async def make(tmp_path: Path, **protect: Any) -> tuple[ProtectionEngine, FakeService]:
    service = FakeService(AuditTrail(tmp_path / "audit.sqlite"))
    engine = ProtectionEngine(service, TradingProtectSettings(**protect))  # type: ignore[arg-type]
    await engine.start()
    return engine, service


async def feed(
    engine: ProtectionEngine,
    prices: list[float],
    ts: int | None = None,
    code: str = CODE,
    phase: int | None = 13,
) -> None:
    """One tick per price, 3 s apart from the service's now (which follows), each fully handled; ``phase``
    the ticks' trading phase (13 continuous trading)."""
    service = engine.service
    for price in prices:
        service.now += 3000  # type: ignore[attr-defined]
        at = service.now if ts is None else ts  # type: ignore[attr-defined]
        engine.on_ticks([{"code": code, "last_price": price, "ts": at, "phase": phase}])
        while engine._tasks:
            await asyncio.gather(*engine._tasks, return_exceptions=True)


CTX = {"request_id": "t", "key_id": None}


async def test_stop_loss_fires_once_at_the_first_tick_at_or_below_the_stop(tmp_path: Path) -> None:
    engine, service = await make(tmp_path)
    p = await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 9.8, "volume": 300}, CTX)
    await feed(engine, [10.0, 9.9, 9.81, 9.8, 9.7, 9.5])
    assert len(service.sent) == 1
    order = service.sent[0]
    assert order["client_order_id"] == f"pt-{p['id']}-0" and order["side"] == "sell"
    assert order["volume"] == 300 and order["price"] == 9.61  # ceil(9.8 x 0.98, tick)
    state = engine.get(p["id"])
    assert state["status"] == "triggered" and state["trigger"]["last_price"] == 9.8
    assert [k for k, _ in service.events] == ["protect.triggered"]
    assert service.metrics == [("protect", "stop_loss:accepted")]
    kinds = [r["kind"] for r in service.audit.rows(order["client_order_id"])]
    assert "event.protect.triggered" in kinds


async def test_take_profit_fires_at_the_first_tick_at_or_above_the_target(tmp_path: Path) -> None:
    engine, service = await make(tmp_path, band=0.01)
    p = await engine.create({"kind": "take_profit", "code": CODE, "target_price": 10.5}, CTX)
    await feed(engine, [10.0, 10.2, 10.49, 10.5, 10.6])
    assert len(service.sent) == 1
    assert service.sent[0]["price"] == 10.4 and service.sent[0]["volume"] == 500  # all sellable
    assert engine.get(p["id"])["trigger"]["last_price"] == 10.5


async def test_trailing_stop_follows_the_peak(tmp_path: Path) -> None:
    engine, service = await make(tmp_path)
    p = await engine.create({"kind": "trailing_stop", "code": CODE, "trail": 0.3}, CTX)
    await feed(engine, [10.0, 10.4, 10.2, 10.8, 10.5, 10.51])
    assert service.sent == [] and engine.get(p["id"])["peak"] == 10.8
    await feed(engine, [10.49])
    assert len(service.sent) == 1 and engine.get(p["id"])["trigger"]["peak"] == 10.8


async def test_price_band_never_goes_below_the_lower_limit(tmp_path: Path) -> None:
    engine, service = await make(tmp_path, band=0.1)
    await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 9.5}, CTX)
    await feed(engine, [9.4])
    assert service.sent[0]["price"] == 9.0  # max(9.4 x 0.9, lower limit 9.0)


async def test_stale_quotes_fire_nothing(tmp_path: Path) -> None:
    engine, service = await make(tmp_path, stale_seconds=5)
    p = await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 9.8}, CTX)
    service.now += 60_000
    await feed(engine, [9.0, 8.9], ts=T0)  # a minute old
    assert service.sent == [] and engine.stale_skips == 2
    view = engine.get(p["id"])
    assert view["stale"] and view["status"] == "armed" and view["quote_age_seconds"] >= 60
    assert engine.stale_count() == 1
    await feed(engine, [9.7])  # fresh again
    assert len(service.sent) == 1 and not engine.get(p["id"])["stale"]


async def test_quotes_outside_continuous_trading_fire_nothing(tmp_path: Path) -> None:
    engine, service = await make(tmp_path)
    await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 9.8}, CTX)
    lunch = int(dt.datetime(2025, 6, 12, 12, 0, tzinfo=CST).timestamp() * 1000)
    service.now = lunch
    await feed(engine, [9.0], ts=lunch)
    assert service.sent == []


async def test_ticks_of_a_suspended_or_halted_code_fire_nothing_and_are_counted(tmp_path: Path) -> None:
    """A suspended stock's tick stands at yesterday's close (phase 1); a halted one (17, 20) at the last
    trade before the halt: neither is a price to sell at. Fresh, in continuous trading and far below the
    stop, they still fire nothing; they are counted, the view says halted, and the first tradable tick
    fires."""
    engine, service = await make(tmp_path)
    p = await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 9.8, "volume": 300}, CTX)
    for phase in (1, 17, 20):
        await feed(engine, [9.0, 8.5], phase=phase)
    assert service.sent == [] and engine.halted_skips == 6 and engine.stale_skips == 0
    view = engine.get(p["id"])
    assert view["status"] == "armed" and view["halted"] and view["last_price"] is None
    await feed(engine, [9.7])  # trading again
    assert len(service.sent) == 1 and service.sent[0]["client_order_id"] == f"pt-{p['id']}-0"
    assert engine.get(p["id"])["trigger"]["last_price"] == 9.7 and not engine.get(p["id"])["halted"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([1, 13, 17, 20]), st.integers(500, 1500).map(lambda t: t / 100)),
             min_size=1, max_size=20),
)  # fmt: skip
def test_a_stop_fires_at_the_first_tradable_tick_at_or_below_it_whatever_the_halted_ticks(
    tmp_path_factory: pytest.TempPathFactory, ticks: list[tuple[int, float]]
) -> None:
    """Over any mix of halted and trading ticks: the trigger is the first tick in phase 13 at or below the
    stop (a halted tick never triggers, whatever its price), and every halted tick is counted."""

    async def run() -> None:
        engine, service = await make(tmp_path_factory.mktemp("halted"))
        await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 10.0}, CTX)
        for phase, price in ticks:
            await feed(engine, [price], phase=phase)
        fired_at = next((i for i, (ph, pr) in enumerate(ticks) if ph == 13 and pr <= 10.0), None)
        assert len(service.sent) == (0 if fired_at is None else 1)
        if fired_at is not None:
            (p,) = engine.protections.values()
            assert p.trigger is not None and p.trigger["last_price"] == ticks[fired_at][1]
        # after the trigger the code is no longer watched: only the halted ticks before it are seen
        seen = ticks if fired_at is None else ticks[:fired_at]
        assert engine.halted_skips == sum(1 for phase, _ in seen if phase != 13)

    asyncio.run(run())


async def test_nothing_sellable_blocks_and_stays_armed(tmp_path: Path) -> None:
    engine, service = await make(tmp_path)
    service.sellable = 0
    p = await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 9.8}, CTX)
    await feed(engine, [9.7, 9.6])
    assert service.sent == [] and engine.get(p["id"])["status"] == "armed"
    assert [k for k, _ in service.events] == ["protect.blocked"]  # once, not per tick
    service.sellable = 200
    await feed(engine, [9.5])
    assert len(service.sent) == 1 and service.sent[0]["volume"] == 200


async def test_restart_after_send_adopts_the_outcome_and_never_sends_again(tmp_path: Path) -> None:
    engine, service = await make(tmp_path)
    p = await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 9.8}, CTX)
    service.crash_after_send = True  # sent, then the gateway dies before recording the outcome
    await feed(engine, [9.7])
    assert len(service.sent) == 1 and engine.get(p["id"])["status"] == "triggering"
    # restart: a new engine over the same database
    engine2 = ProtectionEngine(service, TradingProtectSettings())  # type: ignore[arg-type]
    await engine2.start()
    state = engine2.get(p["id"])
    assert state["status"] == "triggered" and state["outcome"]["order_id"] == 1
    await feed(engine2, [9.6, 9.5])
    assert len(service.sent) == 1


async def test_an_error_after_sending_adopts_the_recorded_outcome(tmp_path: Path) -> None:
    engine, service = await make(tmp_path)
    p = await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 9.8}, CTX)
    service.error_after_send = RuntimeError("a bug after the order left")
    await feed(engine, [9.7])
    assert engine.get(p["id"])["status"] == "triggered" and engine.get(p["id"])["outcome"]["order_id"] == 1
    await feed(engine, [9.6])
    assert len(service.sent) == 1


async def test_restart_before_send_rearms_with_the_same_client_order_id(tmp_path: Path) -> None:
    engine, service = await make(tmp_path)
    p = await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 9.8}, CTX)
    stored = engine.protections[p["id"]]  # the trigger was recorded, then the gateway died
    stored.status, stored.order = "triggering", {"client_order_id": stored.trigger_coid()}
    engine.store.save(stored)
    engine2 = ProtectionEngine(service, TradingProtectSettings())  # type: ignore[arg-type]
    await engine2.start()
    assert engine2.get(p["id"])["status"] == "armed"
    await feed(engine2, [9.7, 9.6])
    assert [o["client_order_id"] for o in service.sent] == [f"pt-{p['id']}-0"]


async def test_a_stored_protection_is_remembered_across_restarts(tmp_path: Path) -> None:
    engine, service = await make(tmp_path)
    p = await engine.create({"kind": "trailing_stop", "code": CODE, "trail_ratio": 0.05}, CTX)
    await feed(engine, [10.0, 10.6])  # the peak survives too
    engine2 = ProtectionEngine(service, TradingProtectSettings())  # type: ignore[arg-type]
    await engine2.start()
    assert engine2.get(p["id"])["peak"] == 10.6
    await feed(engine2, [10.1])  # < 10.6 x 0.95 = 10.07? no
    assert service.sent == []
    await feed(engine2, [10.06])
    assert len(service.sent) == 1


async def test_refusals_that_clear_keep_it_armed_and_others_fail_it(tmp_path: Path) -> None:
    engine, service = await make(tmp_path)
    p = await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 9.8}, CTX)
    service.refuse_next = RiskRefused("orders_per_second", "too fast")
    await feed(engine, [9.7])
    assert service.sent == [] and engine.get(p["id"])["status"] == "armed"
    service.lane.connected = False
    await feed(engine, [9.6])
    assert engine.get(p["id"])["reason"] == "the trader is not connected to QMT"
    service.lane.connected = True
    await feed(engine, [9.5])  # the same id, never claimed before
    assert [o["client_order_id"] for o in service.sent] == [f"pt-{p['id']}-0"]
    q = await engine.create({"kind": "take_profit", "code": CODE, "target_price": 9.0}, CTX)
    service.refuse_next = RiskRefused("max_order_value", "too big")
    await feed(engine, [9.5])
    state = engine.get(q["id"])
    assert state["status"] == "failed" and state["outcome"]["error"]["details"]["rule"] == "max_order_value"
    assert service.events[-1][0] == "protect.failed"
    assert ("protect", "take_profit:refused") in service.metrics


async def test_halt_lets_protective_sells_through_by_default(tmp_path: Path) -> None:
    engine, service = await make(tmp_path)
    service.halted = True
    await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 9.8}, CTX)
    await feed(engine, [9.7])
    assert len(service.sent) == 1 and service.sent[0]["protective"] is True


async def test_halt_suspends_protections_when_configured(tmp_path: Path) -> None:
    engine, service = await make(tmp_path, act_when_halted=False)
    service.halted = True
    p = await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 9.8}, CTX)
    await feed(engine, [9.7])
    assert service.sent == [] and engine.get(p["id"])["status"] == "armed"
    assert service.events[-1][1]["blocked"] == "halted"
    service.halted = False
    await feed(engine, [9.6])
    assert len(service.sent) == 1


async def test_a_halt_that_lands_while_firing_leaves_the_protection_armed(tmp_path: Path) -> None:
    from qmtgate.source.trading.errors import TradingHalted

    engine, service = await make(tmp_path, act_when_halted=False)
    p = await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 9.8}, CTX)
    service.refuse_next = TradingHalted(
        "trading is halted (kill switch)"
    )  # turned on after the engine looked
    await feed(engine, [9.7])
    assert service.sent == [] and engine.get(p["id"])["status"] == "armed"  # not failed for good
    assert service.events[-1][1]["blocked"] == "halted"
    await feed(engine, [9.6])  # resumed meanwhile: it fires, with the same id (nothing was claimed)
    assert len(service.sent) == 1 and service.sent[0]["client_order_id"] == f"pt-{p['id']}-0"


async def test_per_order_protection_arms_on_fill_for_the_filled_volume(tmp_path: Path) -> None:
    engine, service = await make(tmp_path)
    req = {"code": CODE, "side": "buy", "volume": 400, "client_order_id": "buy-1"}
    service.audit.claim("buy-1", req, {"status": "accepted", "order_id": 7})
    p = await engine.create({"kind": "stop_loss", "client_order_id": "buy-1", "stop_price": 9.8}, CTX)
    assert p["status"] == "pending" and p["code"] == CODE
    await feed(engine, [9.7])
    assert service.sent == []  # not filled yet: not armed
    service.fills = [{"order_remark": "buy-1", "traded_volume": 200}]
    service.listeners[0]("trade", {"order_remark": "buy-1", "traded_volume": 200})
    while engine._tasks:
        await asyncio.gather(*engine._tasks)
    assert engine.get(p["id"])["status"] == "armed" and engine.get(p["id"])["filled"] == 200
    await feed(engine, [9.6])
    assert service.sent[0]["volume"] == 200  # capped by the fill, though 500 are sellable


async def test_change_and_cancel(tmp_path: Path) -> None:
    engine, service = await make(tmp_path)
    p = await engine.create({"kind": "stop_loss", "code": CODE, "stop_price": 9.0}, CTX)
    await feed(engine, [9.5])
    assert service.sent == []
    changed = await engine.change(p["id"], {"stop_price": 9.6}, CTX)
    assert changed["stop_price"] == 9.6
    cancelled = await engine.cancel(p["id"], CTX)
    assert cancelled["status"] == "cancelled"
    await feed(engine, [9.0])
    assert service.sent == []
    with pytest.raises(BadRequest):
        await engine.change(p["id"], {"stop_price": 9.5}, CTX)
    kinds = [r["kind"] for r in service.audit.rows()]
    assert {"protect.create", "protect.change", "protect.cancel"} <= set(kinds)


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "stop_loss", "code": CODE},
        {"kind": "take_profit", "code": CODE, "stop_price": 1.0},
        {"kind": "trailing_stop", "code": CODE},
        {"kind": "trailing_stop", "code": CODE, "trail": 0.1, "trail_ratio": 0.1},
        {"kind": "stop_loss", "stop_price": 9.0},
    ],
)
async def test_invalid_specs_are_refused(tmp_path: Path, spec: dict) -> None:
    engine, _ = await make(tmp_path)
    with pytest.raises(BadRequest):
        await engine.create(spec, CTX)
    assert engine.list() == []


# -- the rules, property-tested ---------------------------------------------------------------------------

prices = st.lists(st.integers(100, 2000).map(lambda t: t / 100), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(prices, st.integers(1, 200).map(lambda t: t / 100))
def test_trailing_stop_fires_exactly_at_the_first_tick_below_peak_minus_trail(
    seq: list, trail: float
) -> None:
    p = Protection(id="x", code=CODE, kind="trailing_stop", trail=trail)
    fired_at = next((i for i, last in enumerate(seq) if observe(p, last)), None)
    peak = float("-inf")
    expected = None
    for i, last in enumerate(seq):
        peak = max(peak, last)
        if last < peak - trail:
            expected = i
            break
    assert fired_at == expected
    # never fired while every tick was >= its running peak - trail
    if expected is not None:
        assert all(last >= max(seq[: j + 1]) - trail for j, last in enumerate(seq[:expected]))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(100, 100_000).map(lambda t: t / 100),
    st.integers(1, 199).map(lambda b: b / 1000),
    st.integers(0, 100).map(lambda d: d / 100),
)
def test_protective_price_is_on_the_grid_inside_the_band_and_limits(
    last: float, band: float, drop: float
) -> None:
    down = round(max(last * (1 - drop), 0.01), 2)
    price = protective_price(last, band, down, 0.01)
    assert abs(price * 100 - round(price * 100)) < 1e-6  # on the tick grid
    assert price >= down - 1e-9
    assert price <= last + 1e-9
    assert price >= last * (1 - band) - 1e-9 or price == down


@given(
    st.sampled_from([CODE, "300750.SZ", "688981.SH", "830799.BJ", "113050.SH", "159915.SZ"]),
    st.integers(0, 10_000),
    st.one_of(st.none(), st.integers(1, 10_000)),
)
def test_sell_volume_is_a_valid_order_size_within_sellable_and_cap(
    code: str, sellable: int, cap: int | None
) -> None:
    volume = sell_volume(code, sellable, cap)
    assert 0 <= volume <= sellable and (cap is None or volume <= cap)
    if volume:  # what the pre-trade check (the exchange's size rules) lets through
        assert lot_refusal(board_of(code), "sell", volume, sellable) is None
    else:  # nothing valid fits under the cap
        minimum = BOARD_LOTS[board_of(code)][0]
        assert sellable == 0 or (cap is not None and cap < min(minimum, sellable))
