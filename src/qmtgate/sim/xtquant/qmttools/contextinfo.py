"""qmttools.contextinfo: present for imports; QMT's strategy framework is not simulated (see the package)."""
