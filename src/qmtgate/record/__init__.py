"""Recording: the DuckDB tick/bar recorder, its writer thread, the reader for /recorded and `qmtgate record`."""
