"""qmtgate: a LAN gateway to QMT/miniQMT (xtquant) market data, with a built-in simulated A-share market."""

__version__ = "0.1.0"
