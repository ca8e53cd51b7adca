"""Live quotes: one whole-market feed into the stream hub, its last-value cache, and the fan-out."""

from qmtgate.hub.feed import WholeMarketFeed
from qmtgate.hub.lvc import CacheStats, LastValueCache

__all__ = ["CacheStats", "LastValueCache", "WholeMarketFeed"]
