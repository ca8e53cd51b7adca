"""xtquant.xtconn: finding and connecting to xtquant servers, answered by the simulator.

The simulated market is the one server: its address is ``127.0.0.1:58610`` (xtdata's default port).
``scan_all_server_instance`` reads the same per-user ``.xtquant/*/xtdata.cfg`` files as the real one
(none exist on a machine without QMT: []).
"""

from .xtdatacenter import try_create_client

localhost = "127.0.0.1"
status_callback = None
_SIM_ADDR = "127.0.0.1:58610"


def try_create_connection(addr):
    """A client for ``addr`` ('ip:port'); the real exception for a missing port."""
    _ip, port = addr.split(":")
    if not port:
        raise Exception("invalid port")
    cl = try_create_client()
    if status_callback:
        from .xtdata import watch_xtquant_status

        watch_xtquant_status(status_callback)
    return cl


def create_connection(addr):
    try:
        return try_create_connection(addr)
    except Exception:
        return None


def scan_all_server_instance():
    import json
    import os

    result = []
    try:
        config_dir = os.path.abspath(os.path.join(os.environ["USERPROFILE"], ".xtquant"))
        for f in os.scandir(config_dir):
            cfg = os.path.join(f.path, "xtdata.cfg")
            if not os.path.exists(cfg):
                continue
            try:
                with open(cfg, encoding="utf-8") as fh:
                    config = json.load(fh)
            except Exception:
                continue
            config.setdefault("ip", localhost)
            if not config.get("port"):
                continue
            config["is_running"] = False
            result.append(config)
    except Exception:
        pass
    return result


def get_internal_server_addr():
    from .xtdatacenter import get_local_server_port

    port = get_local_server_port()
    return f"127.0.0.1:{port}" if port else None


def scan_available_server_addr():
    """The simulator's address (it is always running), then any internal listener."""
    result = [_SIM_ADDR]
    internal = get_internal_server_addr()
    if internal:
        result.append(internal)
    return list(dict.fromkeys(result))


def connect_any(addr_list, start_port, end_port):
    for addr in addr_list:
        try:
            port = int(addr.split(":")[1])
            if start_port > port or port > end_port:
                continue
            cl = create_connection(addr)
            if cl:
                return cl
        except Exception:
            continue
    return None
