"""The rest of the real xtdata surface on the simulator (issue 19, item 2): financial statements, L2
streams, index weights, trading periods, quote-server status, sector editing, IPO info, the native
client's methods.

Must show: Capital's total shares equal the instrument detail's, Pershareindex's EPS is Income's net
profit over those shares (property tests over codes), L2 transactions of a snapshot interval sum to the
difference of the two snapshots' volume and amount.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmtgate.sim.xtquant import _env

from .conftest import NOW_MS

STOCKS = ["600000.SH", "000001.SZ", "300750.SZ", "688981.SH", "601318.SH", "000858.SZ"]


def stock_codes(sim_env: _env.SimEnv) -> list[str]:
    u = sim_env.market.universe
    return [inst.code for inst in u.instruments if inst.kind == "stock"]


@pytest.fixture(scope="module")
def all_stocks(sim_env: _env.SimEnv) -> list[str]:
    return stock_codes(sim_env)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_capital_and_eps_agree_with_the_market_model(
    xt: types.ModuleType, all_stocks: list[str], data: st.DataObject
) -> None:
    code = data.draw(st.sampled_from(all_stocks))
    tables = xt.get_financial_data([code], ["Capital", "Income", "PershareIndex"])[code]
    capital, income, pershare = tables["Capital"], tables["Income"], tables["PershareIndex"]
    assert len(capital) == len(income) == len(pershare) > 0
    detail = xt.get_instrument_detail(code)
    assert (capital["total_capital"] == detail["TotalVolume"]).all()
    assert (capital["circulating_capital"] == detail["FloatVolume"]).all()
    assert list(capital["m_timetag"]) == list(income["m_timetag"]) == list(pershare["m_timetag"])
    expected = income["net_profit_incl_min_int_inc"] / capital["total_capital"]
    assert np.allclose(pershare["s_fa_eps_basic"], expected, rtol=1e-12)


def test_financial_report_time_and_announce_time_semantics(xt: types.ModuleType) -> None:
    code = "600000.SH"
    by_report = xt.get_financial_data([code], ["Income"], "20250101", "20250630", "report_time")[code][
        "Income"
    ]
    assert list(by_report["m_timetag"]) == ["20250331", "20250630"]
    by_announce = xt.get_financial_data([code], ["Income"], "20250101", "20250630", "announce_time")[code][
        "Income"
    ]
    # announced in that window: the 2024 annual report (03-30) and 2025 Q1 (04-25)
    assert list(by_announce["m_timetag"]) == ["20241231", "20250331"]
    assert (by_announce["m_anntime"] >= "20250101").all() and (by_announce["m_anntime"] <= "20250630").all()
    # nothing from the future: every report is announced by the simulated today
    everything = xt.get_financial_data([code], ["Balance"])[code]["Balance"]
    assert (everything["m_anntime"] <= pd.Timestamp(NOW_MS, unit="ms").strftime("%Y%m%d")).all()
    balance = everything.iloc[-1]
    assert math.isclose(balance["tot_assets"], balance["tot_liab"] + balance["tot_shrhldr_eqy_incl_min_int"])


def test_financial_tables_default_to_all_eight_and_unknown_codes_are_absent(xt: types.ModuleType) -> None:
    out = xt.get_financial_data(["600000.SH", "NOPE.SH"])
    assert list(out) == ["600000.SH"]
    assert list(out["600000.SH"]) == [
        "Balance", "Income", "CashFlow", "Capital", "HolderNum", "Top10Holder", "Top10FlowHolder", "PershareIndex",
    ]  # fmt: skip
    top10 = out["600000.SH"]["Top10Holder"]
    assert (top10.groupby("endDate")["rank"].apply(list).apply(lambda r: r == list(range(1, 11)))).all()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_l2_transactions_add_up_to_each_snapshot_interval(
    xt: types.ModuleType, sim_env: _env.SimEnv, all_stocks: list[str], data: st.DataObject
) -> None:
    code = data.draw(st.sampled_from(["600000.SH", *all_stocks]))
    if not sim_env.market.listed_by(sim_env.market.index_of(code), sim_env.now().day_index):
        return  # listed after the simulated today: no L2 (checked below for a listed code)
    trades = xt.get_l2_transaction(stock_code=code)
    if trades is None or not len(trades):
        assert code != "600000.SH"
        return  # suspended today
    # today's L1 snapshots up to now, as get_full_tick/subscriptions publish them
    t = sim_env.now()
    ticks = pd.DataFrame(sim_env.market.tick_history(sim_env.market.index_of(code), t.day_index, t.slot))
    assert len(ticks) > 1
    assert ticks["time"].iloc[-1] == xt.get_full_tick([code])[code]["time"]
    times = ticks["time"].to_numpy()
    vol, amt = ticks["volume"].to_numpy(), ticks["amount"].to_numpy()
    checked = 0
    for k in range(1, len(ticks)):
        inside = (trades["time"] > times[k - 1]) & (trades["time"] <= times[k])
        assert trades["volume"][inside].sum() == vol[k] - vol[k - 1]
        assert math.isclose(trades["amount"][inside].sum(), amt[k] - amt[k - 1], rel_tol=1e-9, abs_tol=1e-3)
        checked += 1
    assert checked > 10
    assert trades["time"].max() <= NOW_MS, "no trade from the future"
    orders = xt.get_l2_order(stock_code=code)
    assert len(orders) == 2 * len(trades)
    assert set(orders["entrustNo"]) == set(trades["buyNo"]) | set(trades["sellNo"])
    buys = orders["entrustDirection"] == 1
    assert set(orders["entrustNo"][buys]) == set(trades["buyNo"])
    assert orders["volume"][buys].sum() == trades["volume"].sum() == vol[-1]


def test_l2_of_an_unknown_code_is_none(xt: types.ModuleType) -> None:
    assert xt.get_l2_transaction(stock_code="NOPE.SH") is None


def test_index_weights_follow_the_simulated_membership(xt: types.ModuleType) -> None:
    xt.download_sector_data()
    weights = xt.get_index_weight("000300.SH")
    members = xt.get_stock_list_in_sector("沪深300")
    assert set(weights) == set(members) and len(weights) == 300
    assert math.isclose(sum(weights.values()), 1.0) and min(weights.values()) > 0
    assert xt.get_index_weight("NOPE.SH") == {}


def test_trading_period_and_quote_server_status(xt: types.ModuleType) -> None:
    period = xt.get_trading_period("600000.SH")
    assert period["market"] == "SH"
    spans = [(t["status"], t["time"][1][0], t["time"][2][0]) for t in period["tradings"]]
    assert (3, 93000, 113000) in spans and (3, 130000, 145700) in spans
    assert xt.get_trading_period("NOPE.SH") == {}
    status = xt.get_quote_server_status()
    assert set(status) == {"0_SH_L1", "0_SZ_L1", "0_BJ_L1"}
    assert all(isinstance(s, xt.QuoteServer) and s.info["connected"] for s in status.values())


def test_ipo_info_lists_the_universe_listings(xt: types.ModuleType, sim_env: _env.SimEnv) -> None:
    ipos = xt.get_ipo_info("20200101", "20201231")
    listed = [
        i.code for i in sim_env.market.universe.instruments if i.kind == "stock" and i.list_date.year == 2020
    ]
    assert sorted(r["securityCode"] for r in ipos) == sorted(listed)


def test_sector_editing_round_trip(fresh_env) -> None:
    env = fresh_env()
    from xtquant import xtdata

    name = xtdata.create_sector("我的", "自选A", True)
    assert name == "自选A"
    assert xtdata.create_sector("我的", "自选A", False) == "自选A1"
    xtdata.add_sector("自选A", ["600000.SH", "000001.SZ"])
    assert xtdata.get_stock_list_in_sector("自选A") == ["600000.SH", "000001.SZ"]
    assert "自选A" in xtdata.get_sector_list()
    xtdata.remove_stock_from_sector("自选A", ["600000.SH"])
    assert xtdata.get_stock_list_in_sector("自选A") == ["000001.SZ"]
    xtdata.reset_sector("自选A", ["300750.SZ"])
    assert xtdata.get_stock_list_in_sector("自选A") == ["300750.SZ"]
    assert (env.data_dir / "sectors.json").is_file(), "edits persist in the data directory"
    xtdata.remove_sector("自选A")
    assert xtdata.get_stock_list_in_sector("自选A") == []


def test_client_has_the_native_method_names(xt: types.ModuleType) -> None:
    client = xt.get_client()
    for name in (
        "supply_history_data2",
        "get_etf_info",
        "is_connected",
        "get_financial_data",
        "commonControl",
    ):
        assert callable(getattr(client, name)), name
    progress: list[dict] = []
    out = client.supply_history_data2(["600000.SH"], "1d", "20260101", "20260110", None, progress.append)
    assert "600000.SH" in out and progress[-1]["finished"] == 1
    assert all(v["market"] in ("SH", "SZ") for v in client.get_etf_info().values())


def test_etf_info_baskets_follow_the_tracked_index(xt: types.ModuleType, sim_env: _env.SimEnv) -> None:
    info = xt.get_etf_info()
    etfs = [i.code for i in sim_env.market.universe.instruments if i.kind == "etf"]
    assert set(info) <= set(etfs) and len(info) > 100
    etf = info["510300.SH"]
    assert etf["跟踪指数"] == "000300.SH"
    xt.download_sector_data()
    members = set(xt.get_stock_list_in_sector("沪深300"))
    codes = {f"{c['成份股代码']}.{c['成份股所属市场']}" for c in etf["成份股信息"]}
    assert codes <= members and len(codes) > 250
    assert all(c["成份股数量"] % 100 == 0 and c["成份股数量"] > 0 for c in etf["成份股信息"])
    pre = {code: xt.get_instrument_detail(code)["PreClose"] for code in codes}
    basket = sum(c["成份股数量"] * pre[f"{c['成份股代码']}.{c['成份股所属市场']}"] for c in etf["成份股信息"])
    unit_value = etf["最小申购赎回单位"] * xt.get_instrument_detail("510300.SH")["PreClose"]
    assert math.isclose(basket + etf["现金差额"], unit_value, abs_tol=0.01)
