"""WebSocket authentication after the handshake, and the per-key streaming quota.

A WebSocket client sends its key either in the handshake headers (``X-API-Key`` or ``Authorization:
Bearer``; checked by the security middleware before the route runs) or, where it cannot set headers
(browsers), as its first message::

    {"op": "auth", "key": "qg_..."}

answered by ``{"type": "auth", "ok": true, "key_id": ..., "scopes": [...]}``. Never in the URL: a key in the
query string is refused at the handshake. Failures are an ``error`` message and a close: 4401
(unauthorized, also when no auth message came within the timeout), 4403 (the key lacks the ``stream``
scope), 4429 (rate limited or locked out).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from fastapi import WebSocket

from qmtgate.config import ApiKeySettings
from qmtgate.security.guard import STATE_KEY, STATE_WS_PENDING, Refusal, has_scope, scope_address

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_RATE_LIMITED = 4429
AUTH_TIMEOUT = 10.0


async def authorize_websocket(
    ws: WebSocket, scope: str | tuple[str, ...] = "stream", timeout: float = AUTH_TIMEOUT
) -> tuple[bool, ApiKeySettings | None]:
    """After ``accept``: ``(True, key)`` when the connection may proceed (key None with auth off);
    ``(False, None)`` after refusing and closing it. ``scope``: the scope needed, or a tuple of which
    any one will do (each message then checks its own, as ``/api/v1/ws`` does for ``stream`` / ``trade``)."""
    scopes = (scope,) if isinstance(scope, str) else scope
    guard = getattr(ws.app.state, "security", None)
    if guard is None or not guard.active:
        return True, None
    state = ws.scope.setdefault("state", {})
    record: ApiKeySettings | None = state.get(STATE_KEY)
    by_message = record is None and bool(state.get(STATE_WS_PENDING))
    if by_message:
        record = await _first_message_auth(ws, guard, timeout)
        if record is None:
            return False, None
        state[STATE_KEY] = record
        state.pop(STATE_WS_PENDING, None)
    if record is None:  # cannot happen past the middleware; refuse rather than serve
        await _refuse(ws, "unauthorized", "an API key is required", CLOSE_UNAUTHORIZED)
        return False, None
    if not any(has_scope(record, s) for s in scopes):
        guard.on_event("auth_failure", "forbidden")
        wanted = " or ".join(repr(s) for s in scopes)
        await _refuse(
            ws,
            "forbidden",
            f"this API key lacks the {wanted} scope",
            CLOSE_FORBIDDEN,
            {"required": scopes[0] if len(scopes) == 1 else list(scopes), "scopes": list(record.scopes)},
        )
        return False, None
    if by_message:
        await _send(ws, {"type": "auth", "ok": True, "key_id": record.id, "scopes": list(record.scopes)})
    return True, record


async def _first_message_auth(ws: WebSocket, guard: Any, timeout: float) -> ApiKeySettings | None:
    try:
        message = await asyncio.wait_for(ws.receive(), timeout)
    except asyncio.TimeoutError:
        await _refuse(
            ws, "unauthorized", f"send {{'op': 'auth', 'key': ...}} within {timeout:g} s", CLOSE_UNAUTHORIZED
        )
        return None
    except Exception:  # the socket failed under us
        with contextlib.suppress(Exception):
            await ws.close(code=CLOSE_UNAUTHORIZED)
        return None
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")  # None for a binary frame: answered like any message without a key
    try:
        msg = orjson.loads(text) if text is not None else None
    except orjson.JSONDecodeError:
        msg = None
    key = msg.get("key") if isinstance(msg, dict) and msg.get("op") == "auth" else None
    if not isinstance(key, str):
        guard.on_event("auth_failure", "missing")
        await _refuse(
            ws,
            "unauthorized",
            "authenticate first: send the key in the X-API-Key header or as {'op': 'auth', 'key': ...}",
            CLOSE_UNAUTHORIZED,
        )
        return None
    address = scope_address(ws.scope)
    result = guard.authenticate(key, address)
    if isinstance(result, Refusal):
        await _refuse_with(ws, result)
        return None
    limited = guard.limit(result, address)
    if limited is not None:
        await _refuse_with(ws, limited)
        return None
    return result


def stream_quota_error(
    record: ApiKeySettings | None,
    subscribed: int,
    already: set[str],
    codes: list[str],
    *,
    markets: Iterable[str] = (),
    held_markets: Iterable[str] = (),
    market_size: Callable[[str], int] | None = None,
) -> dict[str, Any] | None:
    """The error body when subscribing ``codes`` and ``markets`` would exceed the key's
    ``max_stream_codes``. Sectors arrive here expanded into ``codes``; a market counts as its
    instruments (``market_size``), those already held (``held_markets``) included, so a whole market is
    not a way around the quota."""
    if record is None or record.max_stream_codes is None:
        return None
    held = set(held_markets)
    size = market_size or (lambda market: 0)
    new = sum(1 for code in codes if code not in already)
    new += sum(size(m) for m in set(markets) - held)
    subscribed += sum(size(m) for m in held)
    if subscribed + new <= record.max_stream_codes:
        return None
    return {
        "code": "too_many_codes",
        "message": f"this API key may subscribe at most {record.max_stream_codes} codes "
        "(a market counts as all its instruments, a sector as its members)",
        "details": {"limit": record.max_stream_codes, "subscribed": subscribed, "requested": new},
    }


def held_markets(client: Any) -> set[str]:
    """Whole markets a hub client is subscribed to, over all its periods."""
    return {m for interest in client.interests.values() for m in interest.markets}


async def _refuse_with(ws: WebSocket, refusal: Refusal) -> None:
    close = CLOSE_RATE_LIMITED if refusal.status == 429 else CLOSE_UNAUTHORIZED
    await _refuse(ws, refusal.code.value, refusal.message, close, refusal.details)


async def _refuse(
    ws: WebSocket, code: str, message: str, close_code: int, details: dict[str, Any] | None = None
) -> None:
    with contextlib.suppress(Exception):
        await _send(
            ws, {"type": "error", "error": {"code": code, "message": message, "details": details or {}}}
        )
        await ws.close(code=close_code, reason=code)


async def _send(ws: WebSocket, message: dict[str, Any]) -> None:
    await ws.send_text(orjson.dumps(message).decode())
