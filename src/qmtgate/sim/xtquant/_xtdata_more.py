"""The rest of the real ``xtdata`` surface (xtquant 250807), each function with the real signature.

Each function is one of (docs/simulator.md has the table):
- simulated: computed from the simulated market (financial statements, L2 streams, index weights,
  trading periods, quote-server status, sector editing, IPO info, ST history, ...);
- empty-as-real: the simulated market has no such data (options, convertible bonds, futures, Hong
  Kong brokers, formulas that run inside the QMT client, tabular/meta data); the function answers
  what the real SDK answers when the data is absent ({} / [] / None / an empty frame).
"""

from __future__ import annotations

import contextlib as _contextlib
import datetime as _dt
import functools as _functools
import json as _json
import math as _math

import numpy as _np

from .. import financials as _fin
from .. import l2 as _l2
from .. import timeutil as _tu
from . import _env


def _x():
    from . import xtdata

    return xtdata


def _enter(name):
    return _x()._enter(name)


def _date_of(value, is_end):
    ms = _x()._to_ms(value, is_end)
    return None if ms is None else _tu.cst_date_of_ms(ms)


# ---------------------------------------------------------------------- plumbing names


def try_except(func):
    """As the real decorator: print the traceback and return None instead of raising."""

    @_functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception:
            import traceback

            traceback.print_exc()
            return None

    return wrapper


def create_array(shape, dtype_tuple, capsule, size):
    """The native client's numpy factory hook; here a plain zeroed array of the asked dtype."""
    return _np.zeros(shape, dtype=_np.dtype(list(dtype_tuple)))


def subscribe_callback_wrapper(callback):
    """Wrap a user callback as the SDK does: errors are printed, not raised into the push thread."""

    def wrapper(data):
        try:
            return callback(data)
        except Exception:
            import traceback

            print("subscribe callback error:")
            traceback.print_exc()

    return wrapper


def subscribe_callback_wrapper_1820(callback):
    return subscribe_callback_wrapper(callback)


def subscribe_callback_wrapper_convert(callback, metaid):
    return subscribe_callback_wrapper(callback)


# ---------------------------------------------------------------------- financial statements


def _financial(stock_list, table_list, start_time, end_time, report_type, frames):
    import pandas as _pd

    env = _enter("get_financial_data")
    upper = {name.upper(): native for name, native in _fin.TABLES.items()}
    wanted = list(table_list) if table_list else list(_fin.TABLES)
    names = {upper.get(t.upper(), t): t for t in wanted}
    today = _tu.cst_date_of_ms(env.now().now_ms)
    lo, hi = _date_of(start_time, False), _date_of(end_time, True)
    key = "m_anntime" if report_type == "announce_time" else "m_timetag"
    out = {}
    for code in stock_list:
        i = env.market.index_of(code)
        if i is None or env.market.universe.kind[i] != "stock":
            continue
        inst = env.market.universe.instruments[i]
        tables = {native: [] for native in names}
        for rep in _fin.reports(inst.list_date, today):
            on = rep.announce if key == "m_anntime" else rep.end
            if (lo and on < lo) or (hi and on > hi):
                continue
            d = env.market.calendar.index_on_or_before(min(rep.end, today))
            detail = env.market.instrument_detail(i, max(d, 0))
            rows = _fin.statement_rows(
                env.market.seed, i, rep, detail["TotalVolume"], detail["FloatVolume"], detail["PreClose"]
            )
            for native in tables:
                tables[native].extend(rows.get(native, []))
        if frames:
            out[code] = {names[n]: _pd.DataFrame(rows) for n, rows in tables.items()}
        else:
            out[code] = {names[n]: rows for n, rows in tables.items()}
    return out


def get_financial_data(stock_list, table_list=[], start_time="", end_time="", report_type="report_time"):
    return _financial(stock_list, table_list, start_time, end_time, report_type, True)


def get_financial_data_ori(stock_list, table_list=[], start_time="", end_time="", report_type="report_time"):
    return _financial(stock_list, table_list, start_time, end_time, report_type, False)


def download_financial_data(stock_list, table_list=[], start_time="", end_time="", incrementally=None):
    """Financial data is generated on demand (nothing to fetch); returns None as the real call."""
    _enter("download_financial_data")


