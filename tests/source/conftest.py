from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from qmtgate.source.executor import ExecutorConfig, XtdataExecutor

from .fake_xtdata import FakeXtdata


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake() -> FakeXtdata:
    return FakeXtdata()


@pytest.fixture
async def executor() -> AsyncIterator[XtdataExecutor]:
    ex = XtdataExecutor(ExecutorConfig())
    ex.start()
    yield ex
    await ex.stop(timeout=1.0)
