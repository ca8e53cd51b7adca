"""Operations: Prometheus metrics, structured logs, webhook alerts, `qmtgate doctor`, certificates.
See docs/operations.md."""