def download_financial_data2(stock_list, table_list=[], start_time="", end_time="", callback=None):
    _enter("download_financial_data2")
    total = len(stock_list)
    for k, code in enumerate(stock_list, 1):
        if callback is not None:
            with _contextlib.suppress(Exception):  # the SDK ignores progress-callback errors
                callback({"total": total, "finished": k, "stockcode": code, "message": ""})


# ---------------------------------------------------------------------- L2


def _l2_day(env, code):
    i = env.market.index_of(code)
    if i is None:
        return None, None, None
    t = env.sync()
    d = t.day_index
    if d < 0 or not env.market.listed_by(i, d):
        return None, None, None
    path = env.market.day_path(i, d)
    trades = _l2.transactions(env.market.seed, i, d, path, _tu.day_start_ms(env.market.calendar.day(d)))
    upto = _tu.day_start_ms(env.market.calendar.day(d)) + int(_l2.SLOT_SECONDS[max(t.slot, 0)] * 1000)
    return i, trades[trades["time"] <= upto] if t.slot >= 0 else trades[:0], t


def _window(arr, start_time, end_time, count, field_list):
    lo, hi = _x()._to_ms(start_time, False), _x()._to_ms(end_time, True)
    if lo is not None:
        arr = arr[arr["time"] >= lo]
    if hi is not None:
        arr = arr[arr["time"] <= hi]
    if count is not None and int(count) >= 0:
        arr = arr[len(arr) - int(count) :] if int(count) else arr[:0]
    if field_list:
        arr = arr[[f for f in field_list if f in arr.dtype.names]]
    return arr


def get_l2_transaction(field_list=[], stock_code="", start_time="", end_time="", count=-1):
    env = _enter("get_l2_transaction")
    _, trades, _ = _l2_day(env, stock_code)
    if trades is None:
        return None
    return _window(trades, start_time, end_time, count, field_list)


def get_l2_order(field_list=[], stock_code="", start_time="", end_time="", count=-1):
    env = _enter("get_l2_order")
    _, trades, _ = _l2_day(env, stock_code)
    if trades is None:
        return None
    return _window(_l2.orders(trades), start_time, end_time, count, field_list)


def get_l2_quote(field_list=[], stock_code="", start_time="", end_time="", count=-1):
    """L2 snapshots: the L1 tick history of today (the simulator's books are the L1 five levels)."""
    _enter("get_l2_quote")
    frames = _x()._tick_frames(list(field_list) or None, [stock_code], start_time, end_time, count)
    frame = frames.get(stock_code)
    return None if frame is None else frame


def get_transactioncount(code_list):
    """Counts per code from the L2 transaction stream of today (trade count, volume, amount)."""
    env = _enter("get_transactioncount")
    out = {}
    for code in code_list:
        _, trades, _ = _l2_day(env, code)
        if trades is None or not len(trades):
            continue
        buy = trades["tradeFlag"] == 1
        out[code] = {
            "time": int(trades["time"][-1]),
            "bidNumber": int(buy.sum()),
            "offNumber": int((~buy).sum()),
            "ddx": 0.0,
            "netOrder": int(buy.sum() - (~buy).sum()),
            "bidVolume": [int(trades["volume"][buy].sum())],
            "offVolume": [int(trades["volume"][~buy].sum())],
            "bidAmount": [float(trades["amount"][buy].sum())],
            "offAmount": [float(trades["amount"][~buy].sum())],
        }
    return out


def get_l2thousand_queue(stock_code, gear_num=None, price=None):
    _enter("get_l2thousand_queue")
    return None  # the real client's reply has no 'result' without thousand-level data


def subscribe_l2thousand(stock_code, gear_num=None, callback=None):
    _enter("subscribe_l2thousand")
    return -1


def subscribe_l2thousand_queue(stock_code, callback=None, gear_num=None, price=None):
    _enter("subscribe_l2thousand_queue")
    return -1


def get_fullspeed_orderbook(code_list):
    _enter("get_fullspeed_orderbook")
    return {}


def get_broker_queue_data(stock_list=[], start_time="", end_time="", count=-1, show_broker_name=False):
    _enter("get_broker_queue_data")
    return {}


