"""The ``qmtgate`` console script: the gateway's command line, or one clear line on a client-only install.

The base install (``pip install qmtgate`` / ``"qmtgate[client]"``) carries only what ``qmtgate.client`` and
``qmtgate.remote`` need; the command line (serve, keys, cert, doctor, record) needs the ``server`` extra.
Without it, ``qmtgate.cli`` would fail on its first import with a traceback; this says what to install.
"""

from __future__ import annotations

import sys

#: Top-level modules of the ``server`` extra (pyproject.toml) that the command line imports.
SERVER_MODULES = frozenset(
    {
        "typer",
        "click",
        "fastapi",
        "starlette",
        "uvicorn",
        "pydantic",
        "pydantic_settings",
        "duckdb",
        "exchange_calendars",
        "prometheus_client",
        "cryptography",
        "tomli",
    }
)


def main() -> None:
    if sys.argv[1:2] == ["mcp"]:
        # the MCP server runs on a client install (+ the mcp extra): never import the gateway's command line
        try:
            from qmtgate.mcp.cli import main as mcp_main
        except ModuleNotFoundError as e:
            if (e.name or "").partition(".")[0] not in ("typer", "click", "mcp"):
                raise
            print(
                f"qmtgate mcp: needs the mcp extra ({e.name} is not installed); "
                f'run: {sys.executable} -m pip install "qmtgate[mcp]"',
                file=sys.stderr,
            )
            raise SystemExit(2) from None
        mcp_main(sys.argv[2:])
        return
    if sys.argv[1:2] == ["serve"]:  # before anything imports pyarrow (see the function)
        from qmtgate.ops.allocator import prefer_system_arrow_pool

        prefer_system_arrow_pool()
    try:
        from qmtgate.cli import app
    except ModuleNotFoundError as e:
        missing = (e.name or "").partition(".")[0]
        if missing not in SERVER_MODULES:
            raise
        print(
            f"qmtgate: the command line needs the server extra ({missing} is not installed); "
            f'run: {sys.executable} -m pip install "qmtgate[server]"',
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    app()


if __name__ == "__main__":
    main()
