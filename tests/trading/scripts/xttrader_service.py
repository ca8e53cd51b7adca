"""An xttrader service as people write it for a local miniQMT, run on Linux against a qmtgate gateway.

Only the first lines (install) are new; everything below the marker is unchanged xttrader code. Usage:
``python xttrader_service.py URL API_KEY ACCOUNT_ID PRICE``; prints one JSON line of what it saw.
"""

import json
import sys
import threading
import time

import qmtgate.remote

qmtgate.remote.install(sys.argv[1], api_key=sys.argv[2])

# ---------------------------------------------------------------- unchanged xttrader code below
from xtquant import xtconstant  # noqa: E402
from xtquant.xttrader import XtQuantTrader, XtQuantTraderCallback  # noqa: E402
from xtquant.xttype import StockAccount  # noqa: E402

ACCOUNT_ID, PRICE = sys.argv[3], float(sys.argv[4])
seen = {
    "orders": [],
    "trades": [],
    "positions": [],
    "assets": [],
    "errors": [],
    "responses": [],
    "threads": [],
}
filled = threading.Event()


class MyCallback(XtQuantTraderCallback):
    def on_disconnected(self):
        seen["errors"].append("disconnected")

    def on_stock_order(self, order):
        seen["threads"].append(threading.current_thread().name)
        seen["orders"].append(
            [type(order).__name__, order.order_id, order.order_status, order.order_remark, order.stock_code]
        )

    def on_stock_trade(self, trade):
        seen["trades"].append([type(trade).__name__, trade.order_id, trade.traded_volume, trade.traded_price])

    def on_stock_position(self, position):
        seen["positions"].append([type(position).__name__, position.stock_code, position.volume])
        if seen["trades"]:
            filled.set()

    def on_stock_asset(self, asset):
        seen["assets"].append([type(asset).__name__, asset.cash])

    def on_order_error(self, order_error):
        seen["errors"].append([type(order_error).__name__, order_error.order_id, order_error.error_msg])

    def on_order_stock_async_response(self, response):
        seen["responses"].append(
            [type(response).__name__, response.seq, response.order_id, response.order_remark]
        )


trader = XtQuantTrader(r"C:\国金证券QMT交易端\userdata_mini", int(time.time()) % 1000000)
callback = MyCallback()
trader.register_callback(callback)
trader.start()
connect_result = trader.connect()
acc = StockAccount(ACCOUNT_ID)
subscribe_result = trader.subscribe(acc)
asset_before = trader.query_stock_asset(acc)

order_id = trader.order_stock(
    acc, "600000.SH", xtconstant.STOCK_BUY, 100, xtconstant.FIX_PRICE, PRICE, "strategy1", "my remark"
)
filled.wait(20)
positions = trader.query_stock_positions(acc)
position = trader.query_stock_position(acc, "600000.SH")
order = trader.query_stock_order(acc, order_id)
refused = trader.order_stock(
    acc, "600000.SH", xtconstant.STOCK_BUY, 150, xtconstant.FIX_PRICE, PRICE, "s", "odd lot"
)
seq = trader.order_stock_async(
    acc, "600000.SH", xtconstant.STOCK_BUY, 100, xtconstant.FIX_PRICE, PRICE, "s", "async"
)
deadline = time.monotonic() + 20
while not any(r[1] == seq for r in seen["responses"]) and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.5)  # let the last pushes arrive
trader.stop()
print(
    json.dumps(
        {
            "connect": connect_result,
            "subscribe": subscribe_result,
            "order_id": order_id,
            "refused": refused,
            "seq": seq,
            "asset_before": [type(asset_before).__name__, asset_before.cash],
            "query_positions": [[type(p).__name__, p.stock_code, p.volume] for p in positions],
            "position": [type(position).__name__, position.volume, position.can_use_volume],
            "order": [type(order).__name__, order.order_id, order.order_status, order.order_remark],
            **seen,
        }
    )
)
