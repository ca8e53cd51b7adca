"""What ``qmtgate serve`` tells a person at start-up: where to go once ready, and why it cannot start.

``start_banner`` is logged when the gateway is ready (end of the app's start-up): the URLs of the docs and
of liveness, and a curl line that works as printed (with the key header and the CA file when the settings
turn them on). ``xtquant_import_problem`` turns a failed ``import xtquant`` into one line that says how to
get xtquant into the Python that runs qmtgate, instead of a 90-line traceback from inside the lifespan.
"""

from __future__ import annotations

import importlib
import platform
import sys
import sysconfig
from collections.abc import Callable
from types import ModuleType

from qmtgate.config import Settings

_ANY_ADDRESS = ("0.0.0.0", "::", "")


def base_url(settings: Settings) -> str:
    """The URL a person on this machine opens: an any-address bind is reached on loopback."""
    scheme = "https" if settings.tls.cert_file else "http"
    host = settings.host
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{settings.port}"


def start_banner(settings: Settings, source_name: str | None = None) -> str:
    url = base_url(settings)
    curl = "curl"
    if settings.tls.cert_file:
        curl += f" --cacert '{settings.tls.cert_file}'"
    if settings.auth.keys_file:
        curl += " -H 'X-API-Key: <your key>'"
    ws = url.replace("http", "ws", 1)
    lines = [
        f"qmtgate is ready on {url}" + (f" (source: {source_name})" if source_name else ""),
        f"  API docs:   {url}/docs",
        f"  health:     {url}/api/v1/health/live",
        f"  try:        {curl} '{url}/api/v1/snapshots?codes=600000.SH'",
        f"  streaming:  {ws}/api/v1/ws  (docs/streaming.md)",
    ]
    if settings.host in _ANY_ADDRESS:
        lines.append(
            f"  listening on all interfaces: other machines use this PC's LAN address, port {settings.port}"
        )
    return "\n".join(lines)


def xtquant_import_problem(
    import_module: Callable[[str], ModuleType] = importlib.import_module,
    system: str | None = None,
    executable: str | None = None,
    site_packages: str | None = None,
) -> str | None:
    """None when ``xtquant.xtdata`` imports; else one line saying how to get it into this Python."""
    try:
        import_module("xtquant.xtdata")
    except (
        Exception
    ) as e:  # xtquant raises plain Exception('rpc init failed') at import, not only ImportError
        reason = f"{type(e).__name__}: {e}".splitlines()[0][:160]
    else:
        return None
    system = system or platform.system()
    executable = executable or sys.executable
    if system != "Windows":
        return (
            f"--source xtquant cannot work on {system}: xtquant runs only on Windows beside a logged-in "
            "QMT/miniQMT. Here use --source sim (the simulated market), or run qmtgate on the Windows PC "
            f"and connect to it with qmtgate.client / qmtgate.remote. ({reason})"
        )
    return (
        f"xtquant is not importable in the Python that runs qmtgate ({executable}): {reason}. Install it into "
        f'this Python with "{executable}" -m pip install xtquant, or copy the xtquant folder of your '
        f"broker's QMT into {site_packages or sysconfig.get_paths()['purelib']}."
    )
