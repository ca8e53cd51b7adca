from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest
from fastapi import APIRouter, FastAPI, Query
from fastapi.testclient import TestClient

from qmtgate.api.app import create_app
from qmtgate.api.deps import TabularFormatDep
from qmtgate.api.encoding import (
    ARROW_STREAM,
    JsonOrient,
    TabularFormat,
    negotiate,
    tabular_response,
    to_table,
)
from qmtgate.config import Settings
from qmtgate.errors import BadRequest, NotAcceptable

from .support import FakeXtdata, make_source


def bars() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": np.array([1735747200000, 1735833600000], dtype="int64"),
            "close": [7.82, np.nan],
            "volume": np.array([1146436, 1169715], dtype="int64"),
            "askPrice": [[7.83, 7.84], [7.64, 7.65]],
            "name": ["万向钱潮", "万向钱潮"],
        },
        index=pd.Index(["20250102", "20250103"], name="date"),
    )


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, TabularFormat.JSON),
        ("", TabularFormat.JSON),
        ("*/*", TabularFormat.JSON),
        ("application/json", TabularFormat.JSON),
        ("application/json; charset=utf-8", TabularFormat.JSON),
        (ARROW_STREAM, TabularFormat.ARROW),
        ("text/csv", TabularFormat.CSV),
        ("text/html,application/xhtml+xml,*/*;q=0.8", TabularFormat.JSON),
        ("application/json;q=0.5, application/vnd.apache.arrow.stream", TabularFormat.ARROW),
        ("text/csv;q=0.9, application/json;q=0.9", TabularFormat.CSV),
        ("*/*;q=0.9, text/csv;q=0.9", TabularFormat.CSV),
        ("image/png, text/*", TabularFormat.CSV),
    ],
)
def test_negotiate_accept(accept: str | None, expected: TabularFormat) -> None:
    assert negotiate(accept) is expected


def test_format_parameter_overrides_accept() -> None:
    assert negotiate(ARROW_STREAM, "csv") is TabularFormat.CSV
    assert negotiate("text/csv", "JSON") is TabularFormat.JSON
    with pytest.raises(BadRequest):
        negotiate(None, "xml")


@pytest.mark.parametrize("accept", ["image/png", "application/xml, text/html", "application/json;q=0"])
def test_unsatisfiable_accept_is_406(accept: str) -> None:
    with pytest.raises(NotAcceptable):
        negotiate(accept)


def test_to_table_keeps_a_named_index_and_turns_nan_into_null() -> None:
    table = to_table(bars())
    assert table.column_names == ["date", "time", "close", "volume", "askPrice", "name"]
    assert table.column("close").null_count == 1
    assert to_table(bars().reset_index(drop=True)).column_names[0] == "time"
    assert to_table(table) is table


def test_json_records_and_columns() -> None:
    response = tabular_response(bars(), fmt=TabularFormat.JSON, source="simulated", meta={"period": "1d"})
    body = orjson.loads(response.body)
    assert response.media_type == "application/json"
    assert body["source"] == "simulated" and body["period"] == "1d" and body["count"] == 2
    assert body["data"][0] == {
        "date": "20250102",
        "time": 1735747200000,
        "close": 7.82,
        "volume": 1146436,
        "askPrice": [7.83, 7.84],
        "name": "万向钱潮",
    }
    assert body["data"][1]["close"] is None

    columns = orjson.loads(
        tabular_response(bars(), fmt=TabularFormat.JSON, source="xtquant", orient=JsonOrient.COLUMNS).body
    )
    assert columns["source"] == "xtquant"
    assert columns["data"]["close"] == [7.82, None]


def test_json_from_an_arrow_table_with_nan_values() -> None:
    table = pa.table({"x": pa.array([1.0, float("nan")])})  # a NaN value, not a null
    body = orjson.loads(tabular_response(table, fmt=TabularFormat.JSON, source="simulated").body)
    assert body["data"] == [{"x": 1.0}, {"x": None}]


