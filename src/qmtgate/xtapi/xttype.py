"""xtquant's trading data structures, mirroring xtquant 250807 (`xttype.py`) class for class.

Same class names, constructor parameters (names, order, defaults) and attribute names as the real module,
so code written against xttrader runs unchanged on the simulator. On a real terminal the objects pushed to
callbacks are native objects with these attributes; the SDK itself builds only the account, response and
status classes. Units follow the real SDK: prices and money in 元, volumes in 股 (bonds: 张), and
`order_time`/`traded_time` in Unix **seconds** (market data uses milliseconds).

tests/contract/test_api_surface.py checks the signatures and attribute sets against the real wheel.
"""

from . import xtconstant as _xtconstant


class StockAccount:
    """证券账号: the account argument of every XtQuantTrader call.

    Real quirks kept on purpose: `account_type` is a case-insensitive name from `ACCOUNT_TYPE_DICT`
    ('STOCK', 'CREDIT', ...) stored as its int code; an unknown name raises a plain `Exception`; a
    non-str `account_id` does not raise, the constructor *returns the error string* instead.
    """

    def __new__(cls, account_id: str, account_type: str = "STOCK") -> "StockAccount | str":
        if not isinstance(account_id, str):
            return "资金账号必须为字符串类型"
        return super().__new__(cls)

    def __init__(self, account_id: str, account_type: str = "STOCK") -> None:
        account_type = account_type.upper()
        for type_code, type_name in _xtconstant.ACCOUNT_TYPE_DICT.items():
            if account_type == type_name:
                self.account_type: int = type_code
                self.account_id: str = account_id
                return
        raise Exception(f"不支持的账号类型：{account_type}！")


class XtAsset:
    """股票账号资金 (money in 元): `cash` is available, `fetch_balance` withdrawable."""

    def __init__(
        self,
        account_id: str,
        cash: float,
        frozen_cash: float,
        market_value: float,
        total_asset: float,
        fetch_balance: float,
    ) -> None:
        self.account_type: int = _xtconstant.SECURITY_ACCOUNT
        self.account_id = account_id
        self.cash = cash
        self.frozen_cash = frozen_cash
        self.market_value = market_value
        self.total_asset = total_asset
        self.fetch_balance = fetch_balance


class XtOrder:
    """股票委托: one order; `order_time` in Unix seconds, `order_status` an ORDER_* constant."""

    def __init__(
        self,
        account_id: str,
        stock_code: str,
        order_id: int,
        order_sysid: str,
        order_time: int,
        order_type: int,
        order_volume: int,
        price_type: int,
        price: float,
        traded_volume: int,
        traded_price: float,
        order_status: int,
        status_msg: str,
        strategy_name: str,
        order_remark: str,
        direction: int,
        offset_flag: int,
        secu_account: str,
        instrument_name: str,
    ) -> None:
        self.account_type: int = _xtconstant.SECURITY_ACCOUNT
        self.account_id = account_id
        self.stock_code = stock_code
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.order_time = order_time
        self.order_type = order_type
        self.order_volume = order_volume
        self.price_type = price_type
        self.price = price
        self.traded_volume = traded_volume
        self.traded_price = traded_price
        self.order_status = order_status
        self.status_msg = status_msg
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.direction = direction
        self.offset_flag = offset_flag
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtTrade:
    """股票成交: one fill; `traded_time` in Unix seconds, `traded_amount` in 元."""

    def __init__(
        self,
        account_id: str,
        stock_code: str,
        order_type: int,
        traded_id: str,
        traded_time: int,
        traded_price: float,
        traded_volume: int,
        traded_amount: float,
        order_id: int,
        order_sysid: str,
        strategy_name: str,
        order_remark: str,
        direction: int,
        offset_flag: int,
        commission: float,
        secu_account: str,
        instrument_name: str,
    ) -> None:
        self.account_type: int = _xtconstant.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_type = order_type
        self.stock_code = stock_code
        self.traded_id = traded_id
        self.traded_time = traded_time
        self.traded_price = traded_price
        self.traded_volume = traded_volume
        self.traded_amount = traded_amount
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.direction = direction
        self.offset_flag = offset_flag
        self.commission = commission
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtPosition:
    """股票持仓: `can_use_volume` is what can be sold now (T+1), `avg_price` the cost price."""

    def __init__(
        self,
        account_id: str,
        stock_code: str,
        volume: int,
        can_use_volume: int,
        open_price: float,
        market_value: float,
        frozen_volume: int,
        on_road_volume: int,
        yesterday_volume: int,
        avg_price: float,
        direction: int,
        last_price: float,
        profit_rate: float,
        secu_account: str,
        instrument_name: str,
    ) -> None:
        self.account_type: int = _xtconstant.SECURITY_ACCOUNT
        self.account_id = account_id
        self.stock_code = stock_code
        self.volume = volume
        self.can_use_volume = can_use_volume
        self.open_price = open_price
        self.market_value = market_value
        self.frozen_volume = frozen_volume
        self.on_road_volume = on_road_volume
        self.yesterday_volume = yesterday_volume
        self.avg_price = avg_price
        self.direction = direction
        self.last_price = last_price
        self.profit_rate = profit_rate
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtOrderError:
    """委托失败: pushed through `on_order_error`."""

    def __init__(
        self,
        account_id: str,
        order_id: int,
        error_id: int | None = None,
        error_msg: str | None = None,
        strategy_name: str | None = None,
        order_remark: str | None = None,
    ) -> None:
        self.account_type: int = _xtconstant.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.error_id = error_id
        self.error_msg = error_msg
        self.strategy_name = strategy_name
        self.order_remark = order_remark


