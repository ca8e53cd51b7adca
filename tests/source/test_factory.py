from __future__ import annotations

import threading
import types
from collections.abc import Callable
from typing import Any

import pytest

from qmtgate.config import Settings, SimSettings, SourceKind
from qmtgate.errors import SourceUnavailable
from qmtgate.source.base import SourceState
from qmtgate.source.executor import ExecutorState, Lane
from qmtgate.source.factory import executor_config, open_source
from qmtgate.source.xtdata_source import XtdataSource

from .fake_xtdata import FakeXtdata

pytestmark = pytest.mark.anyio


def importer(modules: dict[str, Any]) -> Callable[[str], Any]:
    """An import_module stand-in: only the given modules exist; values that are exceptions are raised."""

    def import_module(name: str) -> Any:
        if name not in modules:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        value = modules[name]
        if isinstance(value, BaseException):
            raise value
        return value

    return import_module


def settings(kind: SourceKind, **kwargs: Any) -> Settings:
    return Settings(source=kind, xtquant={"connect_timeout": 1.0, "reconnect_interval": 60}, **kwargs)


def with_sim(fake: FakeXtdata, **extra: Any) -> dict[str, Any]:
    return {"qmtgate.sim": types.SimpleNamespace(), "qmtgate.sim.xtquant.xtdata": fake, **extra}


async def test_sim_uses_the_simulator_module() -> None:
    fake = FakeXtdata()
    source = await open_source(settings(SourceKind.SIM), importer(with_sim(fake)))
    try:
        assert source.name == "simulated" and source.status().ready
        assert fake.count("connect") == 1
    finally:
        await source.stop()


async def test_sim_hook_receives_sim_settings() -> None:
    fake = FakeXtdata()
    seen: list[SimSettings] = []

    def create_xtdata(sim: SimSettings) -> FakeXtdata:
        seen.append(sim)
        return fake

    sim_pkg = types.SimpleNamespace(create_xtdata=create_xtdata)
    source = await open_source(
        settings(SourceKind.SIM, sim={"seed": 7, "speed": 60}), importer({"qmtgate.sim": sim_pkg})
    )
    try:
        assert seen == [SimSettings(seed=7, speed=60.0)]
        assert source.status().ready
    finally:
        await source.stop()


async def test_sim_missing_is_a_clear_error() -> None:
    with pytest.raises(SourceUnavailable, match="simulated market is not available"):
        await open_source(settings(SourceKind.SIM), importer({}))


async def test_auto_prefers_connected_xtquant() -> None:
    real, sim = FakeXtdata(), FakeXtdata()
    source = await open_source(settings(SourceKind.AUTO), importer({"xtquant.xtdata": real, **with_sim(sim)}))
    try:
        assert source.name == "xtquant" and source.status().ready
        assert sim.calls == []
    finally:
        await source.stop()


@pytest.mark.parametrize(
    "xtquant",
    [
        None,  # not installed (Linux, macOS)
        Exception("rpc init failed, error_code:-1, configdir:..."),  # xtquant's own import-time failure
    ],
)
async def test_auto_falls_back_to_the_simulator_when_xtquant_cannot_load(xtquant: Exception | None) -> None:
    modules = with_sim(FakeXtdata())
    if xtquant is not None:
        modules["xtquant.xtdata"] = xtquant
    source = await open_source(settings(SourceKind.AUTO), importer(modules))
    try:
        assert source.name == "simulated" and source.status().ready
    finally:
        await source.stop()


async def test_auto_falls_back_when_qmt_is_not_running_and_stops_the_real_executor() -> None:
    real = FakeXtdata()
    real.down = True
    before = {t.ident for t in threading.enumerate() if t.name == "qmtgate-xtdata"}
    source = await open_source(
        settings(SourceKind.AUTO), importer({"xtquant.xtdata": real, **with_sim(FakeXtdata())})
    )
    try:
        assert source.name == "simulated"
        assert real.count("connect") == 1
        # The abandoned real source's executor thread is gone: one new xtdata thread serves.
        workers = [
            t
            for t in threading.enumerate()
            if t.name == "qmtgate-xtdata" and t.is_alive() and t.ident not in before
        ]
        assert len(workers) == 1
    finally:
        await source.stop()


async def test_explicit_xtquant_starts_unavailable_instead_of_failing() -> None:
    real = FakeXtdata()
    real.down = True
    source = await open_source(settings(SourceKind.XTQUANT), importer({"xtquant.xtdata": real}))
    try:
        assert source.name == "xtquant"
        assert source.status().state is SourceState.UNAVAILABLE
    finally:
        await source.stop()
    assert isinstance(source, XtdataSource) and source.executor.state is ExecutorState.STOPPED


async def test_explicit_xtquant_not_importable_raises() -> None:
    with pytest.raises(SourceUnavailable, match="xtquant is not importable"):
        await open_source(settings(SourceKind.XTQUANT), importer({}))


def test_executor_settings_map_to_lanes() -> None:
    config = executor_config(Settings(executor={"history_timeout": 12, "snapshot_queue": 3}).executor)
    assert config.timeout[Lane.HISTORY] == 12.0
    assert config.capacity[Lane.SNAPSHOT] == 3
    assert config.timeout[Lane.CONTROL] == 5.0
