"""Simulated ``xtquant.xtdata`` (250807): the real names, signatures, defaults, return shapes and units,
served by qmtgate's simulated A-share market.

Only functions the simulator can answer truthfully exist here; calling a name that the real SDK lacks,
or one we do not simulate, fails with AttributeError as it would in the real module.
Times given as ``datetime`` are read as Asia/Shanghai wall time (the real SDK uses the host's zone,
which on a QMT PC is China time); all timestamps are epoch milliseconds.
"""

import contextlib as _contextlib
import datetime as _dt
import time as _time
import traceback as _traceback
import typing as _typing

import numpy as _np

from .. import timeutil as _tu
from ..daypath import OPEN_SLOT as _OPEN_SLOT
from ..live import Subscription as _Subscription
from . import _env
from . import _query as _q

if _typing.TYPE_CHECKING:  # pandas is imported by the calls that make a DataFrame, as in xtquant
    import pandas as _pd

debug_mode = 0
default_data_dir = "../userdata_mini/datadir"
data_dir = None
enable_hello = True

_MARKETS = {
    "SH": "上交所", "SZ": "深交所", "BJ": "北交所", "HK": "港交所", "HGT": "沪港通", "SGT": "深港通",
    "IF": "中金所", "SF": "上期所", "DF": "大商所", "ZF": "郑商所", "GF": "广期所", "INE": "能源交易所",
    "SHO": "上证期权", "SZO": "深证期权", "BKZS": "板块指数",
}  # fmt: skip
_DISCONNECTED = "行情服务连接断开"


class _SimClient:
    """Stands for the native client object ``get_client()`` returns."""

    def __init__(self, env: _env.SimEnv) -> None:
        self._env = env

    def is_connected(self) -> bool:
        return self._env.faults.connected and self._env.connected

    # The native client's methods that the real wheel's Python code calls, over the same simulated
    # market as the module functions (they take the module functions' arguments).

    def supply_history_data2(self, stock_list, period, start_time="", end_time="", param=None, callback=None):
        """What download_history_data2 calls; ``callback`` gets the progress dicts."""
        return download_history_data2(stock_list, period, start_time, end_time, callback)

    def supply_history_data(self, stock_code, period, start_time="", end_time=""):
        return download_history_data(stock_code, period, start_time, end_time)

    def stop_supply_history_data2(self):
        return None

    def get_etf_info(self):
        return get_etf_info()

    def get_ipo_info(self, start_time="", end_time=""):
        return get_ipo_info(start_time, end_time)

    def get_financial_data(
        self, stock_list, table_list, start_time="", end_time="", report_type="report_time"
    ):
        return get_financial_data_ori(stock_list, table_list, start_time, end_time, report_type)

    def get_weight_in_index(self, index_code):
        return get_index_weight(index_code)

    def get_full_tick(self, code_list):
        return get_full_tick(code_list)

    def get_instrument_detail(self, stock_code, iscomplete=False):
        return get_instrument_detail(stock_code, iscomplete)

    def get_sector_list(self):
        return get_sector_list()

    def get_stock_list_in_sector(self, sector_name, real_timetag=-1):
        return get_stock_list_in_sector(sector_name, real_timetag)

    def get_divid_factors(self, stock_code, start_time="", end_time=""):
        return get_divid_factors(stock_code, start_time, end_time)

    def get_holidays(self):
        return get_holidays()

    def get_market_last_trade_date(self, market):
        return get_market_last_trade_date(market)

    def get_trading_dates_by_market(self, market, start_time="", end_time="", count=-1):
        return get_trading_dates(market, start_time, end_time, count)

    def get_stock_type(self, stock_code):
        return get_instrument_type(stock_code)

    def is_stock_type(self, stock, tag):
        return is_stock_type(stock, tag)

    def get_main_contract(self, code_market, start_time="", end_time=""):
        return get_main_contract(code_market, start_time, end_time)

    def get_cb_info(self, stockcode):
        return get_cb_info(stockcode)

    def down_index_weight(self):
        return download_index_weight()

    def down_cb_data(self):
        return download_cb_data()

    def down_history_contracts(self):
        return download_history_contracts()

    def get_data_dir(self):
        return get_data_dir()

    def get_app_dir(self):
        return str(self._env.data_dir or "")

    def get_peer_addr(self):
        return "127.0.0.1:58610"

    def get_server_tag(self):
        return "qmtgate-sim"

    def set_config_addr(self, addr):
        self._addr = addr

    def connect(self):
        connect()
        return (0, "")

    def shutdown(self):
        disconnect()

    def subscribe_quote(self, stock_code, period="1d", start_time="", end_time="", count=0, callback=None):
        return subscribe_quote(stock_code, period, start_time, end_time, count, callback)

    def unsubscribe_quote(self, seq):
        return unsubscribe_quote(seq)

    def get_market_data3(self, field_list, stock_list, period, start_time="", end_time="", count=-1, *args):
        return get_market_data3(field_list, stock_list, period, start_time, end_time, count)

    def read_local_data(self, *args):
        return {}

    def commonControl(self, func, param=b""):
        """Generic BSON request of the native client: answered with an empty BSON result."""
        from . import xtbson

        return xtbson.encode({"result": []})

    def registerCommonControlCallback(self, name, callback):
        if name == "watchxtquantstatus":
            watch_xtquant_status(callback)

    def register_external_resp_callback(self, callback):
        self._external = callback

    def custom_data_control(self, *args):
        return None

    def callFormula(self, *args):
        return {}

    def subscribeFormula(self, *args):
        return -1

    def subscribeFormulaSync(self, *args):
        return -1

    def unsubscribeFormula(self, *args):
        return False

    def createView(self, *args):
        return None

    def closeView(self, *args):
        return None

    def pushViewData(self, *args):
        return None

    def setViewIndex(self, *args):
        return None


