"""Wiring of the Hikyuu feed into the gateway's lifespan (``[hikyuu] enabled`` / ``qmtgate serve --hikyuu``)."""

from __future__ import annotations

from typing import Any

from qmtgate.config import Settings
from qmtgate.hikyuu.publisher import HikyuuPublisher


async def start_hikyuu(
    settings: Settings, source: Any, services: Any, metrics: Any
) -> HikyuuPublisher | None:
    """Start the publisher when enabled (None otherwise); it needs the streaming hub."""
    if not settings.hikyuu.enabled:
        return None
    if services.hub is None:
        raise ValueError("hikyuu.enabled needs the streaming hub")
    calendar = getattr(services, "calendar", None)
    publisher = HikyuuPublisher(
        services.hub,
        source,
        settings.hikyuu,
        registry=metrics.registry if metrics is not None else None,
        is_trading_day=calendar.is_trading_day if calendar is not None else None,
    )
    await publisher.start()
    return publisher
