"""``xtquant.xtdata`` (250807) served by a remote qmtgate gateway: names, signatures, return shapes and
units of xtquant for everything the gateway serves.

An explicit allow-list: the functions below are all there is. Any other public name raises
:class:`NotServed` naming it (an ``AttributeError``, so ``hasattr`` is False); nothing is proxied by name
and nothing is pickled. Differences from a local QMT, by design of the gateway: minute history is
downloaded for you before a read, and today's bars are visible for every code (the gateway holds a
whole-market subscription). Times given as ``datetime`` are Asia/Shanghai wall time.
"""

import contextlib as _contextlib
import datetime as _dt
import time as _time
import traceback as _traceback

from qmtgate.client import errors as _errors
from qmtgate.remote import _shapes
from qmtgate.remote._state import current as _session
from qmtgate.vocab import CST as _CST

debug_mode = 0
enable_hello = False

_MARKETS = ("SH", "SZ", "BJ")
_SECTOR_STRIP = '\\/:*?"<>|'


class NotServed(AttributeError):
    """An xtdata function the gateway does not serve."""


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise NotServed(
        f"xtdata.{name} is not served by qmtgate.remote (the gateway serves: {', '.join(__all__)})"
    )


def __dir__():
    return sorted(__all__)


# ---------------------------------------------------------------------- market data


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
    return _session().kline_frames(
        field_list, stock_list, period, start_time, end_time, count, dividend_type, fill_data
    )


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
    frames = get_market_data_ex(
        field_list, stock_list, period, start_time, end_time, count, dividend_type, fill_data
    )
    return _shapes.field_major(frames, field_list, stock_list)


def get_full_tick(code_list):
    if isinstance(code_list, str):
        code_list = [code_list]
    return _session().client.xt_full_tick(list(code_list))


# ---------------------------------------------------------------------- subscriptions


def subscribe_quote(stock_code, period="1d", start_time="", end_time="", count=0, callback=None):
    return subscribe_quote2(stock_code, period, start_time, end_time, count, None, callback)


def subscribe_quote2(
    stock_code, period="1d", start_time="", end_time="", count=0, dividend_type=None, callback=None
):
    return _session().subscribe(
        period, [stock_code], [], callback, whole=False, dividend_type=dividend_type or "none"
    )


def subscribe_whole_quote(code_list, callback=None):
    if isinstance(code_list, str):
        code_list = [code_list]
    markets = [c for c in code_list if c in _MARKETS]
    codes = [c for c in code_list if c not in _MARKETS]
    return _session().subscribe("tick", codes, markets, callback, whole=True)


def unsubscribe_quote(seq):
    _session().unsubscribe(int(seq))


def run():
    """Block the calling thread while callbacks run on the background thread (as xtquant's ``run``)."""
    session = _session()
    while not session.closed:
        _time.sleep(0.5)
    raise Exception("qmtgate.remote session closed")


# ---------------------------------------------------------------------- reference data


def get_instrument_detail(stock_code, iscomplete=False):
    return _session().client.xt_instrument_detail([stock_code], bool(iscomplete)).get(stock_code)


def get_instrument_detail_list(stock_list, iscomplete=False):
    stock_list = list(stock_list)
    if not stock_list:
        return {}
    return _session().client.xt_instrument_detail(stock_list, bool(iscomplete))


def get_instrument_type(stock_code, variety_list=None):
    try:
        answer = _session().client.instrument_type(stock_code)
    except (_errors.NotFound, _errors.BadRequest):
        return {}
    flags = answer.get("type") or {}
    if variety_list is None:
        return dict(flags)
    return {k: bool(flags.get(k, False)) for k in variety_list}


def get_sector_list():
    return list(_session().client.sectors())


def get_stock_list_in_sector(sector_name, real_timetag=-1):
    if real_timetag not in (-1, "", None):
        raise NotServed("xtdata.get_stock_list_in_sector(real_timetag=...) is not served by qmtgate.remote")
    for ch in _SECTOR_STRIP:
        sector_name = sector_name.replace(ch, "")
    try:
        return list(_session().client.sector_members(sector_name))
    except _errors.NotFound:
        return []


