"""A real gateway (uvicorn on loopback, in a thread) over the fake xtdata: fast, deterministic REST."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qmtgate.api.app import create_app
from qmtgate.config import Settings

try:  # tests/ on sys.path
    from api.support import FakeXtdata, LiveServer, make_source, start_server
except ImportError:  # tests/ itself is a package
    from tests.api.support import FakeXtdata, LiveServer, make_source, start_server  # type: ignore[no-redef]


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = start_server(create_app(Settings(source="sim"), make_source(FakeXtdata())))
    yield live
    live.stop()
