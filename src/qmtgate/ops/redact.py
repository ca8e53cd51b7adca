"""Keep API keys out of log lines, whoever writes them.

The gateway itself never logs a key, but uvicorn's own lines carry the raw query string (``"WebSocket
/api/v1/ws?api_key=qg_..." 400`` for a refused handshake, the HTTP access line when uvicorn's access log is
on). :class:`RedactFilter` rewrites a record's message before any handler sees it:

- the value of every credential-like query parameter (``api_key``, ``key``, ``token``, ... the names the
  security gate refuses) becomes ``<redacted>``;
- anything shaped like a qmtgate key, ``qg_<id>_<secret>``, keeps its public id and loses its secret
  (``qg_5c30e84f_<redacted>``), wherever it appears.

It is installed on uvicorn's loggers (their records do not always propagate to the root logger) and on the
root handlers that :func:`qmtgate.ops.logs.setup_logging` adds. The check is a substring test on each
record's message; the regular expressions run only on the few lines that contain a hint.
"""

from __future__ import annotations

import logging
import re

from qmtgate.security.guard import URL_KEY_PARAMS

REDACTED = "<redacted>"
#: Loggers whose records are redacted at the source (uvicorn's do not reach the root logger's handlers
#: when uvicorn configured its own logging).
REDACTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

_KEY = re.compile(r"\b(qg_[0-9a-f]{8,32}_)[A-Za-z0-9_\-]+")
_PARAM = re.compile(
    r"([?&;](?:" + "|".join(re.escape(n) for n in sorted(URL_KEY_PARAMS, key=len, reverse=True)) + r")=)"
    r"[^&;\s\"'#]*",
    re.IGNORECASE,
)
_HINTS = ("qg_", "=")


def redact(text: str) -> str:
    """``text`` without key secrets or credential-like query parameter values."""
    if not any(hint in text for hint in _HINTS):
        return text
    if "qg_" in text:
        text = _KEY.sub(r"\1" + REDACTED, text)
    if "=" in text:
        text = _PARAM.sub(r"\1" + REDACTED, text)
    return text


class RedactFilter(logging.Filter):
    """Rewrites the record's message (arguments merged) when it holds something to redact; never drops."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler's own error reporting
            return True
        cleaned = redact(message)
        if cleaned is not message and cleaned != message:
            record.msg, record.args = cleaned, None
        for name, value in record.__dict__.items():  # ``extra`` strings (the access log's path, ...)
            if isinstance(value, str) and name not in ("msg", "message") and "qg_" in value:
                setattr(record, name, redact(value))
        return True


_FILTER = RedactFilter()


def install_log_redaction(loggers: tuple[str, ...] = REDACTED_LOGGERS) -> RedactFilter:
    """Put the shared filter on ``loggers`` (idempotent); returns it for handlers to add too."""
    for name in loggers:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    return _FILTER