# ---------------------------------------------------------------------- connection


def _enter(name: str) -> _env.SimEnv:
    """Every call: apply injected faults, then connect lazily as the real ``get_client()`` does."""
    env = _env.current()
    env.faults.on_call(name)
    if not env.connected:
        env.connected = True
        if enable_hello:
            hello()
    return env


def hello():
    env = _env.current()
    status = env.market.clock.status()
    print(
        f"***** xtdata连接成功 {_dt.datetime.now():%Y-%m-%d %H:%M:%S} *****\n"
        f"服务信息: qmtgate simulated market (seed {env.market.seed})\n"
        f"行情时钟: {status.note}\n"
        "******************************"
    )


def connect(ip="", port=None, remember_if_success=True):
    env = _env.current()
    if ip and ip not in ("127.0.0.1", "localhost") and port is None:
        raise Exception("远程地址不支持仅输入IP")
    env.faults.on_call("connect")
    if not env.connected:
        env.connected = True
        if enable_hello:
            hello()
        if env.status_callback is not None:
            env.status_callback({"address": "127.0.0.1:58610", "status": "connected"})
    return get_client()


def reconnect(ip="", port=None, remember_if_success=True):
    env = _env.current()
    env.connected = False
    return connect(ip, port, remember_if_success)


def disconnect():
    _env.current().connected = False


def get_client():
    env = _env.current()
    if not env.connected:
        connect()
    return _SimClient(env)


def watch_xtquant_status(callback):
    _env.current().status_callback = callback


def get_data_dir():
    """``xtdata.data_dir`` when set, else the service's data path: the simulator's shared data
    directory (docs/simulator.md), as the real one answers with QMT's datadir."""
    if data_dir is not None:
        return data_dir
    home = _env.current().data_dir
    return str(home) if home is not None else default_data_dir


def run():
    env = _env.current()
    while True:
        _time.sleep(3)
        if not env.faults.connected:
            raise Exception(_DISCONNECTED)


# ---------------------------------------------------------------------- time helpers


def timetag_to_datetime(timetag, format):
    try:
        return _tu.format_ms(int(timetag), format)
    except Exception:
        _traceback.print_exc()
        return None


def datetime_to_timetag(datetime, format="%Y%m%d%H%M%S"):
    value = _dt.datetime.strptime(datetime, format) if isinstance(datetime, str) else datetime
    return float(_tu.datetime_to_ms(value))


