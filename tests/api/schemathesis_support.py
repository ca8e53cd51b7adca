"""What every schemathesis run over the gateway's OpenAPI spec shares: the checks, the hypothesis settings
and how the schema is loaded (test_schemathesis*.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import DataGenerationMethod
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

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


def fuzz_settings(default_examples: int = 10) -> Callable[[Any], Any]:
    """The hypothesis settings of a run: ``default_examples`` per operation (raise it for a deeper local
    run with QMTGATE_SCHEMATHESIS_EXAMPLES=200), derandomized so CI sees the same cases every time."""
    return settings(
        max_examples=int(os.environ.get("QMTGATE_SCHEMATHESIS_EXAMPLES", str(default_examples))),
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def load_schema(base_url: str, **kwargs: Any) -> schemathesis.BaseSchema:
    """The gateway's published spec, with valid and invalid inputs generated for every operation."""
    return schemathesis.from_uri(
        f"{base_url}/openapi.json",
        data_generation_methods=[DataGenerationMethod.positive, DataGenerationMethod.negative],
        **kwargs,
    )
