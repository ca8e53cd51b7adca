"""The one error envelope, its stable codes, and the exceptions that carry them.

Every failure a client can see has the same shape::

    {"error": {"code": "source_timeout", "message": "...", "details": {...} | [...] | null}}

``code`` is a stable, machine-readable token (clients branch on it; never rename one), ``message`` is for
humans and may change, ``details`` is optional structured context. Exceptions are raised by any layer
(codes, source, api) and turned into the envelope in one place, :func:`install_error_handlers`, so that no
route builds an error body by hand and no traceback ever reaches the wire.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

logger = logging.getLogger(__name__)


class ErrorCode(str, Enum):
    """Stable error codes; the value is what goes on the wire."""

    BAD_REQUEST = "bad_request"
    VALIDATION_ERROR = "validation_error"
    INVALID_CODE = "invalid_code"
    AMBIGUOUS_CODE = "ambiguous_code"
    UNKNOWN_CODE = "unknown_code"
    INVALID_PERIOD = "invalid_period"
    INVALID_DATE = "invalid_date"
    INVALID_FIELD = "invalid_field"
    TOO_LARGE = "too_large"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    KEY_IN_URL = "key_in_url"  # an API key in the query string: refused, keys go in headers only
    LOCKED_OUT = "locked_out"  # too many bad keys from this address; see Retry-After
    UNSUPPORTED = "unsupported"
    SOURCE_ERROR = "source_error"
    SOURCE_UNAVAILABLE = "source_unavailable"
    SOURCE_BUSY = "source_busy"
    SOURCE_TIMEOUT = "source_timeout"
    INTERNAL_ERROR = "internal_error"
    HOST_NOT_ALLOWED = "host_not_allowed"  # a Host name the gateway does not serve (DNS rebinding)
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"  # a cross-origin browser page (docs/security.md)
    # refused by the HTTP server before the app (qmtgate.security.http_guard; docs/security.md)
    HEADERS_TOO_LARGE = "headers_too_large"
    BODY_TOO_LARGE = "body_too_large"
    REQUEST_TIMEOUT = "request_timeout"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    # trading (docs/trading.md)
    TRADING_UNAVAILABLE = "trading_unavailable"  # the trader is not connected
    TRADING_HALTED = "trading_halted"  # the kill switch is on
    ORDER_NOT_FOUND = "order_not_found"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"  # same client_order_id, different order
    RISK_REFUSED = "risk_refused"  # a pre-trade risk rule; details.rule names it
    CANCEL_REFUSED = "cancel_refused"  # the SDK refused the cancel (order final or unknown to it)


#: HTTP status per code. Kept in one table so the wire contract is reviewable at a glance.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.VALIDATION_ERROR: 422,
    # A parameter value the API understood but cannot accept: 422, like FastAPI's own validation errors.
    ErrorCode.INVALID_CODE: 422,
    ErrorCode.AMBIGUOUS_CODE: 422,
    ErrorCode.UNKNOWN_CODE: 404,
    ErrorCode.INVALID_PERIOD: 422,
    ErrorCode.INVALID_DATE: 422,
    ErrorCode.INVALID_FIELD: 422,
    ErrorCode.TOO_LARGE: 422,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.NOT_ACCEPTABLE: 406,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.KEY_IN_URL: 400,
    ErrorCode.LOCKED_OUT: 429,
    ErrorCode.UNSUPPORTED: 501,
    ErrorCode.SOURCE_ERROR: 502,
    ErrorCode.SOURCE_UNAVAILABLE: 503,
    ErrorCode.SOURCE_BUSY: 503,
    ErrorCode.SOURCE_TIMEOUT: 504,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.HOST_NOT_ALLOWED: 400,
    ErrorCode.ORIGIN_NOT_ALLOWED: 403,
    ErrorCode.HEADERS_TOO_LARGE: 431,
    ErrorCode.BODY_TOO_LARGE: 413,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.TOO_MANY_CONNECTIONS: 429,
    ErrorCode.TRADING_UNAVAILABLE: 503,
    ErrorCode.TRADING_HALTED: 409,
    ErrorCode.ORDER_NOT_FOUND: 404,
    ErrorCode.IDEMPOTENCY_CONFLICT: 409,
    ErrorCode.RISK_REFUSED: 422,
    ErrorCode.CANCEL_REFUSED: 409,
}

#: Codes after which a client may retry; the handler adds ``Retry-After`` (seconds) for these.
RETRY_AFTER_SECONDS: dict[ErrorCode, int] = {
    ErrorCode.SOURCE_BUSY: 1,
    ErrorCode.RATE_LIMITED: 1,
    ErrorCode.SOURCE_UNAVAILABLE: 5,
}


class QmtgateError(Exception):
    """Base of every error that maps to the envelope; subclasses fix ``code``."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def status_code(self) -> int:
        return HTTP_STATUS[self.code]

    def to_body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.value!r}, message={self.message!r})"


class BadRequest(QmtgateError):
    code = ErrorCode.BAD_REQUEST


class InvalidCode(BadRequest):
    """A security code that is malformed or names a market qmtgate does not serve."""

    code = ErrorCode.INVALID_CODE


class AmbiguousCode(BadRequest):
    """Bare digits that cannot be mapped to one market; the client must add a suffix."""

    code = ErrorCode.AMBIGUOUS_CODE


class InvalidPeriod(BadRequest):
    code = ErrorCode.INVALID_PERIOD


class InvalidDate(BadRequest):
    code = ErrorCode.INVALID_DATE