def _to_ms(value, is_end: bool) -> int | None:
    """'', 'YYYYMMDD', 'YYYYMMDDHHMMSS', int/float ms or datetime -> epoch ms (None = open)."""
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        return _tu.datetime_to_ms(value)
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    ms = _tu.parse_timetag(text)
    if is_end and len(text) == 8:
        return ms  # the real SDK treats 'YYYYMMDD' as 00:00 of that day on both ends
    return ms


# ---------------------------------------------------------------------- market data


def _kline_frames(
    field_list, stock_list, period, start_time, end_time, count, dividend_type, fill_data, mirror=False
):
    import pandas as _pd

    env = _enter("get_market_data_ex")
    fields = list(field_list) if field_list else list(_q.KLINE_FIELDS)
    start_ms, end_ms = _to_ms(start_time, False), _to_ms(end_time, True)
    daily = period not in _q.MINUTE_SIZE
    if daily and len(stock_list) > 1:
        _q.prefetch_daily(env, stock_list, period, start_ms, end_ms, int(count))
    out = {}
    for code in stock_list:
        bars = _q.query_kline(
            env, code, period, start_ms, end_ms, int(count), dividend_type or "none", bool(fill_data), mirror
        )
        if bars is None:
            out[code] = _pd.DataFrame(columns=fields)
            continue
        labels, cols = _q.bars_to_columns(bars, fields, daily)
        frame = _pd.DataFrame({f: cols[f] for f in fields if f in cols}, index=labels)
        for f in fields:
            if f not in frame.columns:
                frame[f] = _np.nan
        out[code] = frame[fields]
    return out


def _tick_frames(field_list, stock_list, start_time, end_time, count):
    import pandas as _pd

    env = _enter("get_market_data_ex")
    fields = [f for f in (field_list or _q.TICK_FIELDS) if f != "time"]
    start_ms, end_ms = _to_ms(start_time, False), _to_ms(end_time, True)
    columns = list(dict.fromkeys(c for c in (field_list or _q.TICK_FIELDS) if c in ("time", *fields)))
    _q.warm_tick_paths(env, stock_list)
    out = {}
    for code in stock_list:
        recs = _q.query_ticks(env, code, start_ms, end_ms, int(count))
        if not recs:
            continue
        # built in the asked order straight away (a reorder afterwards copied every frame)
        frame = _pd.DataFrame({c: [r.get(c, _np.nan) for r in recs] for c in columns}, columns=columns)
        frame.index = _tu.labels_from_ms(_np.fromiter((r["time"] for r in recs), _np.int64, len(recs)), False)
        out[code] = frame
    return out


def get_market_data_ex(
    field_list=[],
    stock_list=[],
    period="1d",
    start_time="",
    end_time="",
    count=-1,
    dividend_type="none",
    fill_data=True,
):
    if period in _q.KLINE_PERIODS:
        return _kline_frames(
            field_list, stock_list, period, start_time, end_time, count, dividend_type, fill_data
        )
    if period == "tick":
        return _tick_frames(field_list, stock_list, start_time, end_time, count)
    _enter("get_market_data_ex")
    return {}


def get_local_data(
    field_list=[],
    stock_list=[],
    period="1d",
    start_time="",
    end_time="",
    count=-1,
    dividend_type="none",
    fill_data=True,
    data_dir=None,
):
    return get_market_data_ex(
        field_list, stock_list, period, start_time, end_time, count, dividend_type, fill_data
    )


def get_market_data(
    field_list=[],
    stock_list=[],
    period="1d",
    start_time="",
    end_time="",
    count=-1,
    dividend_type="none",
    fill_data=True,
):
    if period == "tick":
        frames = _tick_frames(field_list, stock_list, start_time, end_time, count)
        return {code: _tick_records(frame) for code, frame in frames.items()}
    if period not in _q.KLINE_PERIODS:
        _enter("get_market_data")
        return {}
    frames = _kline_frames(
        field_list, stock_list, period, start_time, end_time, count, dividend_type, fill_data
    )
    return _field_major(frames, field_list, stock_list)


