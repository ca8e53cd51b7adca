"""The other modules of the simulated xtquant package behave as documented in docs/simulator.md
(issue 19, item 1): xtbson round-trips BSON, xtdatacenter's token mode is accepted, xtconn finds the
simulator, xtutil reads and writes BSON buffers, and `import xtquant.<module>` works after install().
"""

from __future__ import annotations

import importlib
import importlib.util
import types

import pytest

from qmtgate.sim.xtquant import _env


def test_every_module_imports_as_xtquant_submodule(sim_env: _env.SimEnv) -> None:
    import qmtgate.sim

    for name in qmtgate.sim.MODULES:
        if name == "xttrader" and importlib.util.find_spec("qmtgate.sim.xtquant.xttrader") is None:
            continue
        module = importlib.import_module(f"xtquant.{name}")
        assert module is importlib.import_module(f"qmtgate.sim.xtquant.{name}")


def test_xtbson_round_trips_and_is_bson() -> None:
    from xtquant import xtbson

    doc = {"a": 1, "b": [1.5, "x"], "c": {"d": None}}
    data = xtbson.encode(doc)
    assert xtbson.decode(data) == doc
    assert xtbson.BSON(data).decode() == doc
    assert data[:4] == len(data).to_bytes(4, "little"), "a BSON document starts with its length"


def test_xtutil_bson_buffers() -> None:
    from xtquant import xtutil

    docs = [{"k": i} for i in range(3)]
    buffer = xtutil.write_to_bson_buffer(docs)
    assert xtutil.read_from_bson_buffer(buffer) == docs


def test_xtdatacenter_token_mode_is_accepted(sim_env: _env.SimEnv) -> None:
    from xtquant import xtdatacenter as xtdc

    xtdc.shutdown()
    with pytest.raises(Exception, match="尚未初始化"):
        xtdc.listen(port=58610)
    xtdc.set_token("any-token")
    xtdc.set_init_markets(["SH", "SZ"])
    xtdc.init(start_local_service=False)
    try:
        assert xtdc.init_complete is True
        assert xtdc.listen("0.0.0.0", (58610, 58620)) == ("0.0.0.0", 58610)
        from xtquant import xtconn

        assert xtconn.get_internal_server_addr() == "127.0.0.1:58610"
        assert "127.0.0.1:58610" in xtconn.scan_available_server_addr()
        client = xtconn.create_connection("127.0.0.1:58610")
        assert client is not None and client.is_connected()
        assert xtconn.create_connection("127.0.0.1:") is None, "the real 'invalid port' error"
    finally:
        xtdc.shutdown()
    assert _env.current() is sim_env, "init does not replace a bound simulator"


def test_qmttools_strategy_runner_says_it_is_not_simulated() -> None:
    from xtquant import qmttools

    assert isinstance(qmttools.functions, types.ModuleType)
    with pytest.raises(NotImplementedError, match="not have"):
        qmttools.run_strategy_file("strategy.py")


def test_xtextend_reads_no_file_from_the_simulator(sim_env: _env.SimEnv) -> None:
    from xtquant import xtextend

    assert xtextend.show_extend_data("nothing", []) == "No such file"
