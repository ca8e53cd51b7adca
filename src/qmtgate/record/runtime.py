"""Wiring of recording into the gateway's lifespan: the in-gateway recorder and the recording reader."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from qmtgate.config import Settings
from qmtgate.record.recorder import Recorder, RecordTarget
from qmtgate.record.store import RecordingReader
from qmtgate.record.writer import RecordWriter

logger = logging.getLogger(__name__)


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
