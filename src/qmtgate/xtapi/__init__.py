"""xtquant 250807's pure-data modules, shared by the simulator (``qmtgate.sim.xtquant``) and the remote
drop-in (``qmtgate.remote.xtquant``): ``xtconstant`` (every constant), ``xttype`` (StockAccount, XtOrder,
XtTrade, ...) and ``xtcallback`` (``XtQuantTraderCallback``).

A leaf (contract ``xtapi-leaf``): it imports nothing else of qmtgate, so the simulator stays standalone
and the drop-in stays free of server code while both hand users the very same classes and values."""
