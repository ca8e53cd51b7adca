"""Typed client exceptions, one per error-envelope ``code`` of the gateway (docs/rest.md, "Errors").

The gateway answers every failure as ``{"error": {"code", "message", "details"}}``; the client raises the
class registered for ``code`` so callers can ``except UnknownCode`` instead of parsing text. Classes
follow the server's hierarchy (``SourceUnavailable`` is a ``SourceError``), and an unknown code still
raises a :class:`GatewayError` carrying it.
"""

from __future__ import annotations

from typing import Any


class QmtgateClientError(Exception):
    """Base of everything the client raises."""


class ConnectionFailed(QmtgateClientError):
    """The gateway could not be reached (refused, reset, DNS) or did not answer within the timeout."""


class GatewayError(QmtgateClientError):
    """The gateway answered with an error envelope."""

    code = "error"

    def __init__(
        self, message: str, *, code: str | None = None, status: int = 0, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or type(self).code
        self.status = status
        self.details = details or {}

    def __str__(self) -> str:
        return f"{self.message} [{self.code}, HTTP {self.status}]"


class BadRequest(GatewayError):
    code = "bad_request"


class ValidationError(BadRequest):
    code = "validation_error"


class InvalidCode(BadRequest):
    code = "invalid_code"


class AmbiguousCode(InvalidCode):
    code = "ambiguous_code"


class InvalidPeriod(BadRequest):
    code = "invalid_period"


class InvalidDate(BadRequest):
    code = "invalid_date"


class InvalidField(BadRequest):
    code = "invalid_field"


class TooLarge(BadRequest):
    code = "too_large"


class NotFound(GatewayError):
    code = "not_found"


class UnknownCode(NotFound):
    code = "unknown_code"


class NotAcceptable(GatewayError):
    code = "not_acceptable"


class Unauthorized(GatewayError):
    code = "unauthorized"


class Forbidden(GatewayError):
    code = "forbidden"


class RateLimited(GatewayError):
    code = "rate_limited"


class Unsupported(GatewayError):
    code = "unsupported"


class SourceError(GatewayError):
    code = "source_error"


class SourceUnavailable(SourceError):
    code = "source_unavailable"


class SourceBusy(SourceError):
    code = "source_busy"


class SourceTimeout(SourceError):
    code = "source_timeout"


class InternalError(GatewayError):
    code = "internal_error"


def _registry() -> dict[str, type[GatewayError]]:
    found: dict[str, type[GatewayError]] = {}
    pending: list[type[GatewayError]] = [GatewayError]
    while pending:
        cls = pending.pop()
        found[cls.code] = cls
        pending.extend(cls.__subclasses__())
    return found


ERRORS_BY_CODE: dict[str, type[GatewayError]] = _registry()


def error_from_body(status: int, body: Any) -> GatewayError:
    """The typed exception for an error answer (an envelope, or anything else a proxy may have sent)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return GatewayError(f"HTTP {status} without an error envelope", status=status)
    code = str(error.get("code") or "error")
    cls = ERRORS_BY_CODE.get(code, GatewayError)
    raw = error.get("details")
    message = str(error.get("message") or code)
    details: dict[str, Any] | None = raw if isinstance(raw, dict) else None
    if isinstance(raw, list):  # request validation: one item per field, kept, and said in the message
        details = {"errors": raw}
        reasons = [_reason(item) for item in raw[:3] if isinstance(item, dict)]
        said = [reason for reason in reasons if reason.partition(" (")[0] not in message]
        if said:
            message = f"{message} ({'; '.join(said)})"
    return cls(message, code=code, status=status, details=details)


def _reason(item: dict[str, Any]) -> str:
    """One validation item as a reader wants it: ``Input should be greater than 0 (volume)``."""
    text = str(item.get("msg") or item.get("type") or "invalid")
    for prefix in ("Value error, ", "Assertion failed, "):  # pydantic's wording around a validator's text
        text = text.removeprefix(prefix)
    where = [str(part) for part in item.get("loc") or [] if part not in ("body", "query", "path")]
    return f"{text} ({'.'.join(where)})" if where else text
