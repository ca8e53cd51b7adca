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


@pytest.fixture(scope="module")
def sim_client() -> Iterator[TestClient]:
    """One gateway on the simulated market (manual clock, session in progress) per test module."""
    from .sim_support import sim_settings, wait_live

    with TestClient(create_app(sim_settings()), raise_server_exceptions=False) as test_client:
        wait_live(test_client)
        yield test_client


@pytest.fixture(scope="module")
def sim_server() -> Iterator[LiveServer]:
    """The same, served by a real uvicorn on a free loopback port."""
    import httpx

    from .sim_support import sim_settings, wait_live

    server = start_server(create_app(sim_settings()))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            wait_live(client)
        yield server
    finally:
        server.stop()
