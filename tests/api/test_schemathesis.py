"""Property-based run over the published OpenAPI spec (schemathesis), against the real server on the sim.

For every operation schemathesis sends documented examples and generated valid and invalid inputs, and
checks that no answer is a 5xx, that every status code and content type is documented, and that JSON bodies
match their declared schemas (the error envelope included). The row limit is lowered so that generated
requests stay cheap; the limit itself is part of what is tested (422 too_large).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis

from qmtgate.api.app import create_app

from .schemathesis_support import CHECKS, fuzz_settings, load_schema
from .sim_support import sim_settings, wait_live
from .support import start_server


@pytest.fixture(scope="module")
def api_schema() -> Iterator[schemathesis.BaseSchema]:
    settings_ = sim_settings(limits={"max_kline_rows": 20_000, "max_history_codes": 50})
    server = start_server(create_app(settings_))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            wait_live(client)
        yield load_schema(server.url)
    finally:
        server.stop()


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@fuzz_settings()
def test_api(case: schemathesis.Case) -> None:
    response = case.call(timeout=60)
    case.validate_response(response, checks=CHECKS)
