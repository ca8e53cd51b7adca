"""``/docs`` (Swagger UI) and ``/redoc`` served entirely by the gateway: no CDN, so they work on an offline LAN.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, which a trading PC on a closed LAN cannot reach
(the page stays blank). The JavaScript/CSS come from the ``fastapi-offline`` package (MIT; it ships the
swagger-ui-dist and redoc standalone bundles as package data) and are served under ``/docs/assets``. Only
its static files are used: the pages are FastAPI's own HTML helpers, pointed at the local assets.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSET_PREFIX = "/docs/assets"
#: The files under ASSET_PREFIX (the security guard lets them through when the docs are public).
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
STATIC_DIR = Path(fastapi_offline.__file__).parent / "static"


def install_offline_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Add the two documentation pages and their assets; ``app`` must be built with docs_url=None,
    redoc_url=None (FastAPI's CDN pages off)."""
    missing = [name for name in ASSET_FILES if not (STATIC_DIR / name).is_file()]
    if missing:  # a broken install: fail at start-up, not with a blank page in the browser
        raise RuntimeError(f"fastapi-offline is missing {missing} under {STATIC_DIR}; reinstall it")
    app.mount(ASSET_PREFIX, StaticFiles(directory=STATIC_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_url = app.swagger_ui_oauth2_redirect_url or f"{docs_url}/oauth2-redirect"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_url}",
            swagger_js_url=f"{root}{ASSET_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSET_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSET_PREFIX}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(oauth2_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSET_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSET_PREFIX}/favicon.png",
            with_google_fonts=False,  # Google Fonts is another external host
        )
