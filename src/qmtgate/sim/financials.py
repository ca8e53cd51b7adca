"""Simulated financial statements (xtdata.get_financial_data), consistent with the market model.

Why: bridges written for the real SDK read Balance/Income/Capital/... next to quotes; the figures must
agree with what the rest of the simulator says about the same company, or factor code built on them
computes nonsense. The invariants (tested): ``Capital.total_capital`` is the instrument detail's
``TotalVolume``, ``circulating_capital`` its ``FloatVolume``; ``Pershareindex.s_fa_eps_basic`` is
``Income.net_profit_incl_min_int_inc / total_capital`` of the same report; ``Balance`` balances
(``tot_liab_shrhldr_eqy = tot_assets = tot_liab + tot_shrhldr_eqy_incl_min_int``).

Reports are quarterly (report_time = period end 0331/0630/0930/1231, cumulative year-to-date as A-share
reports are), announced on a fixed lag (Q1 04-25, H1 08-25, Q3 10-25, annual 03-30 of the next year).
A report is visible only once announced by the simulated "now", so nothing leaks from the future.
Figures are drawn from a keyed stream of (seed, instrument, year), so every process sees the same.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .rand import keyed_rng

#: The eight tables of the real SDK: the name users pass (case-insensitive) -> the native table id.
TABLES = {
    "Balance": "ASHAREBALANCESHEET",
    "Income": "ASHAREINCOME",
    "CashFlow": "ASHARECASHFLOW",
    "Capital": "CAPITALSTRUCTURE",
    "HolderNum": "SHAREHOLDER",
    "Top10Holder": "TOP10HOLDER",
    "Top10FlowHolder": "TOP10FLOWHOLDER",
    "PershareIndex": "PERSHAREINDEX",
}
_QUARTER_ENDS = ((3, 31), (6, 30), (9, 30), (12, 31))
#: Announcement (month, day, year offset) of each quarter's report.
_ANNOUNCE = ((4, 25, 0), (8, 25, 0), (10, 25, 0), (3, 30, 1))


@dataclass(frozen=True)
class Report:
    end: dt.date  # report_time (m_timetag)
    announce: dt.date  # announce_time (m_anntime)
    quarter: int  # 1..4


def reports(list_date: dt.date, today: dt.date) -> list[Report]:
    """Reports of a company listed on ``list_date`` that are announced by ``today``, oldest first."""
    out = []
    for year in range(list_date.year - 1, today.year + 1):
        for q, ((m, d), (am, ad, ay)) in enumerate(zip(_QUARTER_ENDS, _ANNOUNCE, strict=True), 1):
            end, ann = dt.date(year, m, d), dt.date(year + ay, am, ad)
            if ann <= today and end >= dt.date(list_date.year - 1, 12, 31):
                out.append(Report(end, ann, q))
    return out


def _ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def _year_figures(seed: int, row: int, year: int, market_cap: float) -> dict[str, float]:
    """Annual revenue, net margin and balance-sheet size of one company-year (deterministic)."""
    g = keyed_rng(seed, 0xF1, row, year)
    revenue = market_cap * float(g.uniform(0.15, 1.2))
    margin = float(g.uniform(-0.04, 0.18))
    assets = market_cap * float(g.uniform(0.6, 2.5))
    leverage = float(g.uniform(0.2, 0.7))
    cash_ratio = float(g.uniform(0.05, 0.3))
    holders = int(g.integers(8_000, 400_000))
    return {
        "revenue": revenue,
        "margin": margin,
        "assets": assets,
        "leverage": leverage,
        "cash_ratio": cash_ratio,
        "holders": holders,
    }


def statement_rows(
    seed: int,
    row: int,
    report: Report,
    total_shares: float,
    float_shares: float,
    price: float,
) -> dict[str, list[dict]]:
    """All eight tables' rows for one report (native table id -> list of row dicts)."""
    f = _year_figures(seed, row, report.end.year, max(price, 0.01) * total_shares)
    share = report.quarter / 4.0  # cumulative year-to-date
    revenue = f["revenue"] * share
    net = revenue * f["margin"]
    total_cost = revenue - net
    assets = f["assets"]
    liab = assets * f["leverage"]
    equity = assets - liab
    cash = assets * f["cash_ratio"]
    dates = {"m_timetag": _ymd(report.end), "m_anntime": _ymd(report.announce)}
    eps = net / total_shares if total_shares else float("nan")
    bps = equity / total_shares if total_shares else float("nan")
    balance = {
        **dates,
        "cash_equivalents": cash,
        "tot_cur_assets": assets * 0.55,
        "tot_non_cur_assets": assets * 0.45,
        "tot_assets": assets,
        "tot_cur_liab": liab * 0.7,
        "tot_non_cur_liab": liab * 0.3,
        "tot_liab": liab,
        "cap_stk": total_shares,
        "tot_shrhldr_eqy_excl_min_int": equity,
        "tot_shrhldr_eqy_incl_min_int": equity,
        "tot_liab_shrhldr_eqy": assets,
    }
    income = {
        **dates,
        "revenue_inc": revenue,
        "revenue": revenue,
        "total_operating_cost": total_cost,
        "oper_profit": net * 1.25,
        "tot_profit": net * 1.25,
        "inc_tax": net * 0.25,
        "net_profit_incl_min_int_inc": net,
        "net_profit_excl_min_int_inc": net,
        "net_profit_incl_min_int_inc_after": net * 0.95,
        "minority_int_inc": 0.0,
        "s_fa_eps_basic": eps,
        "s_fa_eps_diluted": eps,
    }
    cashflow = {
        **dates,
        "goods_sale_and_service_render_cash": revenue * 1.05,
        "net_cash_flows_oper_act": net * 1.1,
        "net_cash_flows_inv_act": -abs(net) * 0.4,
        "net_cash_flows_fnc_act": -abs(net) * 0.2,
        "cash_cash_equ_end_period": cash,
    }
    capital = {
        **dates,
        "total_capital": total_shares,
        "circulating_capital": float_shares,
        "restrict_circulating_capital": total_shares - float_shares,
    }
    pershare = {
        **dates,
        "s_fa_eps_basic": eps,
        "s_fa_eps_diluted": eps,
        "s_fa_bps": bps,
        "s_fa_ocfps": net * 1.1 / total_shares if total_shares else float("nan"),
        "equity_roe": net / equity * 100 if equity else float("nan"),
        "sales_gross_profit": f["margin"] * 100,
        "gear_ratio": f["leverage"] * 100,
    }
    holder_dates = {"declareDate": _ymd(report.announce), "endDate": _ymd(report.end)}
    holders = int(f["holders"] * (1 + 0.02 * report.quarter))
    holdernum = {
        **holder_dates,
        "shareholder": holders,
        "shareholderA": holders,
        "shareholderB": 0,
        "shareholderH": 0,
        "shareholderFloat": holders,
        "shareholderOther": 0,
    }

    def top10(base: float, kind: int) -> list[dict]:
        g = keyed_rng(seed, 0xF2 + kind, row, report.end.year, report.quarter)
        weights = sorted(g.dirichlet([1.0] * 11)[:10] * float(g.uniform(0.3, 0.7)), reverse=True)
        return [
            {
                **holder_dates,
                "name": f"股东{row:05d}-{rank}",
                "type": "机构" if rank % 3 else "个人",
                "quantity": float(round(base * w)),
                "reason": "不变",
                "ratio": float(round(base * w)) / base * 100 if base else 0.0,
                "nature": "流通A股",
                "rank": rank,
            }
            for rank, w in enumerate(weights, 1)
        ]

    return {
        "ASHAREBALANCESHEET": [balance],
        "ASHAREINCOME": [income],
        "ASHARECASHFLOW": [cashflow],
        "CAPITALSTRUCTURE": [capital],
        "SHAREHOLDER": [holdernum],
        "TOP10HOLDER": top10(total_shares, 0),
        "TOP10FLOWHOLDER": top10(float_shares, 1),
        "PERSHAREINDEX": [pershare],
    }
