"""Apps with auth on over the fake xtdata, and keys of each scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from api.support import FakeXtdata, make_source
from qmtgate.api.app import create_app
from qmtgate.config import Settings
from qmtgate.security.keys import NewKey, generate_key


@dataclass
class Keys:
    read: NewKey
    stream: NewKey
    admin: NewKey
    quota: NewKey  # read + stream with small quotas

    def records(self) -> list[dict[str, Any]]:
        return [k.record.model_dump() for k in (self.read, self.stream, self.admin, self.quota)]


def make_keys() -> Keys:
    return Keys(
        read=generate_key("reader", ["read"]),
        stream=generate_key("streamer", ["stream"]),
        admin=generate_key("operator", ["admin"]),
        quota=generate_key(
            "small", ["read", "stream"], max_batch_codes=2, max_stream_codes=1, rate=2, burst=3
        ),
    )


def auth_app(keys: Keys, fake: FakeXtdata | None = None, **overrides: Any) -> FastAPI:
    settings = Settings(source="sim", auth={"keys": keys.records(), **overrides.pop("auth", {})}, **overrides)
    return create_app(settings, make_source(fake or FakeXtdata()))


def header(key: NewKey) -> dict[str, str]:
    return {"X-API-Key": key.token}
