"""The ``xtquant`` package as ``qmtgate.remote.install()`` registers it, served by a gateway: ``xtdata``
(market data), ``xttrader`` (orders, cancels, queries, pushes; needs a key with the ``trade`` scope),
``xttype`` and ``xtconstant``."""