def get_order_rank(code, order_time, order_type, order_price, order_volume, order_left_volume):
    _enter("get_order_rank")
    return {}


def get_hk_broker_dict():
    _enter("get_hk_broker_dict")
    return {}


# ---------------------------------------------------------------------- index weights, ETF, IPO, ST


def get_index_weight(index_code):
    """Weights (fractions summing to 1) of an index's constituents today, by free-float cap."""
    env = _enter("get_index_weight")
    from .. import sectors

    if index_code not in sectors.INDEX_SECTORS:
        return {}
    today = _tu.cst_date_of_ms(env.now().now_ms)
    rows = sectors._constituents(env.market, index_code, today)
    u = env.market.universe
    cap = u.float_shares[rows] * u.anchor[rows]
    total = float(cap.sum())
    return {u.instruments[int(j)].code: float(c) / total for j, c in zip(rows, cap, strict=True)}


def download_index_weight():
    _enter("download_index_weight")


def get_etf_info():
    """ETF creation/redemption lists: every simulated ETF with the basket of the index it tracks
    (constituents weighted by free-float cap, one creation unit of 1,000,000 shares at the previous
    close, component quantities in board lots), keyed by ETF code as the real answer."""
    env = _enter("get_etf_info")
    from .. import sectors

    m = env.market
    u = m.universe
    t = env.now()
    d = max(t.day_index, 0)
    today = m.calendar.day(d)
    weights: dict[str, list[tuple[int, float]]] = {}
    prices: dict[int, float] = {}

    def price(i: int) -> float:
        if i not in prices:
            prices[i] = float(m.instrument_detail(i, d)["PreClose"])
        return prices[i]

    out = {}
    for i, inst in enumerate(u.instruments):
        if inst.kind != "etf" or inst.list_date > today:
            continue
        if inst.tracks not in weights:
            rows = (
                sectors._constituents(m, inst.tracks, today) if inst.tracks in sectors.INDEX_SECTORS else []
            )
            cap = u.float_shares[rows] * u.anchor[rows] if len(rows) else _np.zeros(0)
            total = float(cap.sum()) or 1.0
            weights[inst.tracks] = [(int(j), float(c) / total) for j, c in zip(rows, cap, strict=True)]
        unit = 1_000_000
        basket = unit * price(i)
        components = []
        cash = basket
        for j, w in weights[inst.tracks]:
            p = price(j)
            qty = round(w * basket / p / 100.0) * 100 if p > 0 else 0
            if qty <= 0:
                continue
            member = u.instruments[j]
            cash -= qty * p
            components.append(
                {
                    "成份股代码": member.symbol,
                    "成份股名称": member.name,
                    "成份股数量": qty,
                    "成份股所属市场": member.market,
                    "现金替代标志": 1,
                }
            )
        out[inst.code] = {
            "market": inst.market,
            "基金代码": inst.symbol,
            "基金名称": inst.name,
            "跟踪指数": inst.tracks,
            "最小申购赎回单位": unit,
            "现金差额": round(cash, 2),
            "成份股信息": components,
        }
    return out


def download_etf_info():
    _enter("download_etf_info")


def get_ipo_info(start_time="", end_time=""):
    """Listings of the simulated universe between the dates, in the real IPO record's keys."""
    env = _enter("get_ipo_info")
    lo, hi = _date_of(start_time, False), _date_of(end_time, True)
    today = _tu.cst_date_of_ms(env.now().now_ms)
    out = []
    for i, inst in enumerate(env.market.universe.instruments):
        if inst.kind != "stock" or inst.list_date > today:
            continue
        if (lo and inst.list_date < lo) or (hi and inst.list_date > hi):
            continue
        detail = env.market.instrument_detail(i, env.market.daily.chain(i).start)
        out.append(
            {
                "securityCode": inst.code,
                "codeName": inst.name,
                "market": inst.market,
                "actIssueQty": int(inst.float_shares * 0.25),
                "onlineIssueQty": int(inst.float_shares * 0.1),
                "onlineSubCode": inst.symbol,
                "onlineSubMaxQty": 10000,
                "publishPrice": detail["PreClose"],
                "startDate": (inst.list_date - _dt.timedelta(days=10)).strftime("%Y%m%d"),
                "onlineSubMinQty": 500,
                "isProfit": 1,
                "industryPe": 0.0,
                "beforePE": 0.0,
                "afterPE": 0.0,
                "listedDate": inst.list_date.strftime("%Y%m%d"),
                "declareDate": (inst.list_date - _dt.timedelta(days=8)).strftime("%Y%m%d"),
                "paymentDate": (inst.list_date - _dt.timedelta(days=7)).strftime("%Y%m%d"),
                "lwr": 0.0,
            }
        )
    return out


