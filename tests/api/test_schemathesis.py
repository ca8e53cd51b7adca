"""Property-based run over the published OpenAPI spec (schemathesis), against the real server on the sim.

For every operation schemathesis sends documented examples and generated valid and invalid inputs, and
checks that no answer is a 5xx, that every status code and content type is documented, and that JSON bodies
match their declared schemas (the error envelope included). The row limit is lowered so that generated
requests stay cheap; the limit itself is part of what is tested (422 too_large).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import DataGenerationMethod
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from qmtgate.api.app import create_app

from .sim_support import sim_settings, wait_live
from .support import start_server

# FastAPI publishes OpenAPI 3.1, which schemathesis 3.x supports behind an experimental switch.
schemathesis.experimental.OPEN_API_3_1.enable()


def not_a_server_failure(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """``not_a_server_error``, except the designed 501 ``unsupported`` (a feature the source does not serve,
    e.g. qmt-bridge's Level-2 methods): documented, in the envelope, and not a failure of the server."""
    if response.status_code == 501:
        body = response.json()
        if isinstance(body, dict) and body.get("error", {}).get("code") == "unsupported":
            return None
    return not_a_server_error(ctx, response, case)


CHECKS = (
    not_a_server_failure,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)


@pytest.fixture(scope="module")
def api_schema() -> Iterator[schemathesis.BaseSchema]:
    settings_ = sim_settings(limits={"max_kline_rows": 20_000, "max_history_codes": 50})
    server = start_server(create_app(settings_))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            wait_live(client)
        yield schemathesis.from_uri(
            f"{server.url}/openapi.json",
            data_generation_methods=[DataGenerationMethod.positive, DataGenerationMethod.negative],
        )
    finally:
        server.stop()


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@settings(
    # Raise for a deeper local run: QMTGATE_SCHEMATHESIS_EXAMPLES=200 pytest tests/api/test_schemathesis.py
    max_examples=int(os.environ.get("QMTGATE_SCHEMATHESIS_EXAMPLES", "10")),
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api(case: schemathesis.Case) -> None:
    response = case.call(timeout=60)
    case.validate_response(response, checks=CHECKS)
