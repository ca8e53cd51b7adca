"""Keys, the key file, lockout and token buckets, without a server."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from qmtgate.security.guard import header_key, url_key_params
from qmtgate.security.keys import KeyStore, generate_key, read_key_file, revoke, split_token, write_key_file
from qmtgate.security.lockout import Lockout
from qmtgate.security.ratelimit import RateLimiter, retry_after_header


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_stored_only_as_a_salted_hash_and_authenticates() -> None:
    new = generate_key("mac", ["read", "stream"])
    key_id, secret = split_token(new.token) or ("", "")
    assert key_id == new.record.id and len(secret) >= 40
    assert secret not in new.record.model_dump_json()
    store = KeyStore([new.record])
    assert store.authenticate(new.token) == new.record
    assert store.authenticate(new.token[:-1] + ("A" if new.token[-1] != "A" else "B")) is None
    assert store.authenticate(f"qg_{new.record.id}_") is None
    assert store.authenticate("garbage") is None
    assert store.authenticate(f"qg_ffffffff_{secret}") is None  # right secret, wrong id


def test_same_secret_hashes_differently_per_key() -> None:
    a, b = generate_key("a"), generate_key("b")
    assert a.record.salt != b.record.salt and a.record.hash != b.record.hash


def test_unknown_scope_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown scopes"):
        generate_key("x", ["write"])


def test_revocation_in_the_key_file_reaches_a_running_store(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    new = generate_key("mac", ["read"])
    write_key_file(path, [new.record])
    store = KeyStore([], path, reload_interval=0.0)
    assert store.authenticate(new.token) is not None
    write_key_file(path, revoke(read_key_file(path), new.record.id))
    os.utime(path, (time.time() + 5, time.time() + 5))  # make the change visible on coarse mtime clocks
    assert store.authenticate(new.token) is None
    assert read_key_file(path)[0].revoked is not None
    assert store.active_count() == 0


def test_a_broken_key_file_keeps_the_previous_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    new = generate_key("mac", ["read"])
    write_key_file(path, [new.record])
    store = KeyStore([], path, reload_interval=0.0)
    path.write_text("{ half written", encoding="utf-8")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert store.authenticate(new.token) is not None


@pytest.mark.parametrize(
    ("query", "found"),
    [
        (b"", []),
        (b"codes=600000.SH", []),
        (b"api_key=abc", ["api_key"]),
        (b"codes=1&TOKEN=x", ["token"]),
        (b"key=&x=1", ["key"]),
        (b"keyboard=1", []),
    ],
)
def test_credential_like_query_parameters_are_found(query: bytes, found: list[str]) -> None:
    assert url_key_params(query) == found


def test_header_key_reads_x_api_key_and_bearer() -> None:
    assert header_key([(b"x-api-key", b"qg_a_b")]) == "qg_a_b"
    assert header_key([(b"authorization", b"Bearer qg_a_b")]) == "qg_a_b"
    assert header_key([(b"authorization", b"Basic Zm9vOmJhcg==")]) is None
    assert header_key([]) is None


def test_token_bucket_empties_and_refills() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("k")
    assert wait == pytest.approx(0.5)
    assert retry_after_header(wait) == "1"
    assert limiter.take("other") == 0.0  # buckets are per key
    clock.now += 0.5
    assert limiter.take("k") == 0.0


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_buckets=100)
    for i in range(1000):
        limiter.take(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter._buckets) == 100


def test_lockout_after_repeated_failures_then_expiry() -> None:
    clock = FakeClock()
    lockout = Lockout(failures=3, window=60, duration=300, clock=clock)
    assert not lockout.failure("1.2.3.4")
    assert not lockout.failure("1.2.3.4")
    assert lockout.locked_for("1.2.3.4") == 0.0
    assert lockout.failure("1.2.3.4")
    assert lockout.locked_for("1.2.3.4") == pytest.approx(300)
    assert lockout.locked_for("5.6.7.8") == 0.0
    clock.now += 301
    assert lockout.locked_for("1.2.3.4") == 0.0


def test_failures_outside_the_window_do_not_add_up() -> None:
    clock = FakeClock()
    lockout = Lockout(failures=3, window=10, duration=300, clock=clock)
    for _ in range(5):
        assert not lockout.failure("a")
        assert not lockout.failure("a")
        clock.now += 11
