"""qmt-bridge 2.1.3 compatibility beyond the legacy routes (``api/routers/compat_qmt_bridge.py``).

Every market-data method of the published ``qmt_bridge.QMTClient`` finds its route here, with the request
parameters and the response JSON its own server (``qmt_bridge/server/routers/*.py``) produces, so a script
written for qmt-bridge runs unchanged against qmtgate:

- ``market``: ``/api/market/*`` (snapshot, indices, history_ex, local_data, market_data, market_data3,
  full_kline, divid_factors);
- ``reference``: ``/api/sector/*``, ``/api/calendar/*``, ``/api/instrument/*``, ``/api/meta/*``,
  ``/api/utility/*``;
- ``downloads``: ``/api/download/*`` that fill what qmtgate serves (history, sectors, holidays);
- ``unsupported``: the rest of 2.1.3's data routes (Level-2, financial tables, options, ETF/convertible
  bonds, futures, HK, tabular, formulas, user sectors) answer 501 ``unsupported`` naming the method,
  instead of a bare 404;
- ``realtime``: the frames of ``/ws/realtime`` in qmt-bridge's shape (``{code: [xtquant item]}``).

Unlike qmt-bridge (which passes xtdata's silence through), bad input gets the gateway's error envelope: an
unknown code is a 404, a malformed one a 422, as on every other route.
"""

from qmtgate.api.qmt_bridge import downloads, market, reference, unsupported

ROUTERS = (market.router, reference.router, downloads.router, unsupported.router)

__all__ = ["ROUTERS"]
