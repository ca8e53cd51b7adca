"""API keys: generation, hashing, the JSON key file, and the in-memory store the server checks against.

A key is ``qg_<id>_<secret>``: ``id`` is 8 hex digits, public (logged, listed), and finds the stored record
in O(1); ``secret`` is 32 random bytes (base64url). Only ``sha256(salt || secret)`` is stored. A fast hash is
right here: the secret has 256 bits of entropy, so there is nothing for a slow KDF (scrypt, bcrypt) to
protect against, and the hash runs on every request. Digests are compared with :func:`hmac.compare_digest`;
an unknown id still costs one hash and one comparison so that timing does not tell ids apart.

The key file (``auth.keys_file``) is owned by ``qmtgate keys``; the server re-reads it when its modification
time changes, so ``qmtgate keys revoke`` takes effect without a restart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qmtgate.config import ApiKeySettings

logger = logging.getLogger(__name__)

KEY_PREFIX = "qg"
SCOPES: tuple[str, ...] = ("read", "stream", "admin", "trade")
KEY_FILE_VERSION = 1
_DUMMY_SALT = bytes(16)


class KeyFileError(ValueError):
    """The key file cannot be read or has the wrong shape."""


@dataclass(frozen=True)
class NewKey:
    """A freshly created key: ``token`` is shown once and never stored."""

    token: str
    record: ApiKeySettings


def hash_secret(secret: str, salt_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt_hex) + secret.encode("utf-8")).hexdigest()


def generate_key(
    name: str = "",
    scopes: Sequence[str] = ("read",),
    *,
    existing_ids: Iterable[str] = (),
    **quotas: Any,
) -> NewKey:
    """Make a new random key and its stored record; ``quotas`` are ApiKeySettings quota fields."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ValueError(f"unknown scopes {bad}; choose from {', '.join(SCOPES)}")
    taken = set(existing_ids)
    key_id = secrets.token_hex(4)
    while key_id in taken:
        key_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    record = ApiKeySettings(
        id=key_id,
        name=name,
        scopes=tuple(dict.fromkeys(scopes)),  # type: ignore[arg-type]
        salt=salt,
        hash=hash_secret(secret, salt),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **{k: v for k, v in quotas.items() if v is not None},
    )
    return NewKey(f"{KEY_PREFIX}_{key_id}_{secret}", record)


def split_token(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, else None."""
    prefix, sep, rest = token.partition("_")
    if prefix != KEY_PREFIX or not sep:
        return None
    key_id, sep, secret = rest.partition("_")
    if not sep or not key_id or not secret or len(token) > 200:
        return None
    return key_id, secret


# -- the key file ---------------------------------------------------------------------------------------


def read_key_file(path: Path) -> list[ApiKeySettings]:
    """Records of a key file; a missing file is an empty list (auth stays on: nothing is accepted)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e}") from e
    try:
        data = json.loads(text)
        return [ApiKeySettings.model_validate(item) for item in data["keys"]]
    except (ValueError, KeyError, TypeError) as e:
        raise KeyFileError(f"key file {path} is not a qmtgate key file: {e}") from e


def write_key_file(path: Path, records: Sequence[ApiKeySettings]) -> None:
    """Replace the key file atomically (write a sibling, then rename) so the server never reads half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "version": KEY_FILE_VERSION,
        "keys": [r.model_dump(mode="json", exclude_none=True) for r in records],
    }
    tmp = path.with_name(path.name + ".tmp")
    # owner-only from its creation (0600 on POSIX; on Windows the folder's ACL applies and mode is ignored)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    if os.name != "nt":
        os.chmod(tmp, 0o600)  # a stale .tmp from a crash keeps its old mode through O_TRUNC
    os.replace(tmp, path)


def revoke(records: Sequence[ApiKeySettings], key_id: str) -> list[ApiKeySettings]:
    """Records with ``key_id`` marked revoked (kept, so `keys list` still shows who it was)."""
    if not any(r.id == key_id for r in records):
        raise KeyError(key_id)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return [r.model_copy(update={"revoked": now}) if r.id == key_id and not r.revoked else r for r in records]


# -- the store ------------------------------------------------------------------------------------------


class KeyStore:
    """The keys the server accepts: inline records plus the key file, re-read when the file changes."""

    def __init__(
        self,
        inline: Sequence[ApiKeySettings] = (),
        keys_file: Path | None = None,
        *,
        reload_interval: float = 2.0,
    ) -> None:
        self._inline = list(inline)
        self._file = keys_file
        self._reload_interval = reload_interval
        self._lock = threading.Lock()
        self._by_id: dict[str, ApiKeySettings] = {}
        self._mtime: float | None = None
        self._checked = 0.0
        self._load(force=True)

    @property
    def records(self) -> list[ApiKeySettings]:
        self._maybe_reload()
        return list(self._by_id.values())

    def active_count(self) -> int:
        return sum(1 for r in self.records if not r.revoked)

    def authenticate(self, token: str) -> ApiKeySettings | None:
        """The record of a valid, unrevoked key, else None (constant time in the secret)."""
        self._maybe_reload()
        parts = split_token(token)
        key_id, secret = parts if parts is not None else ("", token)
        record = self._by_id.get(key_id)
        if record is None:
            hmac.compare_digest(hash_secret(secret, _DUMMY_SALT.hex()), "0" * 64)
            return None
        if not hmac.compare_digest(hash_secret(secret, record.salt), record.hash):
            return None
        return None if record.revoked else record

    def current(self, key_id: str) -> ApiKeySettings | None:
        """The record of ``key_id`` as it is now (None when unknown or revoked since): for connections
        that authenticated once and act later (orders over a WebSocket)."""
        self._maybe_reload()
        record = self._by_id.get(key_id)
        return None if record is None or record.revoked else record

    def _maybe_reload(self) -> None:
        if self._file is None:
            return
        now = time.monotonic()
        if now - self._checked < self._reload_interval:
            return
        self._load(force=False)

    def _load(self, *, force: bool) -> None:
        with self._lock:
            self._checked = time.monotonic()
            from_file: list[ApiKeySettings] = []
            if self._file is not None:
                try:
                    mtime: float | None = self._file.stat().st_mtime
                except OSError:
                    mtime = None
                if not force and mtime == self._mtime:
                    return
                try:
                    from_file = read_key_file(self._file)
                except KeyFileError as e:
                    if force:  # at start-up: refuse to serve rather than guess
                        raise
                    # Keep the keys we had: a half-edited file must not lock everyone out or let anyone in.
                    logger.error("%s; keeping the previous keys", e)
                    return
                if not force:
                    logger.info("key file %s changed: %d keys", self._file, len(from_file))
                self._mtime = mtime
            self._by_id = {r.id: r for r in [*self._inline, *from_file]}