def get_his_st_data(stock_code):
    """ST history: the simulated universe marks ST by name ('ST'/'*ST' prefix) from listing on."""
    env = _enter("get_his_st_data")
    i = env.market.index_of(stock_code)
    if i is None:
        return {}
    inst = env.market.universe.instruments[i]
    for tag in ("*ST", "ST"):
        if inst.name.startswith(tag):
            return {tag: [[inst.list_date.strftime("%Y%m%d"), "20380119"]]}
    return {}


def download_his_st_data():
    _enter("download_his_st_data")


# ---------------------------------------------------------------------- trading periods, servers

_STOCK_TRADINGS = [
    {"status": 2, "time": [0, [91500, 1], [92500, 1]]},
    {"status": 3, "time": [0, [93000, 1], [113000, 1]]},
    {"status": 3, "time": [0, [130000, 1], [145700, 1]]},
    {"status": 8, "time": [0, [145700, 1], [150000, 1]]},
]


def get_trading_period(stock_code):
    env = _enter("get_trading_period")
    i = env.market.index_of(stock_code)
    if i is None:
        return {}
    inst = env.market.universe.instruments[i]
    return {
        "market": inst.market,
        "codeRegex": "*",
        "product": [],
        "category": [],
        "tradings": [dict(t, time=list(t["time"])) for t in _STOCK_TRADINGS],
    }


def get_kline_trading_period(stock_code):
    return get_trading_period(stock_code)


def get_all_trading_periods():
    _enter("get_all_trading_periods")
    return [
        {"market": m, "codeRegex": "*", "product": [], "category": [], "tradings": list(_STOCK_TRADINGS)}
        for m in ("SH", "SZ", "BJ")
    ]


def get_all_kline_trading_periods():
    return get_all_trading_periods()


class QuoteServer:
    """A quote server entry as get_quote_server_status returns (the simulator is one, local)."""

    def __init__(self, info={}):
        self.info = dict(info)

    def _BSON_call_common(self, interface, func, param):
        return {}

    def __str__(self):
        return str(self.info)

    def connect(self):
        return {"result": True}

    def disconnect(self):
        return {"result": True}

    def test_load(self):
        return {"delay": 0, "load": 0.0}

    def get_available_quote_key(self):
        return ["SH_L1", "SZ_L1", "BJ_L1"]

    def get_server_list(self):
        return [self.info]

    def set_key(self, key_list=[]):
        return {"result": True}


def get_quote_server_status():
    env = _enter("get_quote_server_status")
    connected = env.faults.connected
    info = {
        "ip": "127.0.0.1",
        "port": 58610,
        "username": "",
        "servername": "qmtgate-sim",
        "connected": connected,
        "delay": 0,
    }
    return {f"0_{m}_L1": QuoteServer(info) for m in ("SH", "SZ", "BJ")}


def show_quote_server_status():
    for key, server in get_quote_server_status().items():
        print(key, server)


def watch_quote_server_status(callback):
    _x().watch_xtquant_status(callback)


def get_quote_server_config():
    _enter("get_quote_server_config")
    return [{"ip": "127.0.0.1", "port": 58610, "servername": "qmtgate-sim"}]


def fetch_quote_server_from_config(root_path, key_list):
    return []


def get_authorized_market_list():
    _enter("get_authorized_market_list")
    return ["SH", "SZ", "BJ"]


def get_wp_market_list():
    _enter("get_wp_market_list")
    return []


def get_all_sub_info():
    env = _enter("get_all_sub_info")
    return [
        {"seq": s.sub_id, "code": s.code, "period": s.period, "whole": s.whole}
        for s in env.publisher.subscriptions()
    ]


def get_current_connect_sub_info():
    return get_all_sub_info()


