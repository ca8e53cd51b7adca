"""Per-route scope checks (FastAPI dependencies) and per-key batch quotas.

The middleware has already authenticated the caller (or auth is off); these dependencies only decide
whether the key's scopes allow the route: ``read`` for data and reference routes, ``admin`` for routes that
change state (download jobs) and for ``/metrics``, ``stream`` for WebSockets (checked in the stream route).
``admin`` implies ``read`` and ``stream``. The header is not declared per operation in OpenAPI (generators
such as schemathesis would then send random header values); :mod:`qmtgate.security.openapi` documents it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request

from qmtgate.config import ApiKeySettings
from qmtgate.errors import Forbidden, QmtgateError, TooLarge, Unauthorized
from qmtgate.security.guard import STATE_KEY, has_scope

#: Query parameters that carry code lists (comma-separated and/or repeated) on the REST routes.
CODE_LIST_PARAMS = ("codes", "stocks", "symbols")


def request_key(request: Request) -> ApiKeySettings | None:
    """The authenticated key of this request (None when auth is off or the path is exempt)."""
    return request.scope.get("state", {}).get(STATE_KEY)


def scope_refusal(request: Request, scope: str) -> QmtgateError | None:
    """Why this request may not use a ``scope`` route (None: it may). Shared by the dependency below and
    by ASGI fast paths that skip FastAPI's dependency solving (``api/fastlane.py``)."""
    guard = getattr(request.app.state, "security", None)
    if guard is None or not guard.active:
        return None
    record = request_key(request)
    if record is None:
        if request.url.path in guard.exempt:
            return None
        return Unauthorized("an API key is required")
    if not has_scope(record, scope):
        return Forbidden(
            f"this API key lacks the {scope!r} scope",
            {"required": scope, "scopes": list(record.scopes), "key_id": record.id},
        )
    if record.max_batch_codes is not None:
        return _batch_refusal(request, record)
    return None


def require_scope(scope: str) -> Callable[..., Awaitable[None]]:
    """A dependency that refuses (403) keys without ``scope``; a no-op when auth is off or the path is
    public (``auth.public_docs``, ``metrics.public``). ``async`` so FastAPI does not run it in its thread
    pool (a thread hop on every request)."""

    async def check(request: Request) -> None:
        refusal = scope_refusal(request, scope)
        if refusal is not None:
            raise refusal

    check.__name__ = f"require_{scope}"
    return check


def _batch_refusal(request: Request, record: ApiKeySettings) -> QmtgateError | None:
    count = 0
    for name in CODE_LIST_PARAMS:
        for value in request.query_params.getlist(name):
            count += sum(1 for item in value.split(",") if item.strip())
    if record.max_batch_codes is not None and count > record.max_batch_codes:
        return TooLarge(
            f"this API key may name at most {record.max_batch_codes} codes per request ({count} given)",
            {"limit": record.max_batch_codes, "requested": count, "key_id": record.id},
        )
    return None


READ = Depends(require_scope("read"))
ADMIN = Depends(require_scope("admin"))
