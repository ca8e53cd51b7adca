"""``qmtgate mcp``: run the MCP server on the user's machine, against a gateway over the network.

It needs only the client install plus the ``mcp`` extra (``pip install "qmtgate[mcp]"``), not the server
extra: ``qmtgate._entry`` routes ``qmtgate mcp`` here before importing the gateway's command line, and the
gateway's ``qmtgate --help`` lists the same command. Options may come from the environment, so an
assistant's config file need not hold the key on its command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Annotated, Literal, NoReturn

import typer

app = typer.Typer(add_completion=False)


def mcp_command(
    url: Annotated[
        str, typer.Option(envvar="QMTGATE_URL", help="The gateway's base URL (env QMTGATE_URL).")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="QMTGATE_API_KEY",
            help="API key (env QMTGATE_API_KEY; prefer the environment: a command line is visible to others).",
            show_default=False,
        ),
    ] = None,
    tls_fingerprint: Annotated[
        str | None,
        typer.Option(
            envvar="QMTGATE_TLS_FINGERPRINT",
            help="SHA-256 fingerprint `qmtgate cert` printed: trust exactly that certificate (https only).",
        ),
    ] = None,
    tls_ca: Annotated[
        str | None, typer.Option(envvar="QMTGATE_TLS_CA", help="PEM file of CAs to trust (https only).")
    ] = None,
    transport: Annotated[
        str, typer.Option(help="stdio (desktop assistants, IDEs) or http (streamable HTTP).")
    ] = "stdio",
    host: Annotated[str, typer.Option(help="HTTP bind address; loopback only.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8765,
    path: Annotated[str, typer.Option(help="HTTP endpoint path.")] = "/mcp",
    allow_trading: Annotated[
        bool,
        typer.Option(
            "--allow-trading",
            help="List the trading tools (two-step confirmed orders) if the gateway trades for this key.",
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds per gateway request.")] = 30.0,
) -> None:
    """MCP server for AI assistants: market data tools (and, guarded, trading) over a qmtgate gateway."""
    if transport not in ("stdio", "http"):
        _fail(f"--transport must be stdio or http, not {transport!r}")
    if transport == "http" and host not in ("127.0.0.1", "::1", "localhost"):
        # the MCP endpoint has no keys of its own: whoever reaches it uses the gateway with this key
        _fail(f"--host {host}: the MCP HTTP endpoint serves loopback only (it carries your gateway key)")
    if not 0 < port < 65536:
        _fail(f"--port must be 1-65535, not {port}")
    try:
        from qmtgate.mcp.gateway import GatewayConfig
        from qmtgate.mcp.server import serve
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] != "mcp":
            raise
        _fail(f'the MCP server needs the mcp extra; run: {sys.executable} -m pip install "qmtgate[mcp]"')
    from qmtgate.client._base import tls_context

    try:
        tls_context(url, tls_fingerprint, tls_ca)  # bad TLS options: one line now, not a failing tool later
    except ValueError as e:
        _fail(str(e))
    config = GatewayConfig(url, api_key, tls_fingerprint, tls_ca, timeout)
    kind: Literal["stdio", "http"] = "http" if transport == "http" else "stdio"
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(config, transport=kind, host=host, port=port, path=path, allow_trading=allow_trading)
        )


def _fail(message: str) -> NoReturn:
    print(f"qmtgate mcp: {message}", file=sys.stderr)
    raise typer.Exit(code=2)


app.command(name="mcp")(mcp_command)


def main(argv: list[str]) -> None:
    """``qmtgate mcp ...`` without the server extra (called by ``qmtgate._entry``)."""
    typer.main.get_command(app).main(args=argv, prog_name="qmtgate mcp")
