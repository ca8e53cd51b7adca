"""Command line: ``qmtgate serve`` runs the gateway; ``keys``, ``cert`` and ``doctor`` set it up and check
it (docs/security.md, docs/operations.md); ``qmtgate version`` prints the version.

Flags override ``QMTGATE_*`` environment variables, which override the ``--config`` TOML file.
Flags left out do not override anything (their value is None here).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from qmtgate.config import ConfigFileError, SimClock, SourceKind, load_settings, package_version
from qmtgate.mcp.cli import mcp_command
from qmtgate.record.cli import check_replay_settings, export_command, record_command

app = typer.Typer(
    name="qmtgate",
    help="LAN gateway to QMT/miniQMT (xtquant) market data, with a built-in simulated A-share market.",
    no_args_is_help=True,
    add_completion=False,
)

logger = logging.getLogger("qmtgate")


#: Seconds open connections get to finish after SIGTERM or Ctrl-C before they are cancelled.
SHUTDOWN_GRACE_SECONDS = 3.0


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
    keys_file: Annotated[
        Path | None, typer.Option(help="API key file from `qmtgate keys create` (turns auth on).")
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="PEM certificate: serve HTTPS (`qmtgate cert`).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    log_format: Annotated[str | None, typer.Option(help="Log format: text or json.")] = None,
    log_file: Annotated[Path | None, typer.Option(help="Also log to this file (rotated by size).")] = None,
    db: Annotated[
        Path | None, typer.Option(help="Recording database: what --source replay plays and /recorded reads.")
    ] = None,
    date: Annotated[
        str | None,
        typer.Option(
            help="Session to replay with --source replay (YYYYMMDD or YYYY-MM-DD; default: the newest recorded day)."
        ),
    ] = None,
    speed: Annotated[
        float | None, typer.Option(help="Replay speed with --source replay (recorded s per wall s).")
    ] = None,
    replay_start: Annotated[
        str | None, typer.Option(help="Replay start time HH:MM[:SS] (default: the first recorded tick).")
    ] = None,
    enable_trading: Annotated[
        bool,
        typer.Option(
            "--enable-trading", help="Mount /api/v1/trading and connect XtQuantTrader (docs/trading.md)."
        ),
    ] = False,
    hikyuu: Annotated[
        bool,
        typer.Option(
            "--hikyuu",
            help="Publish the Hikyuu-compatible NNG feed (hikyuu.* settings; docs/hikyuu.md).",
        ),
    ] = False,
    nats: Annotated[
        str | None,
        typer.Option(
            "--nats",
            help="Publish to this NATS server too, e.g. nats://host:4222 (docs/nats.md; the nats settings section).",
        ),
    ] = None,
    nats_id: Annotated[
        str | None,
        typer.Option("--nats-id", help="Gateway id in the NATS subjects (default: the host name)."),
    ] = None,
    nats_jetstream: Annotated[
        bool | None,
        typer.Option("--nats-jetstream/--no-nats-jetstream", help="Keep the subjects in a JetStream stream."),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Allow a non-loopback bind without API keys (anyone on the network gets in).",
        ),
    ] = False,
) -> None:
    """Run the gateway (uvicorn) on the selected market source."""
    import uvicorn

    from qmtgate.api.app import create_app
    from qmtgate.ops.logs import setup_logging, shutdown_logging
    from qmtgate.security.http_guard import guarded_protocol
    from qmtgate.security.policy import check_serve_policy

    try:
        settings = load_settings(
            config,
            host=host,
            port=port,
            source=source,
            log_level=log_level,
            sim={"seed": sim_seed, "speed": sim_speed, "clock": sim_clock, "start": sim_start},
            auth={"keys_file": keys_file},
            tls={"cert_file": tls_cert, "key_file": tls_key},
            log={"format": log_format, "file": log_file},
            replay={
                "db": db if source is SourceKind.REPLAY else None,
                "date": date,
                "speed": speed,
                "start": replay_start,
            },
            recorder={"db": db if source is not SourceKind.REPLAY else None},
            trading={"enabled": True if enable_trading else None},
            hikyuu={"enabled": True if hikyuu else None},
            nats={"url": nats, "gateway_id": nats_id, "jetstream": nats_jetstream},
        )
        if settings.nats.enabled:
            from qmtgate.natswire import check_gateway_id

            if settings.nats.gateway_id:
                check_gateway_id(settings.nats.gateway_id)
        if settings.source is SourceKind.REPLAY:
            check_replay_settings(settings)
    except (ConfigFileError, ValueError) as e:
        typer.echo(f"qmtgate: invalid settings: {e}", err=True)
        raise typer.Exit(code=2) from e
    if settings.source is SourceKind.XTQUANT:  # one clear line, not a traceback from inside the lifespan
        from qmtgate.ops.startup import xtquant_import_problem

        problem = xtquant_import_problem()
        if problem:
            typer.echo(f"qmtgate: {problem}", err=True)
            raise typer.Exit(code=2)
    findings = check_serve_policy(settings, insecure_no_auth=insecure_no_auth)
    fatal = [f.message for f in findings if f.fatal]
    if fatal:
        for message in fatal:
            typer.echo(f"qmtgate: {message}", err=True)
        raise typer.Exit(code=2)
    setup_logging(settings.log_level, settings.log)
    for finding in findings:
        logger.warning("%s", finding.message)
    tls = settings.tls
    try:
        uvicorn.run(
            create_app(settings, process_tuning=True),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            # logging is configured above; uvicorn's loggers propagate to it, and the access log is ours
            log_config=None,
            access_log=not settings.log.access,
            ssl_certfile=str(tls.cert_file) if tls.cert_file else None,
            ssl_keyfile=str(tls.key_file) if tls.key_file else None,
            # One process: the xtdata executor thread and the subscription state live in it.
            workers=1,
            # permessage-deflate is per connection: with many whole-market clients it costs ~2.5x the
            # gateway CPU per delivered tick (bench/RESULTS.md), so frames go uncompressed
            ws_per_message_deflate=False,
            # SIGTERM/Ctrl-C: connections get SHUTDOWN_GRACE_SECONDS to finish, then their tasks are cancelled,
            # so a stuck request can never hold the stop (WebSockets end at once: they are always read)
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            # head/body size, head timeout and pending-connection limits before the app (docs/security.md)
            http=guarded_protocol(settings.http),
        )
    finally:
        shutdown_logging()


app.command("record")(record_command)
app.command("export")(export_command)
# `qmtgate mcp` (docs/mcp.md); qmtgate._entry also runs it without importing this module (client installs)
app.command("mcp")(mcp_command)


@app.command()
def version() -> None:
    """Print the qmtgate version."""
    typer.echo(package_version())


def _is_loopback(host: str) -> bool:
    from qmtgate.security.policy import is_loopback

    return is_loopback(host)


# -- keys, cert, doctor (docs/security.md, docs/operations.md) -----------------------------------------------

keys_app = typer.Typer(
    help="Create, list and revoke API keys (stored hashed in the key file).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

DEFAULT_KEYS_FILE = Path("qmtgate-keys.json")
KeysFileOption = Annotated[
    Path | None,
    typer.Option(
        "--keys-file",
        help="Key file (default: auth.keys_file from --config / QMTGATE_AUTH__KEYS_FILE, else ./qmtgate-keys.json).",
    ),
]
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file.")]


def _keys_path(keys_file: Path | None, config: Path | None) -> Path:
    if keys_file is not None:
        return keys_file
    try:
        configured = load_settings(config).auth.keys_file
    except (ConfigFileError, ValueError) as e:
        typer.echo(f"qmtgate: invalid settings: {e}", err=True)
        raise typer.Exit(code=2) from e
    return configured if configured is not None else DEFAULT_KEYS_FILE


def _read_keys(path: Path) -> list[Any]:
    from qmtgate.security.keys import KeyFileError, read_key_file

    try:
        return read_key_file(path)
    except KeyFileError as e:
        typer.echo(f"qmtgate: {e}", err=True)
        raise typer.Exit(code=2) from e


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key, e.g. 'research-mac'.")] = "",
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            "-s",
            help="read (data routes and history downloads), stream (WebSockets: subscriptions), admin "
            "(also cancelling jobs and /metrics), trade (the trading routes, docs/trading.md). Repeat or "
            "comma-separate: -s read,stream. Default read.",
        ),
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Requests per second for this key.")] = None,
    burst: Annotated[int | None, typer.Option(help="Bucket size for this key.")] = None,
    max_batch_codes: Annotated[int | None, typer.Option(help="Most codes per REST request.")] = None,
    max_stream_codes: Annotated[int | None, typer.Option(help="Most codes per WebSocket.")] = None,
    keys_file: KeysFileOption = None,
    config: ConfigOption = None,
) -> None:
    """Make a new key; prints it ONCE (only its hash is stored)."""
    from qmtgate.security.keys import generate_key, write_key_file

    path = _keys_path(keys_file, config)
    records = _read_keys(path)
    scopes = [part.strip() for item in (scope or ["read"]) for part in item.split(",") if part.strip()]
    try:
        new = generate_key(
            name,
            scopes,
            existing_ids=[r.id for r in records],
            rate=rate,
            burst=burst,
            max_batch_codes=max_batch_codes,
            max_stream_codes=max_stream_codes,
        )
    except ValueError as e:
        typer.echo(f"qmtgate: {e}", err=True)
        raise typer.Exit(code=2) from e
    write_key_file(path, [*records, new.record])
    typer.echo(new.token)
    typer.echo(
        f"key id {new.record.id}, scopes {','.join(new.record.scopes)}, stored hashed in {path}.\n"
        "Copy the key now: it cannot be shown again. Clients send it as the X-API-Key header.\n"
        f"Serve with: qmtgate serve --keys-file {path}",
        err=True,
    )


@keys_app.command("list")
def keys_list(keys_file: KeysFileOption = None, config: ConfigOption = None) -> None:
    """List keys (ids, names, scopes, state); secrets are never stored, so never shown."""
    path = _keys_path(keys_file, config)
    records = _read_keys(path)
    if not records:
        typer.echo(f"no keys in {path}")
        return
    for r in records:
        state = f"revoked {r.revoked}" if r.revoked else "active"
        typer.echo(f"{r.id}  {state:<34} {','.join(r.scopes):<18} {r.created}  {r.name}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Key id (from `qmtgate keys list`).")],
    keys_file: KeysFileOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke a key; a running gateway stops accepting it within seconds."""
    from qmtgate.security.keys import revoke, write_key_file

    path = _keys_path(keys_file, config)
    records = _read_keys(path)
    try:
        updated = revoke(records, key_id)
    except KeyError as e:
        typer.echo(f"qmtgate: no key {key_id!r} in {path}", err=True)
        raise typer.Exit(code=1) from e
    write_key_file(path, updated)
    typer.echo(f"revoked {key_id}")


