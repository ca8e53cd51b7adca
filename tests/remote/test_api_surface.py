"""The drop-in's xtdata is a subset of the real xtquant 250807 ``xtdata``: every name exists there with the
same parameters (names, kinds, defaults), aliases point where xtquant's do, and any other name raises an
error that names it (tests/contract/data/xtquant_250807_api.json is extracted from the real wheel)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from qmtgate.remote.xtquant import xtdata

API = json.loads(
    (Path(__file__).parents[1] / "contract" / "data" / "xtquant_250807_api.json").read_text(encoding="utf-8")
)["modules"]["xtdata"]
SERVED = [name for name in xtdata.__all__ if name in API["functions"]]
ALIASES = {name: target for name, target in API["aliases"].items() if name in xtdata.__all__}


def test_every_served_name_is_a_real_xtdata_name() -> None:
    assert set(xtdata.__all__) == set(SERVED) | set(ALIASES)
    assert "get_market_data_ex" in SERVED and "subscribe_whole_quote" in SERVED


@pytest.mark.parametrize("name", SERVED)
def test_signature_matches_xtquant(name: str) -> None:
    real = [(p["name"], p["kind"], p.get("default")) for p in API["functions"][name]["params"]]
    ours = [
        (p.name, p.kind.name, None if p.default is inspect.Parameter.empty else repr(p.default))
        for p in inspect.signature(getattr(xtdata, name)).parameters.values()
    ]
    assert ours == real


@pytest.mark.parametrize(("alias", "target"), sorted(ALIASES.items()))
def test_aliases_point_where_xtquant_does(alias: str, target: str) -> None:
    assert getattr(xtdata, alias) is getattr(xtdata, target)


@pytest.mark.parametrize("name", ["get_financial_data", "subscribe_l2thousand", "get_l2_quote", "no_such_fn"])
def test_other_names_raise_an_error_naming_them(name: str) -> None:
    with pytest.raises(xtdata.NotServed, match=name):
        getattr(xtdata, name)
    assert not hasattr(xtdata, name)
