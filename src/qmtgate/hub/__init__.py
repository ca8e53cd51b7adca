"""Live quotes: the last-value cache fed by one whole-market subscription (fan-out arrives later)."""

from qmtgate.hub.cache import CacheStats, QuoteCache
from qmtgate.hub.feed import WholeMarketFeed

__all__ = ["CacheStats", "QuoteCache", "WholeMarketFeed"]
