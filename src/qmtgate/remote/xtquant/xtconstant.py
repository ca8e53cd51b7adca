"""``xtquant.xtconstant`` for the remote drop-in: the very definitions the simulator uses, from the leaf
:mod:`qmtgate.xtapi.xtconstant` (xtquant 250807's names and values), every name re-exported."""

from qmtgate.xtapi import xtconstant as _impl

globals().update({k: v for k, v in vars(_impl).items() if not k.startswith("__")})
