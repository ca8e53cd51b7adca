"""The ``xtquant`` package as ``qmtgate.remote.install()`` registers it: only ``xtdata``, served by a gateway."""