def _field_major(frames, field_list, stock_list):
    """{code: DataFrame(times x fields)} -> {field: DataFrame(codes x times)}."""
    import pandas as _pd

    fields = list(field_list) if field_list else list(_q.KLINE_FIELDS)
    labels = sorted(set().union(*[set(f.index) for f in frames.values()])) if frames else []
    out = {}
    for f in fields:
        table = (
            _pd.DataFrame({code: frame[f] for code, frame in frames.items()}).T if frames else _pd.DataFrame()
        )
        out[f] = table.reindex(index=list(stock_list), columns=labels)
    return out


def _tick_records(frame: "_pd.DataFrame") -> _np.ndarray:
    """A tick DataFrame as the structured ndarray the real get_market_data returns for ticks."""
    dtypes = []
    for col in frame.columns:
        if col in ("askPrice", "bidPrice"):
            dtypes.append((col, "<f8", (5,)))
        elif col in ("askVol", "bidVol"):
            dtypes.append((col, "<i4", (5,)))
        elif col in ("time", "volume", "pvolume", "transactionNum"):
            dtypes.append((col, "<i8"))
        elif col in ("stockStatus", "openInt"):
            dtypes.append((col, "<i4"))
        else:
            dtypes.append((col, "<f8"))
    arr = _np.zeros(len(frame), dtype=dtypes)
    for col in frame.columns:
        arr[col] = _np.array(frame[col].tolist())
    return arr


def get_full_kline(
    field_list=[],
    stock_list=[],
    period="1m",
    start_time="",
    end_time="",
    count=1,
    dividend_type="none",
    fill_data=True,
):
    env = _enter("get_full_kline")
    if period not in _q.KLINE_PERIODS:
        return {}
    t = env.now()
    day = env.market.calendar.day(max(t.day_index, 0)).strftime("%Y%m%d")
    # the K-line mirror holds the latest session of every instrument: no download or subscription needed
    frames = _kline_frames(
        field_list,
        stock_list,
        period,
        start_time or day,
        end_time,
        count,
        dividend_type,
        fill_data,
        mirror=True,
    )
    return _field_major(frames, field_list, stock_list)


def _resolve_codes(env: _env.SimEnv, code_list) -> list[int]:
    """Codes and market tokens ('SH', 'SZ', 'BJ') -> instrument rows (unknown codes dropped)."""
    m = env.market
    if isinstance(code_list, str):
        code_list = [code_list]
    rows: list[int] = []
    for code in code_list:
        if code in ("SH", "SZ", "BJ"):
            rows.extend(i for i, inst in enumerate(m.universe.instruments) if inst.market == code)
        else:
            i = m.index_of(code)
            if i is not None:
                rows.append(i)
    return rows


def get_full_tick(code_list):
    env = _enter("get_full_tick")
    rows, ticks = env.latest_ticks(_np.asarray(sorted(set(_resolve_codes(env, code_list))), dtype=_np.int64))
    instruments = env.market.universe.instruments
    return {instruments[r].code: tick for r, tick in zip(rows, ticks, strict=True)}


# ---------------------------------------------------------------------- subscriptions


def subscribe_quote(stock_code, period="1d", start_time="", end_time="", count=0, callback=None):
    return subscribe_quote2(stock_code, period, start_time, end_time, count, None, callback)


def subscribe_quote2(
    stock_code, period="1d", start_time="", end_time="", count=0, dividend_type=None, callback=None
):
    env = _enter("subscribe_quote")
    if period not in _q.KLINE_PERIODS and period != "tick":
        return -1
    rows = _np.zeros(len(env.market.universe), bool)
    i = env.market.index_of(stock_code)
    if i is not None:
        rows[i] = True
    seq = env.next_seq()
    sub = _Subscription(
        seq,
        callback,
        env.faults.generation,
        rows,
        code=stock_code,
        period=period,
        whole=False,
        # count=0: no history part; the subscription starts with the next live slot (issue 19)
        pending_first=True,
    )
    sub.extra["dividend_type"] = dividend_type or "none"
    sub.extra["since_ms"] = env.now().now_ms  # the first push is newer than the subscribe call
    return env.subscribe(sub)


def subscribe_whole_quote(code_list, callback=None):
    env = _enter("subscribe_whole_quote")
    rows = _np.zeros(len(env.market.universe), bool)
    rows[_resolve_codes(env, code_list)] = True
    seq = env.next_seq()
    return env.subscribe(_Subscription(seq, callback, env.faults.generation, rows, whole=True))


