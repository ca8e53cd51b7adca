"""Command line: ``qmtgate serve`` runs the gateway, ``qmtgate version`` prints the version.

Flags override ``QMTGATE_*`` environment variables, which override the ``--config`` TOML file.
Flags left out do not override anything (their value is None here).
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Annotated

import typer

from qmtgate.config import ConfigFileError, SimClock, SourceKind, load_settings, package_version

app = typer.Typer(
    name="qmtgate",
    help="LAN gateway to QMT/miniQMT (xtquant) market data, with a built-in simulated A-share market.",
    no_args_is_help=True,
    add_completion=False,
)

logger = logging.getLogger("qmtgate")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1: loopback only).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8000).")] = None,
    source: Annotated[
        SourceKind | None,
        typer.Option(help="Market-data source: sim, xtquant, or auto (xtquant if QMT answers, else sim)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML settings file (also QMTGATE_CONFIG)."),
    ] = None,
    sim_seed: Annotated[int | None, typer.Option(help="Simulator seed.")] = None,
    sim_speed: Annotated[
        float | None,
        typer.Option(help="Simulated seconds per wall-clock second while replaying."),
    ] = None,
    sim_clock: Annotated[
        SimClock | None, typer.Option(help="Simulator clock: live, real, replay, manual.")
    ] = None,
    sim_start: Annotated[
        str | None,
        typer.Option(help="Replay start YYYYMMDD[HHMMSS] (Asia/Shanghai) for --sim-clock replay."),
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="critical|error|warning|info|debug.")] = None,
) -> None:
    """Run the gateway (uvicorn) on the selected market source."""
    import uvicorn

    from qmtgate.api.app import create_app

    try:
        settings = load_settings(
            config,
            host=host,
            port=port,
            source=source,
            log_level=log_level,
            sim={"seed": sim_seed, "speed": sim_speed, "clock": sim_clock, "start": sim_start},
        )
    except (ConfigFileError, ValueError) as e:
        typer.echo(f"qmtgate: invalid settings: {e}", err=True)
        raise typer.Exit(code=2) from e
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not _is_loopback(settings.host):
        logger.warning(
            "binding %s: the API is reachable from the network and has no authentication yet", settings.host
        )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # One process: the xtdata executor thread and the subscription state live in it.
        workers=1,
        # permessage-deflate is per connection: with many whole-market clients it costs ~2.5x the
        # gateway CPU per delivered tick (bench/RESULTS.md), so frames go uncompressed
        ws_per_message_deflate=False,
    )


@app.command()
def version() -> None:
    """Print the qmtgate version."""
    typer.echo(package_version())


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    app()
