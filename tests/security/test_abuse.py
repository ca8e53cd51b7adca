"""Lockout and keyless floods (issue #17 item 10): a good key does not reset the bad-key count, requests
without a valid key are rate limited per address, and their access-log records are sampled."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from qmtgate.ops.logs import ACCESS_LOGGER
from qmtgate.security.lockout import Lockout
from qmtgate.security.refusal_log import RefusalSampler

from .support import Keys, auth_app, header, make_keys

CAPS = "/api/v1/capabilities"
BAD = {"X-API-Key": "qg_00000000_nope"}


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


def test_nine_bad_one_good_repeated_locks_the_address(keys: Keys) -> None:
    app = auth_app(keys, auth={"lockout_failures": 10, "lockout_window": 60, "lockout_seconds": 60})
    statuses: list[int] = []
    with TestClient(app, raise_server_exceptions=False) as c:
        for _ in range(20):
            for _ in range(9):
                statuses.append(c.get(CAPS, headers=BAD).status_code)
            good = c.get(CAPS, headers=header(keys.admin))
            statuses.append(good.status_code)
            if good.status_code == 429:
                assert good.json()["error"]["code"] == "locked_out"
                break
        else:
            pytest.fail(f"never locked out: {statuses}")
    assert len(statuses) <= 20  # locked by the second round: the good key did not reset the count


def test_lockout_counts_failures_within_the_window_only() -> None:
    now = [0.0]
    lockout = Lockout(failures=3, window=10, duration=60, clock=lambda: now[0])
    assert not lockout.failure("a")
    assert not lockout.failure("a")
    now[0] = 11.0  # both expired
    assert not lockout.failure("a")
    assert not lockout.failure("a")
    assert lockout.failure("a")
    assert lockout.locked_for("a") == pytest.approx(60)


def test_keyless_flood_is_rate_limited_and_sampled_in_the_log(
    keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    app = auth_app(
        keys,
        rate_limit={"unauthenticated_rate": 1, "unauthenticated_burst": 10},
        http={"refused_log_per_minute": 5},
    )
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    with TestClient(app, raise_server_exceptions=False) as c:
        answers = [c.get(CAPS) for _ in range(200)]
        # wrong keys take from the same bucket
        wrong = c.get(CAPS, headers=BAD)
        # a good key from the same address is not held back by the outsider's bucket
        good = c.get(CAPS, headers=header(keys.read))
    statuses = [a.status_code for a in answers]
    assert statuses[:10] == [401] * 10
    assert statuses.count(429) >= 185  # refill is 1/s; the loop takes a few seconds at most
    limited = next(a for a in answers if a.status_code == 429)
    assert limited.json()["error"]["code"] == "rate_limited"
    assert limited.json()["error"]["details"]["limit"] == "unauthenticated"
    assert int(limited.headers["Retry-After"]) >= 1
    assert wrong.status_code == 429
    assert good.status_code == 200
    records = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    refused = [r for r in records if r.status in (401, 429)]
    assert len(refused) <= 10  # 201 refusals, a handful of records (5 a minute + refill)
    assert any(r.status == 200 for r in records)  # authenticated requests are always logged


def test_refusal_sampler_counts_what_it_suppresses() -> None:
    now = [0.0]
    sampler = RefusalSampler(per_minute=2, clock=lambda: now[0])
    assert sampler.admit("a") == 0
    assert sampler.admit("a") == 0
    assert sampler.admit("a") is None
    assert sampler.admit("a") is None
    assert sampler.admit("b") == 0  # per address
    now[0] = 30.0  # one token back
    assert sampler.admit("a") == 2  # logged, with the two suppressed before it
    assert sampler.total_suppressed == 2
