from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from qmtgate.source.executor import ExecutorConfig, XtdataExecutor

from .fake_xtdata import FakeXtdata


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


_names = itertools.count()


@pytest.fixture
def fake() -> FakeXtdata:
    return FakeXtdata()


@pytest.fixture
async def executor() -> AsyncIterator[XtdataExecutor]:
    # a name of its own: other tests' gateways may still be winding down their xtdata threads
    ex = XtdataExecutor(ExecutorConfig(thread_name=f"qmtgate-xtdata-test-{next(_names)}"))
    ex.start()
    yield ex
    await ex.stop(timeout=1.0)