def unsubscribe_quote(seq):
    env = _enter("unsubscribe_quote")
    env.unsubscribe(int(seq))


def _bar_push(sub: _Subscription, slot: int):
    """Payload of a K-line subscription: the code's current (forming) bar, as a list of one dict."""
    if slot < _OPEN_SLOT:
        return None
    frames = _kline_frames(
        [], [sub.code], sub.period, "", "", 1, sub.extra.get("dividend_type", "none"), True
    )
    frame = frames.get(sub.code)
    if frame is None or frame.empty:
        return None
    # column by column: a row Series would upcast the int columns (time, volume...) to float
    item = {k: frame[k].iloc[-1].item() for k in frame.columns}
    return {sub.code: [item]}


# ---------------------------------------------------------------------- reference data


def get_markets():
    return dict(_MARKETS)


def get_instrument_detail(stock_code, iscomplete=False):
    env = _enter("get_instrument_detail")
    i = env.market.index_of(stock_code)
    if i is None:
        return None
    t = env.now()
    d = max(t.day_index, 0)
    if not env.market.listed_by(i, d):
        return None
    detail = env.market.instrument_detail(i, d)
    if iscomplete:
        inst = env.market.universe.instruments[i]
        detail.update(
            {
                "Abbreviation": "",
                "ExtendName": "",
                "UnderlyingCode": "",
                "DayCountFromIPO": d - int(env.market.daily.list_index[i]),
                "IsContinuous": 0,
                "bNotProfitable": False,
                "bDualClass": False,
                "Ccy": "CNY",
                "MaxLimitOrderVolume": 1000000,
                "MinLimitOrderVolume": 200 if inst.board == 1 else 100,
                "MaxMarketOrderVolume": 50000,
                "MinMarketOrderVolume": 200 if inst.board == 1 else 100,
                "OptionType": -1,
            }
        )
    return detail


def get_instrument_detail_list(stock_list, iscomplete=False):
    return {code: get_instrument_detail(code, iscomplete) for code in stock_list}


def get_instrument_type(stock_code, variety_list=None):
    env = _enter("get_instrument_type")
    i = env.market.index_of(stock_code)
    if i is None:
        return {}
    kind = env.market.universe.kind[i]
    flags = {
        "index": kind == "index",
        "stock": kind == "stock",
        "fund": kind == "etf",
        "etf": kind == "etf",
        "bond": False,
    }
    if variety_list is None:
        return {k: True for k, v in flags.items() if v}
    return {k: bool(flags.get(k, False)) for k in variety_list}


def get_sector_list():
    env = _enter("get_sector_list")
    from .. import sectors as _sectors

    return _sectors.sector_names(env.market, env.sector_data_downloaded) + env.user_sectors.names()


def get_stock_list_in_sector(sector_name, real_timetag=-1):
    env = _enter("get_stock_list_in_sector")
    from .. import sectors as _sectors

    for ch in '\\/:*?"<>|':
        sector_name = sector_name.replace(ch, "")
    user = env.user_sectors.members(sector_name)  # sectors the user created (data directory)
    if user is not None:
        return user
    # members as of the market's current session (instruments listed later are not in it yet), or
    # as of ``real_timetag`` for historical constituents
    t = env.now()
    at = env.market.calendar.day(max(t.day_index, 0))
    if real_timetag not in (-1, "", None):
        ms = _to_ms(real_timetag, False)
        at = _tu.cst_date_of_ms(ms) if ms is not None else at
    return _sectors.members(env.market, sector_name, env.sector_data_downloaded, at)


def download_sector_data():
    env = _enter("download_sector_data")
    env.sector_data_downloaded = True


def get_trading_dates(market, start_time="", end_time="", count=-1):
    env = _enter("get_trading_dates")
    if market not in ("SH", "SZ", "BJ", "IF", "SHO", "SZO"):
        return []
    cal = env.market.calendar
    t = env.now()
    last = cal.day(max(t.day_index, 0))
    lo = _to_ms(start_time, False)
    hi = _to_ms(end_time, True)
    days = [cal.day(k) for k in range(0, cal.index_on_or_before(last) + 1)]
    out = [_tu.day_start_ms(d) for d in days]
    out = [x for x in out if (lo is None or x >= lo) and (hi is None or x <= hi)]
    if count is not None and count >= 0:
        out = out[-count:] if count else []
    return out


