"""HTTP/1.1 limits below the app: head size, header count, body size, head timeout, pending connections.

Why here: uvicorn's httptools protocol buffers a request head whole (httptools concatenates a header value
until its end, uvicorn the URL) and reads any body before the app runs, with no limit and no timeout. A LAN
outsider without a key could hold gigabytes (a 128 MB unfinished header per connection) or thousands of
file descriptors (slowloris: one byte every 10 s) before authentication ever ran. The app cannot help: it
only sees a request once its head is complete. So :func:`guarded_protocol` subclasses uvicorn's
``HttpToolsProtocol`` (pure asyncio: Windows' proactor loop included) and, per connection:

- counts the bytes of the head as they arrive and answers **431** ``headers_too_large`` past
  ``http.max_head_bytes`` or ``http.max_headers`` header lines;
- answers **413** ``body_too_large`` when ``Content-Length`` or the bytes of a chunked body exceed
  ``http.max_body_bytes`` (the app is not started, or is told the client went away);
- answers **408** ``request_timeout`` when a head is not complete ``http.head_timeout`` seconds after the
  connection (or after the first byte of a keep-alive request), or a body ``http.body_timeout`` seconds
  after its head;
- refuses (**429** ``too_many_connections``) a connection from an address that already holds
  ``http.max_pending_per_address`` connections whose first head is not complete;
- percent-encodes raw bytes >= 0x80 in the request line before the parser sees them: users paste
  ``?sector=沪深A股`` unencoded (curl sends it raw), which llhttp rejects as an invalid request; the
  app then decodes either form the same way.

Each refusal is the error envelope, ``Connection: close``, then the connection is closed; refusals are
logged through a per-address sampler (:mod:`qmtgate.security.refusal_log`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, ClassVar

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from qmtgate.config import HttpLimitSettings
from qmtgate.errors import ErrorCode, error_body
from qmtgate.security.refusal_log import RefusalSampler

logger = logging.getLogger("qmtgate.http")

_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
#: Seconds a refused connection is kept half-open, discarding input, before it is closed.
LINGER_SECONDS = 1.0


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the refusal itself is in ``_refusal``."""