@app.command()
def cert(
    out_dir: Annotated[Path, typer.Option(help="Folder for qmtgate-cert.pem and qmtgate-key.pem.")] = Path(
        "."
    ),
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Extra DNS name or IP the certificate names (repeatable)."),
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Validity in days.")] = 825,
    show: Annotated[
        Path | None, typer.Option(help="Only print the fingerprint of this PEM certificate.")
    ] = None,
) -> None:
    """Make a self-signed TLS certificate and print its SHA-256 fingerprint (clients pin it)."""
    from qmtgate.ops.cert import certificate_fingerprint, make_self_signed

    if show is not None:
        typer.echo(certificate_fingerprint(show))
        return
    try:
        info = make_self_signed(
            out_dir / "qmtgate-cert.pem", out_dir / "qmtgate-key.pem", host or [], days=days
        )
    except FileExistsError as e:
        typer.echo(f"qmtgate: {e}", err=True)
        raise typer.Exit(code=1) from e
    typer.echo(f"SHA-256 fingerprint: {info.fingerprint}")
    typer.echo(
        f"certificate {info.cert_file} (names: {', '.join(info.names)}; valid until {info.not_after:%Y-%m-%d})\n"
        f"private key {info.key_file} (keep it on this PC)\n"
        f"serve with: qmtgate serve --tls-cert {info.cert_file} --tls-key {info.key_file}\n"
        "clients pin the fingerprint: Client(url, tls_fingerprint='<fingerprint>'), "
        "qmtgate.remote.install(url, tls_fingerprint='<fingerprint>')",
        err=True,
    )


