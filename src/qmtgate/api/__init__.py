"""HTTP API: FastAPI app factory, dependencies, routers and response encoding."""

from qmtgate.api.app import create_app

__all__ = ["create_app"]