class XtCancelError:
    """撤单失败: pushed through `on_cancel_error`; `market` 0 = SH, 1 = SZ."""

    def __init__(
        self,
        account_id: str,
        order_id: int,
        market: int,
        order_sysid: str,
        error_id: int | None = None,
        error_msg: str | None = None,
    ) -> None:
        self.account_type: int = _xtconstant.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.market = market
        self.order_sysid = order_sysid
        self.error_id = error_id
        self.error_msg = error_msg


class XtOrderResponse:
    """异步下单反馈: answers `order_stock_async`, matched by `seq`."""

    def __init__(
        self,
        account_id: str,
        order_id: int,
        strategy_name: str,
        order_remark: str,
        error_msg: str,
        seq: int,
    ) -> None:
        self.account_type: int = _xtconstant.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.error_msg = error_msg
        self.seq = seq


class XtCancelOrderResponse:
    """异步撤单反馈: answers `cancel_order_stock[_sysid]_async`; `cancel_result` 0 sent, -1 failed."""

    def __init__(
        self,
        account_id: str,
        cancel_result: int,
        order_id: int,
        order_sysid: str,
        seq: int,
        error_msg: str,
    ) -> None:
        self.account_type: int = _xtconstant.SECURITY_ACCOUNT
        self.account_id = account_id
        self.cancel_result = cancel_result
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.seq = seq
        self.error_msg = error_msg


class XtCreditOrder(XtOrder):
    """信用委托: like the real class it subclasses XtOrder but sets only its own attribute subset."""

    def __init__(
        self,
        account_id: str,
        stock_code: str,
        order_id: int,
        order_time: int,
        order_type: int,
        order_volume: int,
        price_type: int,
        price: float,
        traded_volume: int,
        traded_price: float,
        order_status: int,
        status_msg: str,
        order_remark: str,
        contract_no: str,
        stock_code1: str,
    ) -> None:
        # The real class does not call XtOrder.__init__, so XtOrder-only attributes stay unset.
        self.account_type: int = _xtconstant.CREDIT_ACCOUNT
        self.account_id = account_id
        self.stock_code = stock_code
        self.order_id = order_id
        self.order_time = order_time
        self.order_type = order_type
        self.order_volume = order_volume
        self.price_type = price_type
        self.price = price
        self.traded_volume = traded_volume
        self.traded_price = traded_price
        self.order_status = order_status
        self.status_msg = status_msg
        self.order_remark = order_remark
        self.contract_no = contract_no
        self.stock_code1 = stock_code1


class XtCreditDeal:
    """信用成交: one credit-account fill (`contract_no` is the margin contract)."""

    def __init__(
        self,
        account_id: str,
        stock_code: str,
        traded_id: str,
        traded_time: int,
        traded_price: float,
        traded_volume: int,
        order_id: int,
        contract_no: str,
        stock_code1: str,
    ) -> None:
        self.account_type: int = _xtconstant.CREDIT_ACCOUNT
        self.account_id = account_id
        self.stock_code = stock_code
        self.traded_id = traded_id
        self.traded_time = traded_time
        self.traded_price = traded_price
        self.traded_volume = traded_volume
        self.order_id = order_id
        self.contract_no = contract_no
        self.stock_code1 = stock_code1


class XtAccountStatus:
    """账号状态: pushed through `on_account_status`; `status` an ACCOUNT_STATUS_* constant."""

    def __init__(self, account_id: str, account_type: int, status: int) -> None:
        self.account_type = account_type
        self.account_id = account_id
        self.status = status


class XtSmtAppointmentResponse:
    """约券异步反馈: `apply_id` is set when the request succeeded."""

    def __init__(self, seq: int, success: bool, msg: str, apply_id: str) -> None:
        self.seq = seq
        self.success = success
        self.msg = msg
        self.apply_id = apply_id


class XtBankTransferResponse:
    """银证转账异步反馈."""

    def __init__(self, seq: int, success: bool, msg: str) -> None:
        self.seq = seq
        self.success = success
        self.msg = msg


class XtSmartAlgoOrderResponse:
    """智能算法下单反馈: answers `smart_algo_order_async` (no `account_type`, as in the real class)."""

    def __init__(
        self,
        account_id: str,
        task_id: int,
        strategy_name: str,
        order_remark: str,
        error_msg: str,
        seq: int,
    ) -> None:
        self.account_id = account_id
        self.task_id = task_id
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.error_msg = error_msg
        self.seq = seq


class XtOperateSmartTaskResponse:
    """智能算法任务操作反馈."""

    def __init__(self, seq: int, success: bool, task_id: int, operate_reason: str, error_msg: str) -> None:
        self.seq = seq
        self.success = success
        self.task_id = task_id
        self.operate_reason = operate_reason
        self.error_msg = error_msg