@app.command()
def doctor(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    skip_import: Annotated[bool, typer.Option(help="Do not try to import xtquant.")] = False,
) -> None:
    """Check Python, xtquant, QMT, clock, port and security; print fixes in English and Chinese."""
    from qmtgate.ops.doctor import exit_code, render, run_checks

    try:
        settings = load_settings(config)
    except (ConfigFileError, ValueError) as e:
        typer.echo(f"qmtgate: invalid settings: {e}", err=True)
        raise typer.Exit(code=2) from e
    checks = run_checks(settings, probe_xtquant=not skip_import)
    typer.echo(render(checks, as_json=as_json))
    raise typer.Exit(code=exit_code(checks))


# -- trading (docs/trading.md) ------------------------------------------------------------------------------

trading_app = typer.Typer(help="Trading lane tools (docs/trading.md).", no_args_is_help=True)
app.add_typer(trading_app, name="trading")


@trading_app.command("audit")
def trading_audit(
    day: Annotated[str | None, typer.Option(help="China-time day YYYY-MM-DD (default: today).")] = None,
    path: Annotated[Path | None, typer.Option(help="Audit database (default: trading.audit_path).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    config: ConfigOption = None,
) -> None:
    """Print one day of the trading audit trail (requests, answers, SDK pushes, refusals)."""
    import datetime as dt

    from qmtgate.source.trading.audit import CST, AuditTrail

    if fmt not in ("jsonl", "csv"):
        typer.echo("qmtgate: --format must be jsonl or csv", err=True)
        raise typer.Exit(code=2)
    try:
        settings = load_settings(config)
        when = dt.date.fromisoformat(day) if day else dt.datetime.now(CST).date()
    except (ConfigFileError, ValueError) as e:
        typer.echo(f"qmtgate: {e}", err=True)
        raise typer.Exit(code=2) from e
    db = path or settings.trading.audit_path
    if not Path(db).is_file():
        typer.echo(f"qmtgate: no audit database at {db}", err=True)
        raise typer.Exit(code=2)
    trail = AuditTrail(db)
    try:
        typer.echo(trail.export_day(when, fmt), nl=False)
    finally:
        trail.close()


def _trading_post(url: str, path: str, api_key: str | None, params: dict | None = None) -> None:
    import httpx

    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        r = httpx.post(f"{url.rstrip('/')}/api/v1/trading/{path}", headers=headers, params=params, timeout=60)
    except httpx.HTTPError as e:
        typer.echo(f"qmtgate: cannot reach the gateway at {url}: {e}", err=True)
        raise typer.Exit(code=1) from e
    typer.echo(r.text)
    if r.status_code != 200:
        raise typer.Exit(code=1)


UrlOption = Annotated[str, typer.Option(help="The gateway's base URL.")]
TradingKeyOption = Annotated[
    str | None,
    typer.Option(
        envvar="QMTGATE_TRADING_KEY", help="A key with the trade and admin scopes (env QMTGATE_TRADING_KEY)."
    ),
]


@trading_app.command("halt")
def trading_halt(
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: TradingKeyOption = None,
    keep_open: Annotated[bool, typer.Option(help="Refuse new orders but do not cancel open ones.")] = False,
) -> None:
    """Kill switch: the gateway refuses new orders and cancels every open one."""
    _trading_post(url, "halt", api_key, {"cancel_open": str(not keep_open).lower()})


@trading_app.command("resume")
def trading_resume(url: UrlOption = "http://127.0.0.1:8000", api_key: TradingKeyOption = None) -> None:
    """Lift the kill switch."""
    _trading_post(url, "resume", api_key)


if __name__ == "__main__":
    app()
