"""The rest of qmt-bridge 2.1.3's data routes: a 501 ``unsupported`` naming the client method, not a 404.

These need data qmtgate's sources do not serve (Level-2, financial statements, options, ETF and convertible
bond tables, futures main contracts, HK lists, tabular data, formulas) or would write into QMT (user-defined
sectors). A script that calls one gets ``urllib.error.HTTPError: 501`` whose body says which method and
why, instead of a 404 that looks like a wrong URL. Trading routes are out of scope (market data only).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter

from qmtgate.api.openapi import ERRORS
from qmtgate.errors import Unsupported
from qmtgate.security.deps import ADMIN

router = APIRouter(tags=["compat: qmt-bridge"], responses=ERRORS)

_L2 = "Level-2 data is not served (qmtgate serves L1 snapshots, K-lines and reference data)"
_NO_DATA = "qmtgate's sources do not serve this data"
_WRITE = "qmtgate is read-only: it does not change QMT's user-defined sectors"

#: (HTTP method, path, qmt-bridge client method, why)
ROUTES: tuple[tuple[str, str, str, str], ...] = (
    ("GET", "/api/tick/l2_quote", "get_l2_quote", _L2),
    ("GET", "/api/tick/l2_order", "get_l2_order", _L2),
    ("GET", "/api/tick/l2_transaction", "get_l2_transaction", _L2),
    ("GET", "/api/tick/l2_thousand_quote", "get_l2_thousand_quote", _L2),
    ("GET", "/api/tick/l2_thousand_orderbook", "get_l2_thousand_orderbook", _L2),
    ("GET", "/api/tick/l2_thousand_trade", "get_l2_thousand_trade", _L2),
    ("GET", "/api/market/fullspeed_orderbook", "get_fullspeed_orderbook", _L2),
    ("GET", "/api/market/transactioncount", "get_transactioncount", _L2),
    ("GET", "/api/financial/data", "get_financial_data", _NO_DATA),
    ("POST", "/api/download/financial", "download_financial", _NO_DATA),
    ("POST", "/api/download/financial2", "download_financial_data2", _NO_DATA),
    ("GET", "/api/option/detail", "get_option_detail", _NO_DATA),
    ("GET", "/api/option/chain", "get_option_chain", _NO_DATA),
    ("GET", "/api/option/list", "get_option_list", _NO_DATA),
    ("GET", "/api/option/history_list", "get_history_option_list", _NO_DATA),
    ("POST", "/api/download/option_data", "download_option_data", _NO_DATA),
    ("GET", "/api/etf/list", "get_etf_list", _NO_DATA),
    ("GET", "/api/etf/info", "get_etf_info", _NO_DATA),
    ("POST", "/api/download/etf_info", "download_etf_info", _NO_DATA),
    ("GET", "/api/cb/info", "get_cb_info", _NO_DATA),
    ("GET", "/api/cb/list", "get_cb_list", _NO_DATA),
    ("GET", "/api/cb/detail", "get_cb_detail", _NO_DATA),
    ("GET", "/api/cb/conversion_price", "get_cb_conversion_price", _NO_DATA),
    ("GET", "/api/cb/bond_info", "get_bond_info", _NO_DATA),
    ("POST", "/api/download/cb_data", "download_cb_data", _NO_DATA),
    ("GET", "/api/futures/main_contract", "get_main_contract", _NO_DATA),
    ("GET", "/api/futures/sec_main_contract", "get_sec_main_contract", _NO_DATA),
    ("POST", "/api/download/history_contracts", "download_history_contracts", _NO_DATA),
    ("GET", "/api/hk/stock_list", "get_hk_stock_list", _NO_DATA),
    ("GET", "/api/hk/connect_stocks", "get_hk_connect_stocks", _NO_DATA),
    ("GET", "/api/tabular/data", "get_tabular_data", _NO_DATA),
    ("GET", "/api/tabular/tables", "list_tables", _NO_DATA),
    ("POST", "/api/formula/call", "call_formula", _NO_DATA),
    ("POST", "/api/formula/call_batch", "call_formula_batch", _NO_DATA),
    ("POST", "/api/formula/generate_index", "generate_index_data", _NO_DATA),
    ("GET", "/api/instrument/ipo_info", "get_ipo_info", _NO_DATA),
    ("POST", "/api/download/ipo_data", "download_ipo_data", _NO_DATA),
    ("GET", "/api/instrument/index_weight", "get_index_weight", _NO_DATA),
    ("POST", "/api/download/index_weight", "download_index_weight", _NO_DATA),
    ("GET", "/api/instrument/st_history", "get_st_history", _NO_DATA),
    ("GET", "/api/calendar/trading_period", "get_trading_period", _NO_DATA),
    ("GET", "/api/calendar/trading_time", "get_trading_time", _NO_DATA),
    ("GET", "/api/sector/info", "get_sector_info", _NO_DATA),
    ("POST", "/api/sector/create_folder", "create_sector_folder", _WRITE),
    ("POST", "/api/sector/create", "create_sector", _WRITE),
    ("POST", "/api/sector/add_stocks", "add_sector_stocks", _WRITE),
    ("POST", "/api/sector/remove_stocks", "remove_sector_stocks", _WRITE),
    ("DELETE", "/api/sector/remove", "remove_sector", _WRITE),
    ("POST", "/api/sector/reset", "reset_sector", _WRITE),
)


def _refuse(method: str, why: str) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def refuse() -> dict[str, Any]:
        raise Unsupported(f"qmt-bridge {method}() is not available: {why}", {"method": method})

    return refuse


for _verb, _path, _method, _why in ROUTES:
    router.add_api_route(
        _path,
        _refuse(_method, _why),
        methods=[_verb],
        summary=f"Not served: qmt-bridge {_method} (501)",
        name=f"qmt_bridge_{_method}",
        responses={501: {"description": "Not served by qmtgate; the body names the method."}},
        # every /api/download/* route needs the scope of a download, served or not (docs/security.md)
        dependencies=[ADMIN] if _path.startswith("/api/download/") else None,
    )
