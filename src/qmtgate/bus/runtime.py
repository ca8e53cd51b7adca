"""Wiring of the NATS publisher into the gateway's lifespan (and ``qmtgate serve --nats``)."""

from __future__ import annotations

from typing import Any

from qmtgate.bus.publisher import NatsPublisher
from qmtgate.config import Settings


async def start_nats(settings: Settings, hub: Any) -> NatsPublisher | None:
    """Start publishing when ``nats.url`` is set. Never fails the gateway's start because the bus is
    away: the publisher connects (and reconnects) in the background, buffering meanwhile."""
    if not settings.nats.enabled:
        return None
    if hub is None:
        raise ValueError("nats.url needs the streaming hub")
    publisher = NatsPublisher(hub, settings.nats)
    await publisher.start()
    return publisher
