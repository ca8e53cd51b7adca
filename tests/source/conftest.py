from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator

import pytest

from qmtgate.source.executor import ExecutorConfig, XtdataExecutor
from qmtgate.source.xtdata_source import XtdataSource, XtdataSourceConfig

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


@pytest.fixture
async def source(fake: FakeXtdata) -> AsyncIterator[XtdataSource]:
    """A started source over ``fake`` with its clock pinned to 2025-01-10 10:00 CST (a session in
    progress). Test modules that need another clock define their own ``source``, which takes precedence."""
    when = dt.datetime(2025, 1, 10, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
    src = XtdataSource(
        fake, name="simulated", config=XtdataSourceConfig(reconnect_interval=0.02), clock=lambda: when
    )
    await src.start()
    yield src
    await src.stop()
