"""The schemathesis run of test_schemathesis.py with auth on: every generated request carries an admin key
(so every operation is reached) and no answer may be a 5xx or undocumented; a few cases also run without
the key and with a read-only key, which must be refused with the documented 401 / 403."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis

from qmtgate.api.app import create_app
from qmtgate.security.keys import generate_key

from .schemathesis_support import CHECKS, fuzz_settings, load_schema
from .sim_support import sim_settings, wait_live
from .support import start_server

ADMIN = generate_key("schemathesis", ["admin"])
READ = generate_key("schemathesis-read", ["read"])


@pytest.fixture(scope="module")
def api_schema() -> Iterator[schemathesis.BaseSchema]:
    settings_ = sim_settings(
        limits={"max_kline_rows": 20_000, "max_history_codes": 50},
        auth={"keys": [ADMIN.record.model_dump(), READ.record.model_dump()]},
        rate_limit={
            "per_key_rate": 10_000,
            "per_key_burst": 10_000,
            "per_address_rate": 10_000,
            "per_address_burst": 10_000,
            # every case is also sent without a key: keep those under the keyless bucket
            "unauthenticated_rate": 10_000,
            "unauthenticated_burst": 10_000,
        },
    )
    server = start_server(create_app(settings_))
    try:
        with httpx.Client(base_url=server.url, timeout=60, headers={"X-API-Key": ADMIN.token}) as client:
            wait_live(client)
        yield load_schema(server.url, headers={"X-API-Key": ADMIN.token})
    finally:
        server.stop()


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@fuzz_settings()
def test_api_with_auth(case: schemathesis.Case) -> None:
    response = case.call(timeout=60, headers={"X-API-Key": ADMIN.token})
    case.validate_response(response, checks=CHECKS)
    if case.path == "/api/v1/health/live":
        return
    anonymous = case.call(timeout=60, headers={"X-API-Key": ""})
    case.validate_response(anonymous, checks=CHECKS)
    assert anonymous.status_code in (400, 401), anonymous.status_code
    if case.method.upper() == "DELETE" and "download" in case.path:  # starting one is read, cancelling admin
        reader = case.call(timeout=60, headers={"X-API-Key": READ.token})
        case.validate_response(reader, checks=CHECKS)
        assert reader.status_code in (400, 403, 422), reader.status_code