def get_trading_dates(market, start_time="", end_time="", count=-1):
    return list(
        _session().client.xt_trading_dates(
            market, _shapes.xt_time(start_time), _shapes.xt_time(end_time), int(count)
        )
    )


def get_trading_calendar(market, start_time="", end_time=""):
    return list(
        _session().client.xt_trading_calendar(market, _shapes.xt_time(start_time), _shapes.xt_time(end_time))
    )


def get_holidays():
    return list(_session().client.xt_holidays())


def get_divid_factors(stock_code, start_time="", end_time=""):
    table, _ = _session().client.xt_divid_factors(
        stock_code, _shapes.xt_time(start_time), _shapes.xt_time(end_time)
    )
    return _shapes.divid_frame(table)


# ---------------------------------------------------------------------- downloads


def download_sector_data():
    """xtquant's idiom before reading index-constituent or industry sectors (沪深300, SW1银行...).

    The gateway fetches QMT's sector data itself, once a day before its first sector answer; this call
    makes sure it has (by asking for the sector list) and returns None, as the simulator's does.
    """
    _session().client.sectors()


def download_history_data(stock_code, period, start_time="", end_time="", incrementally=None):
    return download_history_data2([stock_code], period, start_time, end_time, None, incrementally)


def download_history_data2(stock_list, period, start_time="", end_time="", callback=None, incrementally=None):
    """Runs a gateway download job and waits for it; progress goes to ``callback`` as xtquant's dicts.

    Returns ``{}`` (xtquant's answer is often empty too). A failed job raises ``Exception('下载数据失败：...')``.
    """
    if isinstance(stock_list, str):
        stock_list = [stock_list]
    stock_list = list(stock_list)
    if not stock_list:
        return {}
    client = _session().client
    start = _shapes.xt_time(start_time)[:8] or None
    end = _shapes.xt_time(end_time)[:8] or None
    job = client.submit_download(stock_list, period, start, end)
    reported = -1
    while True:
        progress = job.get("progress") or {}
        finished = int(progress.get("finished") or 0)
        if callback is not None and finished != reported:
            reported = finished
            with _contextlib.suppress(Exception):  # the SDK ignores progress-callback errors
                callback(
                    {
                        "finished": finished,
                        "total": int(progress.get("total") or len(stock_list)),
                        "stockcode": progress.get("code") or "",
                        "message": "",
                    }
                )
        state = job.get("state")
        if state == "succeeded":
            return {}
        if state in ("failed", "cancelled"):
            error = job.get("error") or {}
            raise Exception(f"下载数据失败：{error.get('message') or state}")
        _time.sleep(0.02)
        job = client.download_job(job["id"])


# ---------------------------------------------------------------------- time helpers (local, no network)


def timetag_to_datetime(timetag, format):
    try:
        return _dt.datetime.fromtimestamp(int(timetag) / 1000, _CST).strftime(format)
    except Exception:
        _traceback.print_exc()
        return None


def datetime_to_timetag(datetime, format="%Y%m%d%H%M%S"):
    value = _dt.datetime.strptime(datetime, format) if isinstance(datetime, str) else datetime
    if value.tzinfo is None:
        value = value.replace(tzinfo=_CST)
    return float(int(value.timestamp() * 1000))


gmd = get_market_data
gmd2 = get_market_data_ex
gld = get_local_data
t2d = timetag_to_datetime
gsl = get_stock_list_in_sector
supply_history_data = download_history_data
get_stock_type = get_instrument_type

__all__ = [
    "datetime_to_timetag", "download_history_data", "download_history_data2", "download_sector_data",
    "get_divid_factors",
    "get_full_tick", "get_holidays", "get_instrument_detail", "get_instrument_detail_list",
    "get_instrument_type", "get_local_data", "get_market_data", "get_market_data_ex",
    "get_sector_list", "get_stock_list_in_sector", "get_stock_type", "get_trading_calendar",
    "get_trading_dates", "gld", "gmd", "gmd2", "gsl", "run", "subscribe_quote", "subscribe_quote2",
    "subscribe_whole_quote", "supply_history_data", "t2d", "timetag_to_datetime", "unsubscribe_quote",
]  # fmt: skip
