"""The simulated ``xtquant.xttype``: the definitions live in the leaf :mod:`qmtgate.xtapi.xttype`, shared
with the remote drop-in, and are all (private names included) re-exported here so this module reads
exactly like the real one."""

from qmtgate.xtapi import xttype as _impl

globals().update({k: v for k, v in vars(_impl).items() if not k.startswith("__")})
