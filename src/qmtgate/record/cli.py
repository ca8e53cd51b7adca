"""``qmtgate record`` and ``qmtgate export`` (registered by :mod:`qmtgate.cli`); heavy imports are lazy."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from qmtgate.config import ConfigFileError, SimClock, SourceKind, load_settings

logger = logging.getLogger("qmtgate.record")


def check_replay_settings(settings: Any) -> None:
    """``serve --source replay`` needs an existing recording and a valid date if one is given (ValueError
    says what is wrong); without a date the newest recorded day is replayed."""
    db = settings.replay.db
    if db is None:
        raise ValueError("--source replay needs --db FILE (a recording made by `qmtgate record`)")
    if not Path(db).is_file():
        raise ValueError(f"recording database {db} does not exist")
    if settings.replay.date:
        settings.replay.day()


def _split(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(out)


def record_command(
    db: Annotated[Path, typer.Option("--db", help="Recording database (DuckDB file).")],
    create: Annotated[
        bool, typer.Option("--create", help="Create --db if it does not exist (otherwise it must exist).")
    ] = False,
    markets: Annotated[
        list[str] | None,
        typer.Option(help="Whole markets: SH,SZ,BJ (default all three when nothing is given)."),
    ] = None,
    sectors: Annotated[list[str] | None, typer.Option(help="Sectors, e.g. 沪深300 (repeatable).")] = None,
    codes: Annotated[list[str] | None, typer.Option(help="Codes, comma-separated or repeated.")] = None,
    source: Annotated[
        SourceKind | None, typer.Option(help="Market-data source: sim, xtquant or auto.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file.")] = None,
    sim_seed: Annotated[int | None, typer.Option(help="Simulator seed.")] = None,
    sim_speed: Annotated[float | None, typer.Option(help="Simulator speed (simulated s per wall s).")] = None,
    sim_clock: Annotated[SimClock | None, typer.Option(help="Simulator clock: live, real, replay.")] = None,
    sim_start: Annotated[str | None, typer.Option(help="Simulator replay start YYYYMMDD[HHMMSS].")] = None,
    backfill: Annotated[
        bool, typer.Option("--backfill/--no-backfill", help="Fetch today's missed ticks on start.")
    ] = True,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many wall-clock seconds (default: until Ctrl+C).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="critical|error|warning|info|debug.")] = "info",
    status: Annotated[
        bool,
        typer.Option(
            "--status", help="Print what each recorded day holds and is known to miss, then exit (read only)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --status: JSON instead of text.")] = False,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Record a remote gateway's stream (e.g. http://win-box:8000) instead of a local source.",
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="QMTGATE_API_KEY", help="Key for --url (read,stream).")
    ] = None,
    nats: Annotated[
        str | None,
        typer.Option(
            "--nats",
            help="With --url: take the live ticks from this NATS bus (the gateway publishes with --nats); "
            "reference data and backfill still come from --url (docs/nats.md).",
        ),
    ] = None,
    nats_id: Annotated[
        str | None, typer.Option("--nats-id", help="The publishing gateway's id on the bus (with --nats).")
    ] = None,
) -> None:
    """Record ticks and 1m bars into a DuckDB file (docs/recording.md)."""
    from qmtgate.record.recorder import RecordTarget
    from qmtgate.record.schema import RecordingError
    from qmtgate.record.writer import RecordWriter

    if status:
        _print_status(db, as_json)
        return
    if nats and not (url and nats_id):
        typer.echo("qmtgate: --nats needs --url (reference data, backfill) and --nats-id", err=True)
        raise typer.Exit(code=2)

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(
            config,
            source=source,
            sim={"seed": sim_seed, "speed": sim_speed, "clock": sim_clock, "start": sim_start},
        )
        target = RecordTarget(_split(markets), _split(sectors), _split(codes))
    except (ConfigFileError, ValueError) as e:
        if "nothing to record" not in str(e):
            typer.echo(f"qmtgate: invalid settings: {e}", err=True)
            raise typer.Exit(code=2) from e
        target = RecordTarget(("SH", "SZ", "BJ"))
    try:  # the database first: a wrong path fails before any market connection, and creates nothing
        writer = RecordWriter(
            db,
            create=create,
            batch_rows=settings.recorder.batch_rows,
            flush_seconds=settings.recorder.flush_seconds,
            queue_batches=settings.recorder.queue_batches,
        )
    except RecordingError as e:
        typer.echo(f"qmtgate: {e}", err=True)
        raise typer.Exit(code=2) from e
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: _record's finally stops and flushes
        asyncio.run(_record(settings, writer, target, backfill, duration, url, api_key, nats, nats_id))


def _print_status(db: Path, as_json: bool) -> None:
    """``record --status``: per day, ticks, codes, bars, and the holes the completeness record lists."""
    import json

    from qmtgate.record.completeness import report
    from qmtgate.record.schema import RecordingError
    from qmtgate.record.store import RecordingReader

    try:
        reader = RecordingReader.open(db)
    except RecordingError as e:
        typer.echo(f"qmtgate: {e}", err=True)
        raise typer.Exit(code=2) from e
    except Exception as e:  # DuckDB refuses a second opener while a recorder writes the file
        typer.echo(
            f"qmtgate: cannot read {db} ({e}); while a recorder writes it, ask the gateway: "
            "GET /api/v1/recorded/completeness",
            err=True,
        )
        raise typer.Exit(code=2) from e
    try:
        days = {str(r["date"]): r for r in reader.days().to_pylist()}
        rows = report(reader.cursor())
    finally:
        reader.close()
    for row in rows:
        row.update({k: days.get(row["date"], {}).get(k) for k in ("ticks", "codes", "bars")})
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    if not rows:
        typer.echo(f"{db}: no recorded day")
    for row in rows:
        head = (
            f"{row['date']}: {row['ticks'] or 0} ticks, {row['codes'] or 0} codes, {row['bars'] or 0} 1m bars"
        )
        if not row["known"]:
            typer.echo(f"{head}; completeness unknown (recorded before completeness was kept)")
            continue
        if row["complete"]:
            typer.echo(f"{head}; complete for {', '.join(_few(row['scopes']))}")
            continue
        typer.echo(f"{head}; {len(row['holes'])} hole(s), {row['missing_seconds']:g} s of session missing:")
        for hole in row["holes"]:
            typer.echo(
                f"  {hole['start']} .. {hole['end']} ({hole['seconds']:g} s) {', '.join(_few(hole['scopes']))}"
            )


def _few(items: list[str], limit: int = 6) -> list[str]:
    return items if len(items) <= limit else [*items[:limit], f"... ({len(items)} in all)"]


async def _record(
    settings: Any,
    writer: Any,
    target: Any,
    backfill: bool,
    duration: float | None,
    url: str | None = None,
    api_key: str | None = None,
    nats: str | None = None,
    nats_id: str | None = None,
) -> None:
    from qmtgate.ops.gc_tuning import freeze_when_live
    from qmtgate.record.recorder import Recorder
    from qmtgate.record.runtime import Runtime

    if settings.quotes.mmap_threshold:  # as the gateway does: freed big buffers go back to the OS
        from qmtgate.ops.allocator import pin_mmap_threshold

        pin_mmap_threshold(settings.quotes.mmap_threshold)
    source: Any
    hub: Any
    if url:  # a remote gateway's stream, through qmtgate.client (record.remote)
        from qmtgate.client.aio import AsyncClient
        from qmtgate.record.remote import GatewayFeed, GatewaySource

        client = AsyncClient(url, api_key=api_key, timeout=60.0)
        source = GatewaySource(client)
        hub = GatewayFeed(client, source, nats=nats, gateway=nats_id or "*")
        if nats:
            logger.info(
                "recording gateway %s from the NATS bus %s (reference data from %s)", nats_id, nats, url
            )
        else:
            logger.info("recording the stream of the gateway at %s", url)
    else:
        from qmtgate.hub.stream import StreamHub
        from qmtgate.source.factory import open_source

        source = await open_source(settings)
        # a standalone hub has one client, the recorder: no per-client code limit applies to it
        config = settings.stream.hub_config()
        config.max_codes_per_client = 1_000_000
        hub = StreamHub(source, config, keep_raw=False)  # nobody asks it for xtquant dicts
    await hub.start()
    runtime = Runtime(settings)  # the parts of this process, typed (record/runtime.py)
    runtime.source, runtime.hub = source, hub
    runtime.recorder = recorder = Recorder(hub, source, writer, target, backfill=backfill)
    try:
        await recorder.start()
        if settings.quotes.gc_freeze:  # as the gateway does: no full collection walks the start-up objects
            await freeze_when_live(lambda: True)
        stop = asyncio.Event()
        _on_sigterm(stop)
        began = time.monotonic()
        while duration is None or time.monotonic() - began < duration:
            wait = 10.0 if duration is None else min(10.0, max(0.0, duration - (time.monotonic() - began)))
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                logger.info("SIGTERM: stopping (final flush and checkpoint)")
                break
            w = writer.stats
            logger.info(
                "recorded %d ticks (%d duplicates skipped), %d bars, backlog %d, last tick %s",
                w.rows_written,
                w.duplicates_skipped,
                w.bars_written,
                recorder.backlog(),
                _cst(w.last_tick_ts),
            )
    finally:
        await recorder.stop()
        await hub.stop()
        await source.stop()
        runtime.recorder = runtime.hub = runtime.source = None


def _on_sigterm(stop: asyncio.Event) -> None:
    """SIGTERM ends a recording like Ctrl+C (the caller's ``finally`` stores, claims and checkpoints).

    The event loop's handler where the loop supports it (POSIX); else ``signal.signal`` (Windows, whose
    Proactor loop has no ``add_signal_handler``), handing over to the loop thread-safely."""
    import signal

    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    except (NotImplementedError, RuntimeError, AttributeError):
        with contextlib.suppress(ValueError, OSError, AttributeError):  # not the main thread
            signal.signal(signal.SIGTERM, lambda *_: loop.call_soon_threadsafe(stop.set))


def _cst(ts: int | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts / 1000, dt.timezone(dt.timedelta(hours=8))).isoformat(
        timespec="seconds"
    )


def export_command(
    db: Annotated[Path, typer.Option("--db", help="Recording database to export (read only).")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (created if needed).")],
    date: Annotated[
        list[str] | None, typer.Option(help="Only these sessions (YYYYMMDD or YYYY-MM-DD; repeatable).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace days already exported under --out.")] = False,
) -> None:
    """Export a recording as date-partitioned Parquet (OUT/ticks/date=YYYY-MM-DD/, OUT/bars/...)."""
    from qmtgate.record.export import export_parquet
    from qmtgate.record.schema import RecordingError

    try:
        days = [_day(text) for text in _split(date)]
        counts = export_parquet(db, out, days, overwrite=overwrite)
    except (RecordingError, ValueError) as e:
        typer.echo(f"qmtgate: {e}", err=True)
        raise typer.Exit(code=2) from e
    typer.echo(f"exported {counts['ticks']} ticks and {counts['bars']} bars to {out}")


def _day(text: str) -> dt.date:
    digits = text.replace("-", "")
    if len(digits) != 8 or not digits.isdigit():
        raise ValueError(f"invalid date {text!r}; expected YYYYMMDD or YYYY-MM-DD")
    return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
