"""xtquant.xtdatacenter (token mode) on the simulator.

Real token mode starts a native data center inside the process (``init``) that logs in to the vendor's
quote servers with a token and can serve other xtdata processes (``listen``). The simulator is its own
data source, so: the settings (``set_token``, ``set_data_home_dir``, ``set_*``) are recorded and
otherwise no-ops; ``init`` binds the simulated market (and sets ``init_complete``) and raises the real
"not initialised" error for ``listen`` before it; ``listen`` answers the (ip, port) it was asked for
without opening a socket (use ``qmtgate serve`` to serve other machines); ``set_data_home_dir`` is
honoured: it becomes the simulator's shared data directory for the next ``init``.
"""

from . import _env

__all__ = [
    "RPCClient",
    "get_local_server_port",
    "init",
    "listen",
    "register_create_nparray",
    "set_data_home_dir",
    "set_token",
    "shutdown",
    "try_create_client",
]

init_complete = False
_settings: dict = {"token": "", "data_home_dir": "data", "config_dir": None, "port": 0}


def get_local_server_port():
    """Port of the local listener ``init(start_local_service=True)`` would open (0: none)."""
    return _settings["port"]


def register_create_nparray(func):
    """The native module's numpy factory hook; the simulator builds arrays itself (recorded)."""
    _settings["create_nparray"] = func


def try_create_client():
    """A client object for the simulated market (the same as ``xtdata.get_client()``)."""
    from .xtdata import get_client

    return get_client()


def _client_class():
    from .xtdata import _SimClient

    return _SimClient


class RPCClient:
    """Stands for the native ``IPythonApiClient``: constructing one gives a simulated client."""

    def __new__(cls, *args, **kwargs):
        return try_create_client()


def set_token(token=""):
    _settings["token"] = token


def set_data_home_dir(data_home_dir):
    _settings["data_home_dir"] = data_home_dir


def set_config_dir(config_dir):
    _settings["config_dir"] = config_dir


def set_kline_mirror_enabled(enable):
    _settings["kline_mirror_enabled"] = enable


def set_kline_mirror_markets(markets):
    _settings["kline_mirror_markets"] = list(markets)


def set_allow_optmize_address(allow_list=[]):
    _settings["allow_optmize_address"] = list(allow_list)


def set_wholequote_market_list(market_list=[]):
    _settings["wholequote_market_list"] = list(market_list)


def set_future_realtime_mode(enable):
    _settings["future_realtime_mode"] = enable


def set_init_markets(markets=[]):
    _settings["init_markets"] = list(markets)


def set_index_mirror_enabled(enable):
    _settings["index_mirror_enabled"] = enable


def set_index_mirror_markets(markets):
    _settings["index_mirror_markets"] = list(markets)


def set_kline_cutting_mode(mode):
    _settings["kline_cutting_mode"] = mode


def set_quote_time_mode_v2(enable):
    _settings["quote_time_mode_v2"] = enable


def set_thousand_source_mode(mode):
    _settings["thousand_source_mode"] = mode


def init(start_local_service=True):
    """Bind the simulated market (the data home dir, when set away from the default, becomes the
    simulator's data directory); then ``listen`` works, as after the real init."""
    global init_complete
    if _env._ENV is None:
        from .. import install

        home = _settings["data_home_dir"]
        install(data_dir=None if home == "data" else home)
    init_complete = True
    if start_local_service:
        listen("127.0.0.1", 58609)


def shutdown():
    global init_complete
    init_complete = False
    _settings["port"] = 0


def listen(ip="0.0.0.0", port=58610):
    """The real error before ``init``; then (ip, port) as asked (first port of a range), no socket."""
    if not init_complete:
        raise Exception("尚未初始化, 请优先调用init进行初始化")
    chosen = port[0] if isinstance(port, tuple) else port
    _settings["port"] = chosen
    return (ip, chosen)
