"""``GET /``: where to go from here, instead of a 404 for someone who opens the gateway's address.

A browser (``Accept: text/html``) gets a short HTML page of links; anything else (curl, scripts) the same
links as JSON. Nothing here touches the source, so it answers while the gateway is still warming up.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from qmtgate.api.responses import OrjsonResponse
from qmtgate.config import package_version

router = APIRouter(include_in_schema=False)

#: (path, what it is): the first things a newcomer wants.
LINKS: tuple[tuple[str, str], ...] = (
    ("/docs", "interactive API documentation (Swagger UI)"),
    ("/redoc", "API reference (ReDoc)"),
    ("/openapi.json", "OpenAPI schema"),
    ("/api/v1/health/live", "liveness"),
    ("/api/v1/health/ready", "readiness of the market source"),
    ("/api/v1/snapshots?codes=600000.SH", "an example: the latest quote of 600000.SH"),
)


def index_body(base: str) -> dict[str, Any]:
    return {
        "name": "qmtgate",
        "version": package_version(),
        "links": {path: {"href": f"{base}{path}", "title": title} for path, title in LINKS},
    }


@router.get("/")
async def index(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    body = index_body(base)
    if "text/html" not in request.headers.get("accept", ""):
        return OrjsonResponse(body)
    items = "\n".join(
        f'<li><a href="{html.escape(link["href"])}">{html.escape(path)}</a>: {html.escape(link["title"])}</li>'
        for path, link in body["links"].items()
    )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>qmtgate</title></head><body>"
        f"<h1>qmtgate {html.escape(body['version'])}</h1><ul>\n{items}\n</ul></body></html>"
    )
    return HTMLResponse(page)