class InvalidField(BadRequest):
    """A field name (``fields=``) that the answer's schema does not have."""

    code = ErrorCode.INVALID_FIELD


class TooLarge(BadRequest):
    """The request exceeds a documented limit (codes per request, rows per answer)."""

    code = ErrorCode.TOO_LARGE


class NotAcceptable(QmtgateError):
    code = ErrorCode.NOT_ACCEPTABLE


class NotFound(QmtgateError):
    code = ErrorCode.NOT_FOUND


class UnknownCode(NotFound):
    """A well-formed code that the source does not know (instead of answering 200 with empty data)."""

    code = ErrorCode.UNKNOWN_CODE


class RateLimited(QmtgateError):
    code = ErrorCode.RATE_LIMITED


class Unauthorized(QmtgateError):
    """No API key, or one the gateway does not accept."""

    code = ErrorCode.UNAUTHORIZED


class Forbidden(QmtgateError):
    """A valid API key without the scope this route needs."""

    code = ErrorCode.FORBIDDEN


class Unsupported(QmtgateError):
    """The active source cannot do this; say so instead of faking success."""

    code = ErrorCode.UNSUPPORTED


class SourceError(QmtgateError):
    """The upstream call (xtdata or the simulator) raised; the message names the call, not a traceback."""

    code = ErrorCode.SOURCE_ERROR


class SourceUnavailable(SourceError):
    """The source is not connected (QMT not running, executor stopped, simulator missing)."""

    code = ErrorCode.SOURCE_UNAVAILABLE


class SourceBusy(SourceError):
    """A lane queue of the source executor is full; retry later."""

    code = ErrorCode.SOURCE_BUSY


class SourceTimeout(SourceError):
    """The caller stopped waiting; the upstream call may still be running on the executor thread."""

    code = ErrorCode.SOURCE_TIMEOUT


def error_body(code: ErrorCode | str, message: str, details: Any = None) -> dict[str, Any]:
    """Build the envelope dict; the only place its shape is spelled out."""
    value = code.value if isinstance(code, ErrorCode) else code
    return {"error": {"code": value, "message": message, "details": details}}


_STATUS_TO_CODE: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
    422: ErrorCode.VALIDATION_ERROR,
    429: ErrorCode.RATE_LIMITED,
    501: ErrorCode.UNSUPPORTED,
    503: ErrorCode.SOURCE_UNAVAILABLE,
}


def _json_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    # Imported here so that the source layer can import this module without pulling the API package.
    from qmtgate.api.responses import OrjsonResponse

    return OrjsonResponse(body, status_code=status, headers=headers)


def validation_details(
    errors: Iterable[Mapping[str, Any]], where: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """pydantic's errors as the envelope's details; ``where`` prefixes each ``loc`` (e.g. ``("body",)``
    for a model validated by hand). Keep loc/msg/type only: ``input`` echoes client data back and ``ctx``
    may hold exception objects."""
    return [
        {
            "loc": [*where, *err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in errors
    ]


async def _handle_qmtgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, QmtgateError)
    headers = None
    retry_after = getattr(exc, "retry_after", None) or RETRY_AFTER_SECONDS.get(exc.code)
    if retry_after is not None:
        headers = {"Retry-After": str(retry_after)}
    return _json_error(exc.status_code, exc.to_body(), headers)


#: Parameters whose schema violations get a more specific code than ``validation_error``.
_PARAM_CODES: dict[str, ErrorCode] = {
    "period": ErrorCode.INVALID_PERIOD,
    "frequency": ErrorCode.INVALID_PERIOD,
}


def validation_error_body(details: list[dict[str, Any]]) -> dict[str, Any]:
    """The 422 envelope of schema violations (``details``: loc/msg/type per error, ``loc`` starting
    with where the value was, e.g. ``["body", "price"]``); shared by REST and the WebSocket's orders."""
    names = sorted({str(err["loc"][-1]) for err in details if len(err["loc"]) > 1})
    codes = {_PARAM_CODES.get(name) for name in names}
    code = codes.pop() if len(codes) == 1 and None not in codes else ErrorCode.VALIDATION_ERROR
    parts = ["invalid " + ", ".join(repr(name) for name in names)] if names else []
    # a rule on the whole body (a limit order without a price) says itself: its text is the reason
    parts += [plain_reason(err) for err in details if len(err["loc"]) <= 1][:3]
    message = "request validation failed" + (": " + "; ".join(parts) if parts else "")
    return error_body(code, message, details)


def plain_reason(err: Mapping[str, Any]) -> str:
    """A validation item's text without pydantic's wording around a validator's own message."""
    text = str(err.get("msg") or err.get("type") or "invalid")
    for prefix in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(prefix)
    return text


async def _handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _json_error(422, validation_error_body(validation_details(exc.errors())))


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_TO_CODE.get(exc.status_code)
    if code is None:
        code = ErrorCode.BAD_REQUEST if exc.status_code < 500 else ErrorCode.INTERNAL_ERROR
    message = exc.detail if isinstance(exc.detail, str) else code.value.replace("_", " ")
    details = None if isinstance(exc.detail, str) else exc.detail
    return _json_error(exc.status_code, error_body(code, message, details), dict(exc.headers or {}) or None)


async def _handle_unexpected(request: Request, exc: Exception) -> Response:
    # Log the traceback for the operator; the client only learns that it was our fault.
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _json_error(500, error_body(ErrorCode.INTERNAL_ERROR, "internal server error"))


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception through the envelope: ours, validation, HTTP, and anything unexpected."""
    app.add_exception_handler(QmtgateError, _handle_qmtgate_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(Exception, _handle_unexpected)
