"""The trading lane: one ``XtQuantTrader`` on its own thread, an audit trail, pre-trade risk and the
idempotent order service the REST routes call (docs/trading.md). Separate from market data on purpose:
nothing here shares a thread, executor or queue with the xtdata source."""

from qmtgate.source.trading.audit import AuditTrail
from qmtgate.source.trading.lane import TradingLane
from qmtgate.source.trading.service import TradingService

__all__ = ["AuditTrail", "TradingLane", "TradingService"]