def percent_encode_high(line: bytes) -> bytes:
    """``line`` with every byte >= 0x80 as ``%XX`` (the UTF-8 of a Chinese sector name, for example)."""
    return _HIGH_BYTE.sub(lambda m: b"%%%02X" % m.group()[0], line)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of the module docstring.

    Not used directly: :func:`guarded_protocol` makes a subclass bound to one server's settings and its
    own per-address bookkeeping (uvicorn instantiates the protocol class itself, once per connection).
    """

    limits: ClassVar[HttpLimitSettings] = HttpLimitSettings()
    pending: ClassVar[dict[str, int]] = {}
    sampler: ClassVar[RefusalSampler] = RefusalSampler()
    refusals: ClassVar[dict[str, int]] = {}  # error code -> count (tests, diagnostics)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._header_count = 0
        self._body_bytes = 0
        self._in_head = True  # waiting for, or reading, a request head
        self._in_request_line = True
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._held: str | None = None  # the address counted in ``pending`` while the first head is due
        self._refusal: tuple[int, ErrorCode, str, dict[str, Any]] | None = None
        self._refused = False
        self._linger: asyncio.TimerHandle | None = None

    # -- connection ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else "unknown"
        limit = self.limits.max_pending_per_address
        if self.pending.get(address, 0) >= limit:
            self._refuse(
                429,
                ErrorCode.TOO_MANY_CONNECTIONS,
                f"this address already has {limit} connections that have not sent a complete request",
                {"limit": limit},
                retry_after=1,
                linger=False,  # closed at once: lingering would hold the very descriptors this caps
            )
            return
        self.pending[address] = self.pending.get(address, 0) + 1
        self._held = address
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        self._cancel_head_timer()
        self._cancel_body_timer()
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if self._in_head:
            if self._in_request_line:
                data = self._encode_request_line(data)
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._refusal is not None:
                self._refuse(*self._refusal)
            elif self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(*self._refusal)
            else:
                self._refuse(400, ErrorCode.BAD_REQUEST, "invalid HTTP request", {})
            return
        if self._refusal is not None:
            self._refuse(*self._refusal)
        elif self._in_head and self._head_bytes > self.limits.max_head_bytes:
            self._head_too_large()

    # -- parser callbacks ---------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._header_count = 0
        self._body_bytes = 0
        if self._head_timer is None:
            self._arm_head_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._stop(
                431,
                ErrorCode.HEADERS_TOO_LARGE,
                f"more than {self.limits.max_headers} header lines",
                {"max_headers": self.limits.max_headers},
            )
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        self._release()
        if not self.parser.should_upgrade():
            length = _content_length(self.headers)
            if length is not None and length > self.limits.max_body_bytes:
                self._body_too_large()
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body_bytes:
            self._body_too_large()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        super().on_message_complete()
        self._in_head = True
        self._in_request_line = True
        self._head_bytes = 0

    # -- helpers ------------------------------------------------------------------------------------

    def _encode_request_line(self, data: bytes) -> bytes:
        start = 0
        while start < len(data) and data[start] in (13, 10):  # CRLFs allowed between requests
            start += 1
        end = data.find(b"\n", start)
        if end < 0:
            end = len(data)
        else:
            self._in_request_line = False
        line = data[start:end]
        if _HIGH_BYTE.search(line) is None:
            return data
        return data[:start] + percent_encode_high(line) + data[end:]

    def _head_too_large(self) -> None:
        limit = self.limits.max_head_bytes
        self._refuse(
            431,
            ErrorCode.HEADERS_TOO_LARGE,
            f"the request line and headers exceed {limit} bytes",
            {"max_head_bytes": limit},
        )

    def _body_too_large(self) -> None:
        limit = self.limits.max_body_bytes
        self._stop(
            413,
            ErrorCode.BODY_TOO_LARGE,
            f"the request body exceeds {limit} bytes",
            {"max_body_bytes": limit},
        )

    def _stop(self, status: int, code: ErrorCode, message: str, details: dict[str, Any]) -> None:
        """From a parser callback: remember the refusal and abort parsing (sent by data_received)."""
        self._refusal = (status, code, message, details)
        raise _Refused(message)

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self._refused and not self.transport.is_closing():
            timeout = self.limits.head_timeout
            self._refuse(
                408,
                ErrorCode.REQUEST_TIMEOUT,
                f"the request head was not complete within {timeout:g} s",
                {"head_timeout_seconds": timeout},
            )

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if not self._refused and not self.transport.is_closing():
            timeout = self.limits.body_timeout
            self._refuse(
                408,
                ErrorCode.REQUEST_TIMEOUT,
                f"the request body was not complete within {timeout:g} s",
                {"body_timeout_seconds": timeout},
            )

    def _release(self) -> None:
        address, self._held = self._held, None
        if address is not None:
            left = self.pending.get(address, 1) - 1
            if left > 0:
                self.pending[address] = left
            else:
                self.pending.pop(address, None)

    def _refuse(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        details: dict[str, Any],
        *,
        retry_after: int | None = None,
        linger: bool = True,
    ) -> None:
        """Answer ``status`` with the envelope (unless a response already started), then close."""
        if self._refused:
            return
        self._refused = True
        self._release()
        self._cancel_head_timer()
        self._cancel_body_timer()
        self.refusals[code.value] = self.refusals.get(code.value, 0) + 1
        address = self.client[0] if self.client else "unknown"
        suppressed = self.sampler.admit(address)
        if suppressed is not None:
            logger.warning(
                "refused a request from %s: %d %s%s",
                address,
                status,
                code.value,
                f" ({suppressed} more refusals from it not logged)" if suppressed else "",
                extra={"client": address, "status": status, "code": code.value, "suppressed": suppressed},
            )
        cycle = self.cycle
        started = cycle is not None and not cycle.response_complete and cycle.response_started
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app, if running, gets http.disconnect; its answer is dropped
            cycle.message_event.set()
        if not started and not self.transport.is_closing():
            body = orjson.dumps(error_body(code, message, details))
            head = [
                STATUS_LINE[status],
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n",
            ]
            if retry_after is not None:
                head.append(b"retry-after: %d\r\n" % retry_after)
            self.transport.write(b"".join([*head, b"\r\n", body]))
            if linger and self.transport.can_write_eof():
                # lingering close: closing a socket with unread input sends a reset, which can destroy
                # the answer before the client reads it (a client still sending its 100 MB body would
                # see "connection reset", not 413); so end our side, discard what still arrives, and
                # close a moment later
                self.transport.write_eof()
                self._linger = self.loop.call_later(LINGER_SECONDS, self.transport.close)
                return
        self.transport.close()


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the parser refuses it
    return None


def guarded_protocol(limits: HttpLimitSettings) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` enforcing ``limits``, with its own bookkeeping."""
    return type(
        "QmtgateHttpProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "limits": limits,
            "pending": {},
            "sampler": RefusalSampler(limits.refused_log_per_minute),
            "refusals": {},
        },
    )
