"""Run xtquant code on Mac/Linux against a qmtgate gateway: ``qmtgate.remote.install(url)``.

After ``install("http://gateway:8000", api_key=...)``, ``from xtquant import xtdata`` (and
``import xtquant.xtdata``) give :mod:`qmtgate.remote.xtquant.xtdata`: xtquant 250807's names, signatures,
return shapes and units for everything the gateway serves, over REST (Arrow for K-lines) and one
WebSocket for pushes. See docs/client.md. With a key that has the ``trade`` scope and a gateway with
trading on, ``from xtquant.xttrader import XtQuantTrader, XtQuantTraderCallback`` and
``from xtquant.xttype import StockAccount`` run an xttrader service unchanged (docs/trading.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from qmtgate.remote import _state
from qmtgate.remote._session import RemoteSession

__all__ = ["RemoteSession", "connect", "install", "uninstall"]

_MODULES = ("xtquant", "xtquant.xtdata", "xtquant.xttrader", "xtquant.xttype", "xtquant.xtconstant")


def connect(
    url: str,
    api_key: str | None = None,
    *,
    timeout: float = 30.0,
    tls_fingerprint: str | Sequence[str] | None = None,
    tls_ca: str | os.PathLike[str] | None = None,
) -> RemoteSession:
    """Open a session to ``url`` and make it the one :mod:`qmtgate.remote.xtquant.xtdata` uses, without
    registering any ``xtquant`` module (use this beside another ``xtquant`` in the same process).
    ``tls_fingerprint`` / ``tls_ca``: as :class:`qmtgate.client.Client`'s (an https:// gateway with the
    certificate ``qmtgate cert`` made: pin the fingerprint it printed)."""
    session = RemoteSession(url, api_key, timeout=timeout, tls_fingerprint=tls_fingerprint, tls_ca=tls_ca)
    previous = _state.bind(session)
    if previous is not None:
        previous.close()
    return session


def install(
    url: str,
    api_key: str | None = None,
    *,
    timeout: float = 30.0,
    tls_fingerprint: str | Sequence[str] | None = None,
    tls_ca: str | os.PathLike[str] | None = None,
) -> RemoteSession:
    """Connect to the gateway at ``url`` and register the drop-in as the ``xtquant`` package.

    ``api_key`` is sent only in the ``X-API-Key`` header. Returns the session (``session.events`` holds
    the feed's reconnect/resync/gap events; ``session.close()`` ends it). ``tls_fingerprint`` (the SHA-256
    ``qmtgate cert`` printed) or ``tls_ca`` (a PEM file) for an https:// gateway with its own certificate.
    """
    session = connect(url, api_key, timeout=timeout, tls_fingerprint=tls_fingerprint, tls_ca=tls_ca)
    from qmtgate.remote import xtquant
    from qmtgate.remote.xtquant import xtconstant, xtdata, xttrader, xttype

    sys.modules["xtquant"] = xtquant
    for name, module in (
        ("xtdata", xtdata),
        ("xttrader", xttrader),
        ("xttype", xttype),
        ("xtconstant", xtconstant),
    ):
        setattr(xtquant, name, module)
        sys.modules[f"xtquant.{name}"] = module
    return session


def uninstall() -> None:
    """Close the session and remove the registered ``xtquant`` modules (if they are ours)."""
    session = _state.bind(None)
    if session is not None:
        session.close()
    for name in _MODULES:
        module = sys.modules.get(name)
        if module is not None and module.__name__.startswith("qmtgate.remote"):
            del sys.modules[name]
