"""Test helpers shared by the source and api tests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from qmtgate.source.executor import Lane, XtdataExecutor


async def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll ``condition`` until true (instead of sleeping a guessed amount)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


async def block_worker(executor: XtdataExecutor) -> tuple[threading.Event, asyncio.Task[Any]]:
    """Occupy the worker thread with a control-lane job until the returned event is set."""
    gate = threading.Event()
    task = asyncio.create_task(executor.submit(Lane.CONTROL, gate.wait, timeout=30, name="blocker"))
    await eventually(lambda: executor.status().current_call == "blocker")
    return gate, task