# ---------------------------------------------------------------------- sector editing (persisted)


def _sectors():
    return _env.current().user_sectors


def get_sector_info(sector_name=""):
    _enter("get_sector_info")
    return _sectors().info(sector_name)


def create_sector_folder(parent_node, folder_name, overwrite=True):
    _enter("create_sector_folder")
    return _sectors().create(parent_node, folder_name, overwrite, folder=True)


def create_sector(parent_node, sector_name, overwrite=True):
    _enter("create_sector")
    return _sectors().create(parent_node, sector_name, overwrite, folder=False)


def add_sector(sector_name, stock_list):
    _enter("add_sector")
    _sectors().add(sector_name, list(stock_list))


def remove_stock_from_sector(sector_name, stock_list):
    _enter("remove_stock_from_sector")
    return _sectors().remove_stocks(sector_name, list(stock_list))


def remove_sector(sector_name):
    _enter("remove_sector")
    _sectors().remove(sector_name)


def reset_sector(sector_name, stock_list):
    _enter("reset_sector")
    return _sectors().reset(sector_name, list(stock_list))


# ---------------------------------------------------------------------- empty-as-real


def get_main_contract(code_market, start_time="", end_time=""):
    _enter("get_main_contract")
    return ""


def get_sec_main_contract(code_market, start_time="", end_time=""):
    _enter("get_sec_main_contract")
    return ""


def download_history_contracts(incrementally=True):
    _enter("download_history_contracts")


def get_cb_info(stockcode):
    _enter("get_cb_info")
    return {}


def download_cb_data():
    _enter("download_cb_data")


def bnd_get_conversion_price(stock_code, start_time="", end_time=""):
    import pandas as _pd

    _enter("bnd_get_conversion_price")
    return _pd.DataFrame()


def bnd_get_call_info(stock_code, start_time="", end_time=""):
    import pandas as _pd

    _enter("bnd_get_call_info")
    return _pd.DataFrame()


def bnd_get_put_info(stock_code, start_time="", end_time=""):
    import pandas as _pd

    _enter("bnd_get_put_info")
    return _pd.DataFrame()


def bnd_get_amount_change(stock_code, start_time="", end_time=""):
    import pandas as _pd

    _enter("bnd_get_amount_change")
    return _pd.DataFrame()


def get_option_detail_data(optioncode):
    _enter("get_option_detail_data")
    return None  # the real answer for a code that is not an option


def get_option_undl_data(undl_code_ref):
    _enter("get_option_undl_data")
    return "" if undl_code_ref else {}  # no options: no underlying / an empty map


def get_option_list(undl_code, dedate, opttype="", isavailavle=False):
    _enter("get_option_list")
    return []


def get_his_option_list(undl_code, dedate):
    _enter("get_his_option_list")
    return None


def get_his_option_list_batch(undl_code, start_time="", end_time=""):
    _enter("get_his_option_list_batch")
    return {}


def get_trading_contract_list(stockcode, date=None):
    _enter("get_trading_contract_list")
    return []


def subscribe_formula(
    formula_name, stock_code, period, start_time="", end_time="", count=-1, dividend_type=None,
    extend_param={}, callback=None,
):  # fmt: skip
    """Formulas run inside the QMT client's formula engine, which the simulator does not have."""
    _enter("subscribe_formula")
    return -1


def unsubscribe_formula(request_id):
    _enter("unsubscribe_formula")
    return False


def bind_formula(request_id, callback=None):
    _enter("bind_formula")
    return False


def call_formula(
    formula_name, stock_code, period, start_time="", end_time="", count=-1, dividend_type=None, extend_param={}
):  # fmt: skip
    _enter("call_formula")
    return {}


def get_formula_result(request_id, start_time="", end_time="", count=-1, timeout_second=-1):
    _enter("get_formula_result")
    return {}


def create_formula(formula_name, formula_content, formula_params={}):
    _enter("create_formula")
    return False


def import_formula(formula_name, file_path):
    _enter("import_formula")
    return False


def del_formula(formula_name):
    _enter("del_formula")
    return False


def get_formulas():
    _enter("get_formulas")
    return {}


