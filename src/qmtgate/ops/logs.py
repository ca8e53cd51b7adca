"""Logging set-up: text or JSON lines, to the console and optionally a size-rotated file.

JSON lines carry the standard fields (``ts``, ``level``, ``logger``, ``message``) plus whatever a record was
given in ``extra``; the access log (logger ``qmtgate.access``, one record per HTTP request or WebSocket)
adds ``request_id``, ``key_id``, ``client``, ``method``, ``route``, ``path``, ``status`` and
``duration_ms``, so a log shipper can filter on them without parsing text. Rotation uses
:class:`logging.handlers.RotatingFileHandler` (size-based; works on Windows, where a file that another
process holds open cannot be renamed by time-based rotation schemes either).

The event loop never writes a log line itself: the root logger gets a :class:`~logging.handlers.QueueHandler`
and a :class:`~logging.handlers.QueueListener` thread does the formatting and the I/O. A console write can
block for milliseconds (a Windows console, a paused terminal, a full pipe), and one access-log record per
request was ~8 % of a one-code snapshot's server time when written inline.

Every record is passed through :class:`qmtgate.ops.redact.RedactFilter` (no key secret, no credential-like
query parameter value in any line, uvicorn's included), and log files are created owner-only (0600 on
POSIX; on Windows the file inherits the folder's ACL).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import datetime as dt
import logging
import logging.handlers
import os
import queue
import sys
from typing import Any

import orjson

from qmtgate.config import LogSettings
from qmtgate.ops.redact import install_log_redaction

ACCESS_LOGGER = "qmtgate.access"
#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_HANDLER_TAG = "_qmtgate_handler"
_listener: logging.handlers.QueueListener | None = None


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


class _InProcessQueueHandler(logging.handlers.QueueHandler):
    """Merges the message arguments now (they may change later) but keeps ``exc_info`` and ``extra``
    as they are: the queue never leaves the process, so the listener's formatter sees the full record."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.message = record.getMessage()
        record.msg, record.args = record.message, None
        return record


class OwnerOnlyRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated log file that only its owner can read: log lines name clients, key ids and routes."""

    def _open(self):  # type: ignore[no-untyped-def]
        stream = open(  # noqa: SIM115 - the handler owns and closes it
            self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors, opener=_owner_only
        )
        if os.name != "nt":  # an existing file keeps its mode on open: tighten it too
            with contextlib.suppress(OSError):
                os.chmod(self.baseFilename, 0o600)
        return stream


def _owner_only(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def setup_logging(level: str, settings: LogSettings) -> list[logging.Handler]:
    """Configure the root logger (replacing what this function set up before); returns the handlers that
    write (console, file), which run on the listener thread.

    uvicorn is then run with ``log_config=None`` so its loggers propagate here instead of installing their
    own handlers. Call :func:`shutdown_logging` to flush and detach (also done at interpreter exit).
    """
    global _listener
    shutdown_logging()
    formatter: logging.Formatter = JsonFormatter() if settings.format == "json" else TextFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.file is not None:
        settings.file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            OwnerOnlyRotatingFileHandler(
                settings.file, maxBytes=settings.max_bytes, backupCount=settings.backups, encoding="utf-8"
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    front = _InProcessQueueHandler(records)
    front.addFilter(install_log_redaction())  # uvicorn's loggers and every record reaching the root
    setattr(front, _HANDLER_TAG, True)
    root = logging.getLogger()
    root.addHandler(front)
    root.setLevel(level.upper())
    _listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
    _listener.start()
    return handlers


def shutdown_logging() -> None:
    """Write out what is queued, stop the listener and remove the handlers :func:`setup_logging` added."""
    global _listener
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_TAG, False)]:
        root.removeHandler(old)
        old.close()
    listener, _listener = _listener, None
    if listener is not None:
        listener.stop()  # drains the queue first
        for handler in listener.handlers:
            handler.close()


atexit.register(shutdown_logging)