def get_holidays():
    env = _enter("get_holidays")
    return [d.strftime("%Y%m%d") for d in env.market.calendar.holidays]


def get_trading_calendar(market, start_time="", end_time=""):
    env = _enter("get_trading_calendar")
    if market not in ("SH", "SZ"):
        raise Exception("暂不支持除SH,SZ以外市场的交易日历")
    cal = env.market.calendar
    year_end = _dt.date(cal.last.year, 12, 31)
    lo = _tu.cst_date_of_ms(_to_ms(start_time, False)) if start_time else cal.first
    hi = _tu.cst_date_of_ms(_to_ms(end_time, True)) if end_time else year_end
    if hi > year_end:
        raise Exception(f"end_time超出节假日数据范围：{year_end:%Y%m%d}")
    return [d.strftime("%Y%m%d") for d in cal.between(lo, hi)]


def get_market_last_trade_date(market):
    env = _enter("get_market_last_trade_date")
    t = env.now()
    return _tu.day_start_ms(env.market.calendar.day(max(t.day_index, 0)))


def get_divid_factors(stock_code, start_time="", end_time=""):
    import pandas as _pd

    env = _enter("get_divid_factors")
    i = env.market.index_of(stock_code)
    cols = ["time", "interest", "stockBonus", "stockGift", "allotNum", "allotPrice", "gugai", "dr"]
    if i is None:
        return _pd.DataFrame(columns=cols)
    t = env.now()
    today = env.market.calendar.day(max(t.day_index, 0))
    lo, hi = _to_ms(start_time, False), _to_ms(end_time, True)
    rows = {}
    for e in env.market.daily.chain(i).dividends:
        ms = _tu.day_start_ms(e.day)
        if e.day > today or (lo is not None and ms < lo) or (hi is not None and ms > hi):
            continue
        rows[e.day.strftime("%Y%m%d")] = {
            "time": float(ms),
            "interest": e.interest,
            "stockBonus": e.stock_bonus,
            "stockGift": e.stock_gift,
            "allotNum": e.allot_num,
            "allotPrice": e.allot_price,
            "gugai": 0.0,
            "dr": e.dr,
        }
    if not rows:
        return _pd.DataFrame(columns=cols)
    return _pd.DataFrame(rows).T[cols]


def get_period_list():
    _enter("get_period_list")
    names = [
        ("tick", "分笔数据"), ("1m", "1分钟线"), ("5m", "5分钟线"), ("15m", "15分钟线"), ("30m", "30分钟线"),
        ("1h", "1小时线"), ("1d", "日线"), ("1w", "周线"), ("1mon", "月线"), ("1q", "季线"), ("1hy", "半年线"),
        ("1y", "年线"),
    ]  # fmt: skip
    return [{"name": n, "desc": d} for n, d in names]


# ---------------------------------------------------------------------- downloads


def download_history_data(stock_code, period, start_time="", end_time="", incrementally=None):
    return download_history_data2([stock_code], period, start_time, end_time, None, incrementally)