def generate_index_data(
    formula_name, formula_param={}, stock_list=[], period="1d", dividend_type="none", start_time="",
    end_time="", fill_mode="fixed", fill_value=float("nan"), result_path=None,
):  # fmt: skip
    _enter("generate_index_data")
    return None


def gen_factor_index(
    data_name, formula_name, vars, sector_list, start_time="", end_time="", period="1d", dividend_type="none"
):  # fmt: skip
    _enter("gen_factor_index")
    return None


def get_tabular_formula(
    codes, fields, period, start_time, end_time, count=-1, dividend_type="none", **kwargs
):
    import pandas as _pd

    _enter("get_tabular_formula")
    return _pd.DataFrame()


def get_tabular_data(
    field_list=[], stock_list=[], period="1d", start_time="", end_time="", count=-1, dividend_type="none",
    fill_data=True,
):  # fmt: skip
    import pandas as _pd

    _enter("get_tabular_data")
    return _pd.DataFrame()


def download_tabular_data(
    stock_list, period, start_time="", end_time="", incrementally=None, download_type="validationbypage",
    source="",
):  # fmt: skip
    _enter("download_tabular_data")


def get_field_list(metaid):
    return {}


def push_custom_data(meta, datas, coverall=False):
    _enter("push_custom_data")
    return None


def reset_market_stock_list(market, datas):
    _enter("reset_market_stock_list")


def reset_market_trading_day_list(market, datas):
    _enter("reset_market_trading_day_list")


def compute_coming_trading_calendar(market, start_time="", end_time=""):
    """Calendar days after the last known trading day: none (the simulated calendar covers them)."""
    _enter("compute_coming_trading_calendar")
    if market not in ("SH", "SZ"):
        raise Exception("暂不支持除SH,SZ以外市场的交易日历")
    return []


def is_stock_type(stock, tag):
    info = _x().get_instrument_type(stock, [tag])
    return bool(info.get(tag, False))


def read_feather(file_path):
    import pyarrow.feather as feather

    table = feather.read_table(file_path)
    meta = table.schema.metadata or {}
    return {k.decode(): _json.loads(v) for k, v in meta.items() if k != b"pandas"}, table.to_pandas()


def write_feather(dest_path, param, df):
    import pyarrow as pa
    import pyarrow.feather as feather

    table = pa.Table.from_pandas(df)
    meta = dict(table.schema.metadata or {})
    meta.update({str(k).encode(): _json.dumps(v).encode() for k, v in dict(param).items()})
    feather.write_feather(table.replace_schema_metadata(meta), dest_path)
    return True


def get_market_data_ori(
    field_list=[], stock_list=[], period="1d", start_time="", end_time="", count=-1, dividend_type="none",
    fill_data=True, enable_read_from_server=True, data_dir=None,
):  # fmt: skip
    return _x().get_market_data(
        field_list, stock_list, period, start_time, end_time, count, dividend_type, fill_data
    )


def get_market_data_ex_ori(
    field_list=[], stock_list=[], period="1d", start_time="", end_time="", count=-1, dividend_type="none",
    fill_data=True, enable_read_from_server=True, data_dir=None,
):  # fmt: skip
    return _x().get_market_data_ex(
        field_list, stock_list, period, start_time, end_time, count, dividend_type, fill_data
    )


def _get_market_data_ex_221207(
    field_list=[], stock_list=[], period="1d", start_time="", end_time="", count=-1, dividend_type="none",
    fill_data=True, enable_read_from_server=True,
):  # fmt: skip
    """get_market_data3: numpy-record variant of get_market_data_ex ({code: structured array})."""
    frames = _x().get_market_data_ex(
        field_list, stock_list, period, start_time, end_time, count, dividend_type, fill_data
    )
    return {code: frame.to_records(index=False) for code, frame in frames.items()}


get_market_data3 = _get_market_data_ex_221207
gmd3 = get_market_data3


@try_except
def getDividFactors(stock_code, date):
    frame = _x().get_divid_factors(stock_code, date, date)
    return {} if frame is None or frame.empty else {k: list(v) for k, v in frame.T.to_dict("list").items()}


@try_except
def timetagToDateTime(timetag, format):
    return _x().timetag_to_datetime(timetag, format)


_ = _math  # kept for the float('nan') default's module
