from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI, Query
from fastapi.testclient import TestClient

from qmtgate import errors
from qmtgate.api.app import create_app
from qmtgate.config import Settings

from .support import FakeXtdata, make_source

probe = APIRouter(prefix="/probe")


@probe.get("/typed")
async def typed(n: int = Query(..., ge=1), period: str = Query("1d")) -> dict[str, int]:
    return {"n": n}


@probe.get("/raise/{name}")
async def raise_error(name: str) -> None:
    cls = getattr(errors, name)
    raise cls(f"{name} happened", {"why": "test"})


@probe.get("/boom")
async def boom() -> None:
    secret = "db-password-123"
    raise RuntimeError(f"internal detail {secret}")


@probe.get("/nan")
async def nan() -> dict[str, object]:
    return {"source": "simulated", "value": math.nan, "inf": math.inf, "ok": 1.5}


@pytest.fixture
def client(settings: Settings, fake: FakeXtdata) -> Iterator[TestClient]:
    app: FastAPI = create_app(settings, make_source(fake))
    app.include_router(probe)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_validation_errors_use_the_envelope(client: TestClient) -> None:
    response = client.get("/probe/typed", params={"n": "abc"})
    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["message"] == "request validation failed: invalid 'n'"
    (detail,) = body["error"]["details"]
    assert detail["loc"] == ["query", "n"] and detail["type"] == "int_parsing"
    assert "input" not in detail  # client data is not echoed back

    missing = client.get("/probe/typed").json()["error"]["details"]
    assert missing[0]["type"] == "missing"


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("BadRequest", 400, "bad_request"),
        ("InvalidCode", 422, "invalid_code"),
        ("AmbiguousCode", 422, "ambiguous_code"),
        ("InvalidPeriod", 422, "invalid_period"),
        ("InvalidDate", 422, "invalid_date"),
        ("InvalidField", 422, "invalid_field"),
        ("TooLarge", 422, "too_large"),
        ("UnknownCode", 404, "unknown_code"),
        ("NotFound", 404, "not_found"),
        ("NotAcceptable", 406, "not_acceptable"),
        ("RateLimited", 429, "rate_limited"),
        ("Unsupported", 501, "unsupported"),
        ("SourceError", 502, "source_error"),
        ("SourceUnavailable", 503, "source_unavailable"),
        ("SourceBusy", 503, "source_busy"),
        ("SourceTimeout", 504, "source_timeout"),
    ],
)
def test_typed_errors_map_to_status_and_stable_code(
    client: TestClient, name: str, status: int, code: str
) -> None:
    response = client.get(f"/probe/raise/{name}")
    assert response.status_code == status
    assert response.json() == {
        "error": {"code": code, "message": f"{name} happened", "details": {"why": "test"}}
    }
    assert response.headers["x-qmtgate-source"] == "simulated"


def test_retryable_errors_carry_retry_after(client: TestClient) -> None:
    assert client.get("/probe/raise/SourceBusy").headers["retry-after"] == "1"
    assert "retry-after" not in client.get("/probe/raise/BadRequest").headers


def test_unexpected_exceptions_never_leak(client: TestClient) -> None:
    response = client.get("/probe/boom")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "internal server error", "details": None}
    }
    for leak in ("Traceback", "RuntimeError", "db-password-123", "internal detail"):
        assert leak not in response.text


def test_unknown_route_and_method_use_the_envelope(client: TestClient) -> None:
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    response = client.post("/api/v1/health/live")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_json_answers_turn_nan_into_null(client: TestClient) -> None:
    response = client.get("/probe/nan")
    assert response.status_code == 200
    assert response.text == '{"source":"simulated","value":null,"inf":null,"ok":1.5}'


def test_every_code_has_a_status() -> None:
    assert set(errors.HTTP_STATUS) == set(errors.ErrorCode)
    assert errors.SourceTimeout("x").status_code == 504
    assert errors.error_body(errors.ErrorCode.NOT_FOUND, "m") == {
        "error": {"code": "not_found", "message": "m", "details": None}
    }


def test_a_rule_on_the_whole_body_says_its_reason_in_the_message() -> None:
    from qmtgate.errors import validation_error_body

    body = validation_error_body(
        [
            {
                "loc": ["body"],
                "msg": "Value error, a limit order needs a positive price",
                "type": "value_error",
            },
            {"loc": ["body", "volume"], "msg": "Input should be greater than 0", "type": "greater_than"},
        ]
    )["error"]
    assert (
        body["message"] == "request validation failed: invalid 'volume'; a limit order needs a positive price"
    )
    assert body["code"] == "validation_error" and len(body["details"]) == 2


def test_the_client_keeps_validation_items_and_says_them() -> None:
    from qmtgate.client.errors import ValidationError, error_from_body

    items = [{"loc": ["query", "count"], "msg": "Input should be greater than or equal to 1", "type": "x"}]
    body = {"error": {"code": "validation_error", "message": "request validation failed: invalid 'count'",
                      "details": items}}  # fmt: skip
    error = error_from_body(422, body)
    assert isinstance(error, ValidationError) and error.details == {"errors": items}
    assert str(error) == (
        "request validation failed: invalid 'count' (Input should be greater than or equal to 1 (count))"
        " [validation_error, HTTP 422]"
    )
    said = {"error": {"code": "validation_error", "message": "request validation failed: no price",
                      "details": [{"loc": ["body"], "msg": "Value error, no price", "type": "value_error"}]}}  # fmt: skip
    assert error_from_body(422, said).message == "request validation failed: no price"  # said once