def download_history_data2(stock_list, period, start_time="", end_time="", callback=None, incrementally=None):
    env = _enter("download_history_data2")
    if isinstance(stock_list, str):
        stock_list = [stock_list]
    base = _env.BASE_PERIOD.get(period)
    if base is None:
        raise Exception(f"下载数据失败：不支持的周期 {period}")
    cal = env.market.calendar
    t = env.now()
    last = env.market.last_complete_day(t)
    lo_ms, hi_ms = _to_ms(start_time, False), _to_ms(end_time, True)
    lo = cal.index_on_or_after(_tu.cst_date_of_ms(lo_ms)) if lo_ms is not None else 0
    hi = min(cal.index_on_or_before(_tu.cst_date_of_ms(hi_ms)) if hi_ms is not None else last, last)
    total = len(stock_list)
    out = {}
    pending: list = []  # written to the shared data directory in batches (and before returning)
    flushed_at = _time.monotonic()
    try:
        for k, code in enumerate(stock_list, start=1):
            env.faults.on_call("download_history_data2")
            i = env.market.index_of(code)
            if i is not None and hi >= lo:
                start = max(lo, env.market.daily.chain(i).start)
                entry = (code, base, range(start, hi + 1))
                env.store.remember([entry])
                pending.append(entry)
                if len(pending) >= 500 or _time.monotonic() - flushed_at > 1.0:
                    env.store.persist(pending)
                    pending, flushed_at = [], _time.monotonic()
                out[code] = {
                    "start_time": _tu.ms_to_cst(_tu.day_start_ms(cal.day(start))).replace(tzinfo=None),
                    "end_time": _tu.ms_to_cst(_tu.day_start_ms(cal.day(hi))).replace(tzinfo=None),
                }
            if env.download_seconds_per_code:
                _time.sleep(env.download_seconds_per_code)
            if callback is not None:
                with _contextlib.suppress(Exception):  # the SDK ignores progress-callback errors
                    callback({"finished": k, "total": total, "stockcode": code, "message": ""})
    finally:
        env.store.persist(pending)
    return out


def download_holiday_data(incrementally=True):
    _enter("download_holiday_data")


gmd = get_market_data
gmd2 = get_market_data_ex
gld = get_local_data
t2d = timetag_to_datetime
gsl = get_stock_list_in_sector
supply_history_data = download_history_data
get_stock_type = get_instrument_type

from ._xtdata_more import (  # noqa: E402, F401  (the rest of the real surface)
    QuoteServer,
    add_sector,
    bind_formula,
    bnd_get_amount_change,
    bnd_get_call_info,
    bnd_get_conversion_price,
    bnd_get_put_info,
    call_formula,
    compute_coming_trading_calendar,
    create_array,
    create_formula,
    create_sector,
    create_sector_folder,
    del_formula,
    download_cb_data,
    download_etf_info,
    download_financial_data,
    download_financial_data2,
    download_his_st_data,
    download_history_contracts,
    download_index_weight,
    download_tabular_data,
    fetch_quote_server_from_config,
    gen_factor_index,
    generate_index_data,
    get_all_kline_trading_periods,
    get_all_sub_info,
    get_all_trading_periods,
    get_authorized_market_list,
    get_broker_queue_data,
    get_cb_info,
    get_current_connect_sub_info,
    get_etf_info,
    get_field_list,
    get_financial_data,
    get_financial_data_ori,
    get_formula_result,
    get_formulas,
    get_fullspeed_orderbook,
    get_his_option_list,
    get_his_option_list_batch,
    get_his_st_data,
    get_hk_broker_dict,
    get_index_weight,
    get_ipo_info,
    get_kline_trading_period,
    get_l2_order,
    get_l2_quote,
    get_l2_transaction,
    get_l2thousand_queue,
    get_main_contract,
    get_market_data3,
    get_market_data_ex_ori,
    get_market_data_ori,
    get_option_detail_data,
    get_option_list,
    get_option_undl_data,
    get_order_rank,
    get_quote_server_config,
    get_quote_server_status,
    get_sec_main_contract,
    get_sector_info,
    get_tabular_data,
    get_tabular_formula,
    get_trading_contract_list,
    get_trading_period,
    get_transactioncount,
    get_wp_market_list,
    getDividFactors,
    gmd3,
    import_formula,
    is_stock_type,
    push_custom_data,
    read_feather,
    remove_sector,
    remove_stock_from_sector,
    reset_market_stock_list,
    reset_market_trading_day_list,
    reset_sector,
    show_quote_server_status,
    subscribe_callback_wrapper,
    subscribe_callback_wrapper_1820,
    subscribe_callback_wrapper_convert,
    subscribe_formula,
    subscribe_l2thousand,
    subscribe_l2thousand_queue,
    timetagToDateTime,
    try_except,
    unsubscribe_formula,
    watch_quote_server_status,
    write_feather,
)
from .metatable import (  # noqa: E402, F401  (the real module's `from .metatable import *`)
    download_metatable_data,
    get_arrow,
    get_bson,
    get_metatable_config,
    get_metatable_fields,
    get_metatable_info,
    get_metatable_list,
    get_tabular_bson,
    meta_config,
)
