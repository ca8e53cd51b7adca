"""Trading errors, each with its stable wire code (the envelope of :mod:`qmtgate.errors`)."""

from __future__ import annotations

from qmtgate.errors import ErrorCode, QmtgateError


class TradingUnavailable(QmtgateError):
    """The trader is not connected/subscribed (QMT down, not logged in, wrong path or account)."""

    code = ErrorCode.TRADING_UNAVAILABLE


class TradingHalted(QmtgateError):
    """The kill switch is on: no new order is accepted."""

    code = ErrorCode.TRADING_HALTED


class OrderNotFound(QmtgateError):
    code = ErrorCode.ORDER_NOT_FOUND


class IdempotencyConflict(QmtgateError):
    """A client_order_id already used for a different order."""

    code = ErrorCode.IDEMPOTENCY_CONFLICT


class CancelRefused(QmtgateError):
    code = ErrorCode.CANCEL_REFUSED


class RiskRefused(QmtgateError):
    """A pre-trade risk rule refused the order; ``details['rule']`` names the rule (stable)."""

    code = ErrorCode.RISK_REFUSED

    def __init__(self, rule: str, message: str, **details: object) -> None:
        super().__init__(message, {"rule": rule, **details})
        self.rule = rule


class ConnectError(Exception):
    """Connecting or subscribing the trader failed; ``reason`` is one stable token per known cause."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
