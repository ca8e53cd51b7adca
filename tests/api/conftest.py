from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qmtgate.api.app import create_app
from qmtgate.config import Settings

from .support import FakeXtdata, LiveServer, make_source, start_server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake() -> FakeXtdata:
    return FakeXtdata()


@pytest.fixture
def settings() -> Settings:
    return Settings(source="sim")


@pytest.fixture
def app(settings: Settings, fake: FakeXtdata) -> FastAPI:
    return create_app(settings, make_source(fake))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # raise_server_exceptions=False: see the 500 envelope a real client would see.
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def serve() -> Iterator[Callable[[FastAPI], LiveServer]]:
    """Start apps in real uvicorn servers on free loopback ports; all are stopped at teardown."""
    servers: list[LiveServer] = []

    def start(app: FastAPI) -> LiveServer:
        server = start_server(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
