"""Market-data sources: one interface (:class:`MarketSource`) over real xtquant or the simulator."""

from qmtgate.source.base import (
    Capabilities,
    DownloadProgress,
    DownloadResult,
    MarketSource,
    SourceState,
    SourceStatus,
)
from qmtgate.source.executor import ExecutorConfig, ExecutorState, Lane, XtdataExecutor

__all__ = [
    "Capabilities",
    "DownloadProgress",
    "DownloadResult",
    "ExecutorConfig",
    "ExecutorState",
    "Lane",
    "MarketSource",
    "SourceState",
    "SourceStatus",
    "XtdataExecutor",
]
