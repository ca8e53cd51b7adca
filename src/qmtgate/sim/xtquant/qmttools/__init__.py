"""xtquant.qmttools: QMT's built-in strategy framework (ContextInfo, passorder, ...).

Not simulated beyond its package shape: the strategy runner needs QMT's client-side strategy engine
and trading; ``run_strategy_file`` raises NotImplementedError saying so."""

from . import contextinfo, functions, stgframe  # noqa: F401  (the real package's names)
from .stgentry import run_file as run_strategy_file  # noqa: F401
