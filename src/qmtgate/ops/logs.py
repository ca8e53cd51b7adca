"""Logging set-up: text or JSON lines, to the console and optionally a size-rotated file.

JSON lines carry the standard fields (``ts``, ``level``, ``logger``, ``message``) plus whatever a record was
given in ``extra``; the access log (logger ``qmtgate.access``, one record per HTTP request or WebSocket)
adds ``request_id``, ``key_id``, ``client``, ``method``, ``route``, ``path``, ``status`` and
``duration_ms``, so a log shipper can filter on them without parsing text. Rotation uses
:class:`logging.handlers.RotatingFileHandler` (size-based; works on Windows, where a file that another
process holds open cannot be renamed by time-based rotation schemes either).
"""

from __future__ import annotations

import datetime as dt
import logging
import logging.handlers
import sys
from typing import Any

import orjson

from qmtgate.config import LogSettings

ACCESS_LOGGER = "qmtgate.access"
#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_HANDLER_TAG = "_qmtgate_handler"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; never raises on odd ``extra`` values (they become strings)."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                body[key] = value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(body, default=str).decode()


class TextFormatter(logging.Formatter):
    """The classic line, with the access fields appended as ``key=value`` when present."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_") and value is not None
        ]
        return f"{line} {' '.join(extras)}" if extras else line


def setup_logging(level: str, settings: LogSettings) -> list[logging.Handler]:
    """Configure the root logger (replacing handlers this function added before); returns the handlers.

    uvicorn is then run with ``log_config=None`` so its loggers propagate here instead of installing their
    own handlers.
    """
    formatter: logging.Formatter = JsonFormatter() if settings.format == "json" else TextFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.file is not None:
        settings.file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                settings.file, maxBytes=settings.max_bytes, backupCount=settings.backups, encoding="utf-8"
            )
        )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_TAG, False)]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _HANDLER_TAG, True)
        root.addHandler(handler)
    root.setLevel(level.upper())
    return handlers
