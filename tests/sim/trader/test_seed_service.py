"""A seed-style trading service, written only against the real xtquant API, runs unchanged on the
simulator: construct, register a callback, start, connect (0), subscribe, query asset and positions,
buy, see the pushes, sell the next day, cancel a resting order. Only the test drives the clock."""

from __future__ import annotations

import random
import threading
import time

from .conftest import DAY, NEXT_DAY, at

# ---------------------------------------------------------------------------------------------- the service
# (what a QMT user writes; nothing below imports qmtgate)


class Service:
    def __init__(self, userdata_path: str, account_id: str) -> None:
        from xtquant import xttrader
        from xtquant.xttype import StockAccount

        outer = self

        class Callback(xttrader.XtQuantTraderCallback):
            def on_disconnected(self):
                outer.log.append(("disconnected",))

            def on_stock_order(self, order):
                outer.log.append(("order", order.order_id, order.order_status))

            def on_stock_trade(self, trade):
                outer.log.append(("trade", trade.order_id, trade.traded_volume, trade.traded_price))

            def on_stock_position(self, position):
                outer.log.append(("position", position.stock_code, position.volume))

            def on_stock_asset(self, asset):
                outer.log.append(("asset", asset.cash))

            def on_order_error(self, order_error):
                outer.log.append(("order_error", order_error.order_id, order_error.error_msg))

            def on_cancel_error(self, cancel_error):
                outer.log.append(("cancel_error", cancel_error.order_id))

        self.log: list[tuple] = []
        self.trader = xttrader.XtQuantTrader(userdata_path, random.randint(100000, 999999))
        self.trader.register_callback(Callback())
        self.account = StockAccount(account_id)

    def start(self) -> int:
        self.trader.start()
        result = self.trader.connect()
        if result != 0:
            return result
        return self.trader.subscribe(self.account)

    def snapshot(self) -> tuple:
        return self.trader.query_stock_asset(self.account), self.trader.query_stock_positions(self.account)

    def buy(self, code: str, volume: int, price: float) -> int:
        from xtquant import xtconstant

        return self.trader.order_stock(
            self.account, code, xtconstant.STOCK_BUY, volume, xtconstant.FIX_PRICE, price, "seed", "buy"
        )

    def sell(self, code: str, volume: int, price: float) -> int:
        from xtquant import xtconstant

        return self.trader.order_stock(
            self.account, code, xtconstant.STOCK_SELL, volume, xtconstant.FIX_PRICE, price, "seed", "sell"
        )

    def cancel(self, order_id: int) -> int:
        return self.trader.cancel_order_stock(self.account, order_id)

    def stop(self) -> None:
        self.trader.stop()


# ---------------------------------------------------------------------------------------------- the test


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_seed_style_service_runs_unchanged(fresh_env) -> None:
    from xtquant import xtdata

    env = fresh_env(start_ms=at(DAY, 10))
    env.publisher.stop(manual=True)
    svc = Service(r"C:\国金证券QMT交易端\userdata_mini", "8880001")
    assert svc.start() == 0
    asset, positions = svc.snapshot()
    assert asset.cash == asset.total_asset == 1_000_000.0 and positions == []

    code = "600000.SH"
    ask = xtdata.get_full_tick([code])[code]["askPrice"][0]
    oid = svc.buy(code, 1000, ask)
    assert oid > 0
    wait_for(lambda: len(svc.log) >= 6)
    kinds = [e[0] for e in svc.log]
    assert kinds == ["order", "order", "trade", "order", "position", "asset"]
    assert svc.log[2] == ("trade", oid, 1000, ask)
    assert svc.log[5][1] == round(1_000_000.0 - ask * 1000 - 5.0 - round(ask * 1000 * 0.00001, 2), 2)

    # a resting buy far below the market, cancelled
    low = round(xtdata.get_full_tick([code])[code]["lastPrice"] * 0.92, 2)
    resting = svc.buy(code, 100, low)
    env.market.clock.advance(3)
    assert svc.cancel(resting) == 0
    env.market.clock.advance(3)
    env.broker.sync()
    wait_for(lambda: ("order", resting, 54) in svc.log)

    # next session: yesterday's buy is sellable
    env.market.clock.set(at(NEXT_DAY, 10))
    bid = xtdata.get_full_tick([code])[code]["bidPrice"][0]
    sell = svc.sell(code, 1000, bid)
    wait_for(lambda: ("order", sell, 56) in svc.log)
    asset, positions = svc.snapshot()
    assert [(p.stock_code, p.volume) for p in positions] == [(code, 0)]
    assert asset.frozen_cash == 0.0 and asset.market_value == 0.0
    assert all(t.name.startswith("xttrader") for t in threading.enumerate() if "xttrader" in t.name)
    svc.stop()
