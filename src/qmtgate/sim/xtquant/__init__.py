"""A simulated ``xtquant`` package (modules ``xtdata``, ``xtconstant``, ``xttype``) with the real
xtquant 250807 names, signatures, shapes and units. ``qmtgate.sim.install()`` registers it as
``xtquant`` so code written for the real SDK runs unchanged."""

__version__ = "xtquant_250807"
