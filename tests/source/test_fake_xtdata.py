"""The fake must keep the real xtdata signatures, so the source layer can only call what exists for real."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from .fake_xtdata import FakeXtdata

API_FILE = Path(__file__).parents[1] / "contract" / "data" / "xtquant_250807_api.json"
KNOBS = {"hang", "fail", "count", "calls_of", "stream_whole_market"}


def _xtdata_functions() -> dict[str, dict]:
    if not API_FILE.is_file():
        pytest.skip(f"{API_FILE} not present")
    return json.loads(API_FILE.read_text(encoding="utf-8"))["modules"]["xtdata"]["functions"]


def test_fake_functions_have_the_real_signatures() -> None:
    real = _xtdata_functions()
    fake = FakeXtdata()
    names = [n for n in dir(fake) if not n.startswith("_") and n not in KNOBS and callable(getattr(fake, n))]
    assert len(names) >= 17
    for name in names:
        assert name in real, f"{name} is not a real xtdata function"
        expected = [(p["name"], p["kind"], p.get("default")) for p in real[name]["params"]]
        actual = [
            (p.name, p.kind.name, None if p.default is inspect.Parameter.empty else repr(p.default))
            for p in inspect.signature(getattr(fake, name)).parameters.values()
        ]
        assert actual == expected, name
