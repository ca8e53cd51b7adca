"""Declare the answers of the security gate in the published OpenAPI document.

The gate runs before routing, so FastAPI does not know that every route can answer 400 ``key_in_url``,
401, 403 or 429; this adds them (as the error envelope) to every operation, so clients and schemathesis see
them documented. Liveness is exempt from authentication and only gets the 400.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from qmtgate.security.guard import LIVENESS_PATH

_ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}
_ANSWERS: dict[str, str] = {
    "400": "Bad request; `key_in_url` when an API key was put in the query string.",
    "401": "`unauthorized`: no API key, or an invalid or revoked one (auth on).",
    "403": "`forbidden`: the API key lacks the scope this route needs.",
    "429": "`rate_limited` or `locked_out` (too many bad keys); see Retry-After.",
}


def install_security_openapi(app: FastAPI) -> None:
    """Wrap ``app.openapi`` so the generated document lists the gate's answers (built once, cached)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        if "ErrorEnvelope" in schema.get("components", {}).get("schemas", {}):
            for path, item in schema.get("paths", {}).items():
                for operation in item.values():
                    if not isinstance(operation, dict) or "responses" not in operation:
                        continue
                    for status, text in _ANSWERS.items():
                        if path == LIVENESS_PATH and status != "400":
                            continue
                        operation["responses"].setdefault(
                            status,
                            {"description": text, "content": {"application/json": {"schema": _ENVELOPE}}},
                        )
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["ApiKey"] = {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "API key `qg_<id>_<secret>` (when auth is on); `Authorization: Bearer <key>` works "
            "too. Never in the URL: a key in the query string is refused with 400 `key_in_url`.",
        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
