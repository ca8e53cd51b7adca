"""qmtgate's paper broker: A-share accounts trading against the simulated market.

:class:`PaperBroker` keeps the books and matches orders; the simulated ``xtquant.xttrader``
(:mod:`qmtgate.sim.xtquant.xttrader`) is its xtquant-shaped front. Rules: docs/simulator.md, "Trading".
"""

from .broker import BrokerConfig, PaperBroker
from .fees import FeeSchedule
from .store import AccountStore, AccountStoreMissing

__all__ = ["AccountStore", "AccountStoreMissing", "BrokerConfig", "FeeSchedule", "PaperBroker"]
