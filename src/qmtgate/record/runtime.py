"""What a running qmtgate process holds (:class:`Runtime`), and the wiring of recording into the gateway's
lifespan: the in-gateway recorder and the recording reader."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qmtgate.config import Settings
from qmtgate.record.recorder import Recorder, RecordTarget
from qmtgate.record.store import RecordingReader
from qmtgate.record.writer import RecordWriter

if TYPE_CHECKING:
    from qmtgate.hub.stream import StreamHub
    from qmtgate.record.remote import GatewayFeed, GatewaySource
    from qmtgate.source.base import MarketSource

logger = logging.getLogger(__name__)


class Runtime:
    """The parts of a running qmtgate process, declared and typed in one place.

    ``qmtgate record`` builds one (``record/cli.py:_record``: the source, a hub and the recorder); the
    gateway's lifespan builds its larger form, :class:`qmtgate.api.runtime.GatewayRuntime`, which IS the
    app's ``app.state`` (so ``request.app.state.hub`` is typed, and no part is an undeclared attribute).
    A part is None until the lifespan (or the command) has started it, and again once it stopped.
    """

    settings: Settings
    #: the market source: a MarketSource in the gateway; ``record --url``: the remote gateway's stand-in
    source: MarketSource | GatewaySource | None
    #: the streaming hub; ``record --url``: the remote gateway's stream (record.remote.GatewayFeed)
    hub: StreamHub | GatewayFeed | None
    recorder: Recorder | None  # the recorder, when recording
    recording: RecordingReader | None  # the reader behind /api/v1/recorded

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.source = None
        self.hub = None
        self.recorder = None
        self.recording = None


@dataclass
class Recording:
    """What the app holds: the recorder (when recording) and the reader behind /api/v1/recorded."""

    recorder: Recorder | None
    reader: RecordingReader | None

    async def stop(self) -> None:
        if self.recorder is not None:
            await self.recorder.stop()
        if self.reader is not None and self.recorder is None:
            with contextlib.suppress(Exception):
                self.reader.close()


async def start_recording(settings: Settings, source: Any, hub: Any) -> Recording:
    """Start the recorder when ``recorder.enabled``; open a reader over the recording the gateway has."""
    rec = settings.recorder
    if rec.enabled:
        if rec.db is None or hub is None:
            raise ValueError("recorder.enabled needs recorder.db (and the streaming hub)")
        writer = RecordWriter(
            rec.db,
            create=rec.create,
            batch_rows=rec.batch_rows,
            flush_seconds=rec.flush_seconds,
            queue_batches=rec.queue_batches,
        )
        target = RecordTarget(tuple(rec.markets), tuple(rec.sectors), tuple(rec.codes))
        recorder = Recorder(hub, source, writer, target, backfill=rec.backfill)
        await recorder.start()
        reader = RecordingReader(writer.path, writer.cursor)
        return Recording(recorder, reader)
    path = settings.replay.db if settings.source.value == "replay" else rec.db
    if path is None:
        return Recording(None, None)
    try:
        return Recording(None, RecordingReader.open(path))
    except Exception as e:  # the gateway serves without /recorded rather than not at all
        logger.warning("recorded data unavailable: %s", e)
        return Recording(None, None)
