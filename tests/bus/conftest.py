"""One nats-server per test module (module scope keeps the tests fast)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

try:  # tests/ on sys.path
    from bus.support import NatsServer
except ImportError:
    from tests.bus.support import NatsServer  # type: ignore[no-redef]


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(Path(tmp_path_factory.mktemp("nats")))
    server.start()
    yield server
    server.stop()
