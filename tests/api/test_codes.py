from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qmtgate.codes import (
    BARE_PREFIX_MARKET,
    MARKET_ALIASES,
    MARKETS,
    is_canonical,
    market_for_digits,
    normalize_code,
    normalize_codes,
    normalize_market,
    split_code,
)
from qmtgate.errors import AmbiguousCode, InvalidCode


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("600000", "600000.SH"),
        ("sh600000", "600000.SH"),
        ("SH600000", "600000.SH"),
        ("600000.SH", "600000.SH"),
        ("600000.sh", "600000.SH"),
        ("600000.XSHG", "600000.SH"),
        ("sh.600000", "600000.SH"),
        (" 600000.SH ", "600000.SH"),
        ("000001.XSHE", "000001.SZ"),
        ("000001", "000001.SZ"),  # bare digits are stocks: 平安银行, never 上证指数
        ("000001.SH", "000001.SH"),  # 上证指数 needs its suffix
        ("000300.SH", "000300.SH"),
        ("399001", "399001.SZ"),
        ("300750", "300750.SZ"),
        ("301000", "301000.SZ"),
        ("002594", "002594.SZ"),
        ("003816", "003816.SZ"),
        ("688981", "688981.SH"),
        ("689009", "689009.SH"),
        ("605499", "605499.SH"),
        ("900901", "900901.SH"),  # SH B share
        ("200002", "200002.SZ"),  # SZ B share
        ("510300", "510300.SH"),
        ("588000", "588000.SH"),
        ("159919", "159919.SZ"),
        ("161005", "161005.SZ"),
        ("113050", "113050.SH"),
        ("123100", "123100.SZ"),
        ("920001", "920001.BJ"),
        ("430047", "430047.BJ"),
        ("430047.BJ", "430047.BJ"),
        ("830799", "830799.BJ"),
        ("bj430047", "430047.BJ"),
        ("600000.SSE", "600000.SH"),
        ("000001.SZSE", "000001.SZ"),
    ],
)
def test_normalize_code(raw: str, canonical: str) -> None:
    assert normalize_code(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    ["", "60000", "6000000", "600000.HK", "IF2406.IF", "00700.HK", "abc", "600000.", ".SH", "sh", "600 000"],
)
def test_invalid_codes(raw: str) -> None:
    with pytest.raises(InvalidCode) as info:
        normalize_code(raw)
    assert info.value.code.value == "invalid_code"
    assert info.value.details["code"] == raw


@pytest.mark.parametrize("raw", ["700001", "980001", "100001", "999999", "020001"])
def test_bare_codes_without_a_known_prefix_are_ambiguous(raw: str) -> None:
    with pytest.raises(AmbiguousCode) as info:
        normalize_code(raw)
    assert info.value.code.value == "ambiguous_code"
    assert f"{raw}.SH" in info.value.message  # tells the client how to fix it


def test_non_string_code_is_invalid() -> None:
    with pytest.raises(InvalidCode):
        normalize_code(600000)  # type: ignore[arg-type]


def test_normalize_codes_dedupes_and_reports_all_problems() -> None:
    assert normalize_codes(["600000", "sh600000", "000001.SZ", "600000.SH"]) == ["600000.SH", "000001.SZ"]
    with pytest.raises(InvalidCode) as info:
        normalize_codes(["600000", "bad", "700001"])
    assert [p["code"] for p in info.value.details["codes"]] == ["bad", "700001"]
    assert [p["error"] for p in info.value.details["codes"]] == ["invalid_code", "ambiguous_code"]
    with pytest.raises(AmbiguousCode):
        normalize_codes(["700001"])


def test_markets() -> None:
    assert normalize_market("xshg") == "SH"
    assert normalize_market(" sz ") == "SZ"
    assert normalize_market("BSE") == "BJ"
    with pytest.raises(InvalidCode):
        normalize_market("HK")


digits = st.text(alphabet="0123456789", min_size=6, max_size=6)
markets = st.sampled_from(MARKETS)
aliases = st.sampled_from(sorted(MARKET_ALIASES))


def _case(text: str, upper: bool) -> str:
    return text.upper() if upper else text.lower()


@given(digits, markets, st.booleans())
def test_canonical_round_trips_through_every_spelling(number: str, market: str, upper: bool) -> None:
    canonical = f"{number}.{market}"
    assert normalize_code(canonical) == canonical
    assert is_canonical(canonical)
    assert split_code(canonical) == (number, market)
    for spelling in (
        f"{number}.{_case(market, upper)}",
        f"{_case(market, upper)}{number}",
        f" {market}.{number} ",
    ):
        assert normalize_code(spelling) == canonical


@given(digits, aliases, st.booleans())
def test_every_alias_normalizes_to_its_market(number: str, alias: str, upper: bool) -> None:
    result = normalize_code(f"{number}.{_case(alias, upper)}")
    assert result == f"{number}.{MARKET_ALIASES[alias]}"
    assert normalize_code(result) == result  # idempotent


@given(digits)
def test_bare_digits_resolve_by_prefix_or_say_ambiguous(number: str) -> None:
    market = market_for_digits(number)
    if market is None:
        with pytest.raises(AmbiguousCode):
            normalize_code(number)
    else:
        assert normalize_code(number) == f"{number}.{market}"
        assert any(number.startswith(prefix) for prefix, m in BARE_PREFIX_MARKET.items() if m == market)


@given(st.text(max_size=20))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        result = normalize_code(text)
    except (InvalidCode, AmbiguousCode):
        return
    assert is_canonical(result)


def test_prefix_table_only_uses_lengths_the_lookup_checks() -> None:
    # market_for_digits tries 3-, 2-, then 1-digit prefixes; a longer key would never match.
    assert all(1 <= len(prefix) <= 3 and prefix.isdigit() for prefix in BARE_PREFIX_MARKET)
    assert set(BARE_PREFIX_MARKET.values()) == set(MARKETS)