def test_arrow_stream_round_trip() -> None:
    response = tabular_response(bars(), fmt=TabularFormat.ARROW, source="simulated", meta={"period": "1d"})
    assert response.media_type == ARROW_STREAM
    assert response.headers["x-qmtgate-source"] == "simulated"
    table = pa.ipc.open_stream(response.body).read_all()
    assert table.schema.metadata[b"qmtgate.source"] == b"simulated"
    assert orjson.loads(table.schema.metadata[b"qmtgate.meta"]) == {"period": "1d"}
    assert table.column("volume").type == pa.int64()
    assert table.column("close").to_pylist() == [7.82, None]
    assert table.column("askPrice").to_pylist()[0] == [7.83, 7.84]
    frame = table.to_pandas()
    assert list(frame["date"]) == ["20250102", "20250103"]


def test_arrow_without_compression_is_also_readable() -> None:
    compressed = tabular_response(bars(), fmt=TabularFormat.ARROW, source="s").body
    plain = tabular_response(bars(), fmt=TabularFormat.ARROW, source="s", compression=None).body
    assert pa.ipc.open_stream(plain).read_all().equals(pa.ipc.open_stream(compressed).read_all())


def test_csv_flattens_nested_cells_to_json() -> None:
    response = tabular_response(bars(), fmt=TabularFormat.CSV, source="simulated")
    assert response.media_type == "text/csv"
    assert response.headers["x-qmtgate-source"] == "simulated"
    frame = pd.read_csv(io.BytesIO(response.body))
    assert list(frame.columns) == ["date", "time", "close", "volume", "askPrice", "name"]
    assert orjson.loads(frame.loc[0, "askPrice"]) == [7.83, 7.84]
    assert pd.isna(frame.loc[1, "close"])
    assert frame.loc[0, "name"] == "万向钱潮"


@pytest.fixture
def client(settings: Settings, fake: FakeXtdata) -> Iterator[TestClient]:
    app: FastAPI = create_app(settings, make_source(fake))
    router = APIRouter()

    @router.get("/probe/table")
    async def table(fmt: TabularFormatDep, orient: JsonOrient = Query(JsonOrient.RECORDS)) -> object:
        return tabular_response(bars(), fmt=fmt, source="simulated", orient=orient)

    app.include_router(router)
    with TestClient(app) as test_client:
        yield test_client


def test_negotiation_through_a_route(client: TestClient) -> None:
    assert client.get("/probe/table").json()["count"] == 2
    arrow = client.get("/probe/table", headers={"Accept": ARROW_STREAM})
    assert arrow.headers["content-type"] == ARROW_STREAM
    assert pa.ipc.open_stream(arrow.content).read_all().num_rows == 2
    assert client.get("/probe/table", params={"format": "csv"}).headers["content-type"].startswith("text/csv")
    refused = client.get("/probe/table", headers={"Accept": "image/png"})
    assert refused.status_code == 406 and refused.json()["error"]["code"] == "not_acceptable"
    bad = client.get("/probe/table", params={"format": "xml"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


def test_large_json_answers_are_encoded_a_chunk_at_a_time_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    from qmtgate.api import encoding

    n = 12_345
    table = pa.table(
        {
            "code": pa.array(["600000.SH"] * n),
            "ts": pa.array(np.arange(n, dtype=np.int64) * 60_000 + 1_700_000_000_000),
            "close": pa.array([None if i % 7 == 0 else i / 3 for i in range(n)], pa.float64()),
        }
    )
    chunked = encoding.tabular_response(table, fmt=encoding.TabularFormat.JSON, source="s", meta={"m": 1})
    monkeypatch.setattr(encoding, "RECORDS_CHUNK", 10**9)
    whole = encoding.tabular_response(table, fmt=encoding.TabularFormat.JSON, source="s", meta={"m": 1})
    assert orjson.loads(chunked.body) == orjson.loads(whole.body)
    assert orjson.loads(chunked.body)["count"] == n
