"""``XtQuantTraderCallback`` as xtquant 250807 defines it (in ``xttrader``): the base class of a trader's
callbacks; every method does nothing unless overridden. The simulator's and the drop-in's ``xttrader``
re-export it."""


class XtQuantTraderCallback:
    def on_connected(self):
        """连接成功推送 (never called by this SDK version)."""

    def on_disconnected(self):
        """连接断开推送."""

    def on_account_status(self, status):
        """:param status: XtAccountStatus"""

    def on_stock_asset(self, asset):
        """:param asset: XtAsset"""

    def on_stock_order(self, order):
        """:param order: XtOrder"""

    def on_stock_trade(self, trade):
        """:param trade: XtTrade"""

    def on_stock_position(self, position):
        """:param position: XtPosition"""

    def on_order_error(self, order_error):
        """:param order_error: XtOrderError"""

    def on_cancel_error(self, cancel_error):
        """:param cancel_error: XtCancelError"""

    def on_order_stock_async_response(self, response):
        """:param response: XtOrderResponse"""

    def on_cancel_order_stock_async_response(self, response):
        """:param response: XtCancelOrderResponse"""

    def on_smt_appointment_async_response(self, response):
        """:param response: XtSmtAppointmentResponse"""

    def on_bank_transfer_async_response(self, response):
        """:param response: XtBankTransferResponse"""

    def on_ctp_internal_transfer_async_response(self, response):
        """:param response: XtBankTransferResponse"""

    def on_smart_algo_order_async_response(self, response):
        """:param response: XtSmartAlgoOrderResponse"""

    def on_operate_smart_task_async_response(self, response):
        """:param response: XtOperateSmartTaskResponse"""
