"""A small hand-written stand-in for ``xtquant.xtdata`` (until ``qmtgate.sim`` lands).

Same function names, parameter names, defaults and return shapes as the real module (xtquant-api.md), on a
tiny fixed universe. Knobs for tests:

* ``latency[name] = seconds``: every call of ``name`` sleeps that long first.
* ``hang(name)`` -> Event: calls of ``name`` block until the event is set.
* ``fail(name, exc)``: calls of ``name`` raise ``exc``.
* ``down = True``: every call raises xtquant's "cannot connect" plain ``Exception``, as real xtdata does.
* ``calls`` / ``count(name)`` / ``threads``: what was called, with which arguments, on which thread.
* ``FakeXtdata(universe=n)``: ``n`` more stocks (``synthetic_codes(n)``, half SH, half SZ, price 10.0), in
  沪深A股 too, for tests and benches that need many codes.

Mutable defaults (``field_list=[]``) are kept on purpose: they are the real signatures.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas only when a frame is made, as xtquant imports it
    import pandas as pd


CST = dt.timezone(dt.timedelta(hours=8))
NOT_CONNECTED = "无法连接xtquant服务，请检查QMT-投研版或QMT-极简版是否开启"

KLINE_FIELDS = [
    "time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "amount",
    "settelementPrice",
    "openInterest",
    "preClose",
    "suspendFlag",
]

INSTRUMENTS: dict[str, tuple[str, float, dict[str, bool]]] = {
    "600000.SH": ("浦发银行", 10.0, {"stock": True}),
    "000001.SZ": ("平安银行", 11.0, {"stock": True}),
    "000001.SH": ("上证指数", 3300.0, {"index": True}),
    "430047.BJ": ("诺思兰德", 15.0, {"stock": True}),
    "510300.SH": ("沪深300ETF", 4.0, {"fund": True, "etf": True}),
}

SECTORS: dict[str, list[str]] = {
    "沪深A股": ["600000.SH", "000001.SZ"],
    "上证A股": ["600000.SH"],
    "深证A股": ["000001.SZ"],
    "京市A股": ["430047.BJ"],
    "沪深ETF": ["510300.SH"],
    "沪市指数": ["000001.SH"],
}


def synthetic_codes(n: int) -> list[str]:
    """``n`` extra stock codes of a ``FakeXtdata(universe=n)``: 600100.SH, 000100.SZ, 600101.SH, ..."""
    return [f"{600100 + i // 2:06d}.SH" if i % 2 == 0 else f"{100 + i // 2:06d}.SZ" for i in range(n)]


def _instrument(code: str) -> tuple[str, float, dict[str, bool]]:
    known = INSTRUMENTS.get(code)
    return known if known is not None else (f"合成{code[:6]}", 10.0, {"stock": True})


TRADING_DAYS = ["20250102", "20250103", "20250106", "20250107", "20250108", "20250109", "20250110"]
HOLIDAYS = [20250101, 20250128, 20250129, 20250130, 20250131]


@functools.lru_cache(maxsize=4096)
def day_ms(day: str) -> int:
    """Epoch ms of 00:00 CST of ``YYYYMMDD`` (how xtdata stamps daily bars). Memoized: a tick asks for it
    per code, and ``strptime`` per code made the fake's own CPU a visible share of a snapshot bench
    whose xtdata cost is meant to be the configured latency alone."""
    return int(dt.datetime.strptime(day, "%Y%m%d").replace(tzinfo=CST).timestamp() * 1000)


_LADDER_KEYS = ("askPrice", "bidPrice", "askVol", "bidVol")


@functools.lru_cache(maxsize=1024)
def _tick_template(price: float) -> dict[str, Any]:
    return FakeXtdata._tick_built(price)


@dataclass(frozen=True)
class Call:
    name: str
    args: dict[str, Any]
    thread: int
    at: float


class FakeXtdata:
    """An xtdata-shaped object; pass it wherever an ``xtquant.xtdata`` module is expected."""

    def __init__(self, latency: dict[str, float] | None = None, universe: int = 0) -> None:
        self.latency: dict[str, float] = dict(latency or {})
        extra = synthetic_codes(universe)
        self.instruments: dict[str, tuple[str, float, dict[str, bool]]] = {
            **INSTRUMENTS,
            **{code: _instrument(code) for code in extra},
        }
        self.sectors: dict[str, list[str]] = {name: list(codes) for name, codes in SECTORS.items()}
        self.sectors["沪深A股"] += extra
        self.down = False
        self.calls: list[Call] = []
        self._hangs: dict[str, threading.Event] = {}
        self._failures: dict[str, BaseException] = {}
        self._lock = threading.Lock()
        self._status_callback: Any = None
        self._seq = 0
        self.subscriptions: dict[int, tuple[Any, ...]] = {}

    # -- knobs ---------------------------------------------------------------------------------------

    def hang(self, name: str) -> threading.Event:
        event = threading.Event()
        self._hangs[name] = event
        return event

    def fail(self, name: str, exc: BaseException | None) -> None:
        if exc is None:
            self._failures.pop(name, None)
        else:
            self._failures[name] = exc

    def count(self, name: str) -> int:
        with self._lock:
            return sum(1 for call in self.calls if call.name == name)

    def calls_of(self, name: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.name == name]

    @property
    def threads(self) -> set[int]:
        with self._lock:
            return {call.thread for call in self.calls}

    def _enter(self, name: str, args: dict[str, Any]) -> None:
        args = {key: value for key, value in args.items() if key != "self"}
        with self._lock:
            self.calls.append(Call(name, args, threading.get_ident(), time.monotonic()))
        event = self._hangs.get(name)
        if event is not None:
            event.wait()
        delay = self.latency.get(name, 0.0)
        if delay:
            time.sleep(delay)
        failure = self._failures.get(name)
        if failure is not None:
            raise failure
        if self.down and name != "watch_xtquant_status":
            raise Exception(NOT_CONNECTED)

    # -- connection ----------------------------------------------------------------------------------

    def connect(self, ip: str = "", port: int | None = None, remember_if_success: bool = True) -> Any:
        self._enter("connect", locals())
        if self._status_callback is not None:
            self._status_callback({"address": f"{ip or '127.0.0.1'}:{port or 58610}", "status": "connected"})
        return object()

    def watch_xtquant_status(self, callback: Any) -> None:
        self._enter("watch_xtquant_status", locals())
        self._status_callback = callback

    # -- market data ---------------------------------------------------------------------------------

    def get_full_tick(self, code_list: list[str]) -> dict[str, dict[str, Any]]:
        self._enter("get_full_tick", locals())
        return {code: self._tick(code) for code in code_list if code in self.instruments}

    def get_market_data_ex(
        self,
        field_list: list[str] = [],  # noqa: B006
        stock_list: list[str] = [],  # noqa: B006
        period: str = "1d",
        start_time: str = "",
        end_time: str = "",
        count: int = -1,
        dividend_type: str = "none",
        fill_data: bool = True,
    ) -> dict[str, pd.DataFrame]:
        self._enter("get_market_data_ex", locals())
        import pandas as pd

        fields = list(field_list) or list(KLINE_FIELDS)
        result: dict[str, pd.DataFrame] = {}
        for code in stock_list:
            if code not in self.instruments or period != "1d":
                result[code] = pd.DataFrame(columns=fields)
                continue
            days = [d for d in TRADING_DAYS if (not start_time or d >= start_time[:8])]
            days = [d for d in days if (not end_time or d <= end_time[:8])]
            if count == 0:
                days = []
            elif count > 0:
                days = days[-count:]
            result[code] = self._bars(code, days)[fields]
        return result

    # -- reference data ------------------------------------------------------------------------------

    def get_instrument_detail(self, stock_code: str, iscomplete: bool = False) -> dict[str, Any] | None:
        self._enter("get_instrument_detail", locals())
        return self._detail(stock_code)

    def get_instrument_detail_list(
        self, stock_list: list[str], iscomplete: bool = False
    ) -> dict[str, dict[str, Any] | None]:
        """Real xtquant loops over ``get_instrument_detail`` in Python; here one call (one latency)."""
        self._enter("get_instrument_detail_list", locals())
        return {code: self._detail(code) for code in stock_list}

    def _detail(self, stock_code: str) -> dict[str, Any] | None:
        if stock_code not in self.instruments:
            return None
        name, price, _ = self.instruments[stock_code]
        digits, market = stock_code.split(".")
        return {
            "ExchangeID": market,
            "InstrumentID": digits,
            "InstrumentName": name,
            "PreClose": price,
            "UpStopPrice": round(price * 1.1, 2),
            "DownStopPrice": round(price * 0.9, 2),
            "PriceTick": 0.01,
            "VolumeMultiple": 1,
            "OpenDate": "19991110",
            "ExpireDate": 99999999,
            "LongMarginRatio": 1.7976931348623157e308,
            "InstrumentStatus": 0,
            "IsTrading": False,
        }

    def get_instrument_type(self, stock_code: str, variety_list: list[str] | None = None) -> dict[str, bool]:
        self._enter("get_instrument_type", locals())
        flags = self.instruments[stock_code][2] if stock_code in self.instruments else {}
        if variety_list is None:
            return dict(flags)
        return {name: flags.get(name, False) for name in variety_list}

    def get_sector_list(self) -> list[str]:
        self._enter("get_sector_list", locals())
        return list(self.sectors)

    def get_stock_list_in_sector(self, sector_name: str, real_timetag: Any = -1) -> list[str]:
        self._enter("get_stock_list_in_sector", locals())
        return list(self.sectors.get(sector_name, []))

    def get_trading_dates(
        self, market: str, start_time: str = "", end_time: str = "", count: int = -1
    ) -> list[int]:
        self._enter("get_trading_dates", locals())
        if market not in ("SH", "SZ", "BJ"):
            return []
        days = [
            d for d in TRADING_DAYS if (not start_time or d >= start_time) and (not end_time or d <= end_time)
        ]
        if count > 0:
            days = days[-count:]
        return [day_ms(d) for d in days]

    def get_holidays(self) -> list[str]:
        self._enter("get_holidays", locals())
        return [str(day) for day in HOLIDAYS]

    def get_trading_calendar(self, market: str, start_time: str = "", end_time: str = "") -> list[str]:
        self._enter("get_trading_calendar", locals())
        if market not in ("SH", "SZ"):
            raise Exception("暂不支持除SH,SZ以外市场的交易日历")
        return [
            d for d in TRADING_DAYS if (not start_time or d >= start_time) and (not end_time or d <= end_time)
        ]

    def get_divid_factors(self, stock_code: str, start_time: str = "", end_time: str = "") -> pd.DataFrame:
        self._enter("get_divid_factors", locals())
        import pandas as pd

        rows = {}
        if stock_code == "600000.SH":
            rows["20240719"] = {
                "time": day_ms("20240719"),
                "interest": 0.321,
                "stockBonus": 0.0,
                "stockGift": 0.0,
                "allotNum": 0.0,
                "allotPrice": 0.0,
                "gugai": 0,
                "dr": 1.0334,
            }
        return pd.DataFrame(rows).T

    def get_period_list(self) -> list[dict[str, Any]]:
        self._enter("get_period_list", locals())
        return [{"name": p, "desc": p} for p in ("tick", "1m", "5m", "1d")]

    # -- downloads and subscriptions -----------------------------------------------------------------

    def download_history_data2(
        self,
        stock_list: list[str],
        period: str,
        start_time: str = "",
        end_time: str = "",
        callback: Any = None,
        incrementally: bool | None = None,
    ) -> dict[str, Any]:
        self._enter("download_history_data2", locals())
        codes = [stock_list] if isinstance(stock_list, str) else list(stock_list)
        for i, code in enumerate(codes, start=1):
            if callback is not None:
                callback({"finished": i, "total": len(codes), "stockcode": code, "message": ""})
        return {}

    def subscribe_quote(
        self,
        stock_code: str,
        period: str = "1d",
        start_time: str = "",
        end_time: str = "",
        count: int = 0,
        callback: Any = None,
    ) -> int:
        self._enter("subscribe_quote", locals())
        self._seq += 1
        self.subscriptions[self._seq] = (stock_code, period, callback)
        return self._seq

    def subscribe_whole_quote(self, code_list: list[str], callback: Any = None) -> int:
        self._enter("subscribe_whole_quote", locals())
        self._seq += 1
        self.subscriptions[self._seq] = (tuple(code_list), "tick", callback)
        return self._seq

    def unsubscribe_quote(self, seq: int) -> None:
        self._enter("unsubscribe_quote", locals())
        self.subscriptions.pop(seq, None)

    def stream_whole_market(
        self, interval: float, stop: threading.Event | None = None, fill: int = 0, fill_interval: float = 0.2
    ) -> None:
        """Push every known code to each whole-market subscription every ``interval`` seconds, as QMT
        does during the session: fresh dicts per burst (time now, a price walk, volume growing, books
        around the price), the shapes and units of ``_tick``. The first ``fill`` bursts come every
        ``fill_interval`` seconds (a bench fills the gateway's replay ring before it measures at the market's
        pace). Runs until ``stop`` is set (benches run it on a daemon thread)."""
        codes = sorted(self.instruments)
        rng = random.Random(7)
        prices = {code: _instrument(code)[1] for code in codes}
        volume = 0
        bursts = 0
        while stop is None or not stop.is_set():
            time.sleep(fill_interval if bursts < fill else interval)
            bursts += 1
            volume += 100
            now = int(time.time() * 1000)
            burst: dict[str, dict[str, Any]] = {}
            for code in codes:
                price = prices[code] = round(max(0.01, prices[code] * (1 + rng.uniform(-0.002, 0.002))), 2)
                tick = self._tick(code)
                tick.update(
                    time=now,
                    lastPrice=price,
                    volume=100000 + volume,
                    amount=price * (100000 + volume) * 100,
                    askPrice=[round(price + 0.01 * i, 2) for i in range(1, 6)],
                    bidPrice=[round(price - 0.01 * i, 2) for i in range(5)],
                )
                burst[code] = tick
            for stock_code, _period, callback in list(self.subscriptions.values()):
                if isinstance(stock_code, tuple) and callback is not None:
                    callback(burst)

    # -- shapes --------------------------------------------------------------------------------------

    @staticmethod
    def _tick(code: str) -> dict[str, Any]:
        """A fresh tick dict (new lists too, as xtdata gives), copied from a memoized template: building
        one from scratch cost ~6 us a code, so a 400-code ``get_full_tick`` spent ~2.5 ms of the fake's own
        CPU (more on a busy box) inside what a snapshot bench means to be the configured latency alone."""
        _, price, _ = _instrument(code)
        tick = dict(_tick_template(price))
        for key in _LADDER_KEYS:
            tick[key] = list(tick[key])
        return tick

    @staticmethod
    def _tick_built(price: float) -> dict[str, Any]:
        return {
            "time": day_ms("20250110") + 7 * 3600 * 1000,
            "lastPrice": price,
            "open": price,
            "high": round(price * 1.01, 2),
            "low": round(price * 0.99, 2),
            "lastClose": price,
            "amount": 1.0e8,
            "volume": 100000,
            "pvolume": 10000000,
            "stockStatus": 0,
            "openInt": 13,
            "lastSettlementPrice": price,
            "settlementPrice": 0.0,
            "askPrice": [round(price + 0.01 * i, 2) for i in range(1, 6)],
            "bidPrice": [round(price - 0.01 * i, 2) for i in range(5)],
            "askVol": [10, 20, 30, 40, 50],
            "bidVol": [15, 25, 35, 45, 55],
        }

    @staticmethod
    def _bars(code: str, days: list[str]) -> pd.DataFrame:
        import pandas as pd

        _, price, _ = _instrument(code)
        closes = [round(price + 0.1 * i, 2) for i in range(len(days))]
        frame = pd.DataFrame(
            {
                "time": pd.array([day_ms(d) for d in days], dtype="int64"),
                "open": closes,
                "high": [c + 0.05 for c in closes],
                "low": [c - 0.05 for c in closes],
                "close": closes,
                "volume": pd.array([1000 * (i + 1) for i in range(len(days))], dtype="int64"),
                "amount": [c * 100000 for c in closes],
                "settelementPrice": 0.0,
                "openInterest": pd.array([15] * len(days), dtype="int32"),
                "preClose": [price, *closes[:-1]] if days else [],
                "suspendFlag": pd.array([0] * len(days), dtype="int32"),
            },
            index=list(days),
        )
        return frame
