"""Security-code normalization: every spelling clients use -> canonical ``XXXXXX.SH|SZ|BJ``.

xtquant only accepts ``<6 digits>.<MARKET>`` with an upper-case suffix and answers *silently empty* for
anything else, so qmtgate normalizes at the edge and rejects what it cannot resolve.

Accepted spellings (case-insensitive, surrounding blanks ignored):

==========================  =====================================================
``600000.SH``               xtquant / canonical
``sh600000``, ``SH600000``  prefix form (tdx, sina)
``sh.600000``               baostock
``600000.XSHG``             JoinQuant / RiceQuant (``XSHG`` -> SH, ``XSHE`` -> SZ)
``600000.SSE``              vn.py exchange names (``SSE``, ``SZSE``, ``BSE``)
``600000``                  bare digits, resolved by the prefix rule below
==========================  =====================================================

Bare-digit rule (documented, deliberate): bare digits are treated as **stocks, funds and bonds** by
prefix, never as indices. ``000001`` is therefore 平安银行 ``000001.SZ``; 上证指数 must be written
``000001.SH``. The same six digits name different instruments on SH and SZ (``000001``, ``000300``), and a
gateway that guessed would silently serve the wrong series. Prefixes that are not in :data:`BARE_PREFIX_MARKET`
raise :class:`~qmtgate.errors.AmbiguousCode` (add a suffix); malformed input raises
:class:`~qmtgate.errors.InvalidCode`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from qmtgate.errors import AmbiguousCode, InvalidCode

#: Market tokens qmtgate serves, as xtquant spells them.
MARKETS: tuple[str, ...] = ("SH", "SZ", "BJ")

#: Other names for those markets (upper-case) -> xtquant token.
MARKET_ALIASES: dict[str, str] = {
    "SH": "SH",
    "SS": "SH",
    "SSE": "SH",
    "XSHG": "SH",
    "SHSE": "SH",
    "SZ": "SZ",
    "SZSE": "SZ",
    "XSHE": "SZ",
    "BJ": "BJ",
    "BSE": "BJ",
    "BJSE": "BJ",
    "XBSE": "BJ",
}

#: Bare 6-digit prefix -> market. Longest prefix wins. Sources: xtquant-api.md §2.2 (xtstocktype baseTypes).
BARE_PREFIX_MARKET: dict[str, str] = {
    # SH A shares (main board 60xxxx, STAR 688/689), B shares 900, funds/ETFs/LOFs/REITs 5xxxxx,
    # convertible bonds 110/111/113/118, government-bond repo 204.
    "60": "SH",
    "688": "SH",
    "689": "SH",
    "900": "SH",
    "5": "SH",
    "110": "SH",
    "111": "SH",
    "113": "SH",
    "118": "SH",
    "204": "SH",
    # SZ A shares (main board 000-004, ChiNext 300/301), B shares 200, funds/ETFs/LOFs/REITs 15/16/18,
    # convertible bonds 123/127/128, repo 131, indices 399 (no SH code starts with 39).
    "000": "SZ",
    "001": "SZ",
    "002": "SZ",
    "003": "SZ",
    "004": "SZ",
    "300": "SZ",
    "301": "SZ",
    "200": "SZ",
    "15": "SZ",
    "16": "SZ",
    "18": "SZ",
    "123": "SZ",
    "127": "SZ",
    "128": "SZ",
    "131": "SZ",
    "399": "SZ",
    # BJ: 43/83/87 (legacy NEEQ-style codes), 920 (new BJ codes), 889 (subscriptions), 899 (BJ indices).
    "4": "BJ",
    "8": "BJ",
    "920": "BJ",
}

_DIGITS = r"(?P<digits>[0-9]{6})"  # ASCII only: \d would accept other scripts' digits
_MARKET = r"(?P<market>[A-Za-z]{2,4})"
_SUFFIX_RE = re.compile(rf"^{_DIGITS}\.{_MARKET}$")
_PREFIX_RE = re.compile(rf"^{_MARKET}\.?{_DIGITS}$")
_BARE_RE = re.compile(rf"^{_DIGITS}$")


def normalize_market(token: str) -> str:
    """Map a market token or alias (``sh``, ``XSHG``, ``SSE``) to ``SH``/``SZ``/``BJ``."""
    market = MARKET_ALIASES.get(token.strip().upper())
    if market is None:
        raise InvalidCode(
            f"unknown market {token!r}; qmtgate serves {', '.join(MARKETS)}",
            {"market": token, "markets": list(MARKETS)},
        )
    return market


def market_for_digits(digits: str) -> str | None:
    """Market of bare six digits by :data:`BARE_PREFIX_MARKET`, or None when the prefix is not mapped."""
    for length in (3, 2, 1):
        market = BARE_PREFIX_MARKET.get(digits[:length])
        if market is not None:
            return market
    return None


def normalize_code(raw: str) -> str:
    """Return the canonical ``XXXXXX.SH|SZ|BJ`` for one client-supplied code.

    Raises :class:`InvalidCode` for malformed input or unsupported markets, and :class:`AmbiguousCode` for
    bare digits whose prefix does not determine a market.
    """
    if not isinstance(raw, str):
        raise InvalidCode(f"code must be a string, got {type(raw).__name__}", {"code": repr(raw)})
    text = raw.strip()
    match = _SUFFIX_RE.match(text) or _PREFIX_RE.match(text)
    if match is not None:
        return f"{match['digits']}.{_market_of(match['market'], raw)}"
    if _BARE_RE.match(text):
        market = market_for_digits(text)
        if market is None:
            raise AmbiguousCode(
                f"cannot tell the market of bare code {text!r}; write it with a suffix, e.g. {text}.SH",
                {"code": raw},
            )
        return f"{text}.{market}"
    raise InvalidCode(
        f"invalid security code {raw!r}; expected six digits with a market, e.g. 600000.SH",
        {"code": raw},
    )


def _market_of(token: str, raw: str) -> str:
    market = MARKET_ALIASES.get(token.upper())
    if market is None:
        raise InvalidCode(
            f"invalid security code {raw!r}: unknown market {token!r}; qmtgate serves {', '.join(MARKETS)}",
            {"code": raw, "markets": list(MARKETS)},
        )
    return market


def normalize_codes(raws: Iterable[str]) -> list[str]:
    """Normalize many codes, dropping duplicates but keeping first-seen order.

    All failures are collected into one error so a client fixes its whole list in one round trip.
    """
    result: list[str] = []
    seen: set[str] = set()
    problems: list[dict[str, str]] = []
    for raw in raws:
        try:
            code = normalize_code(raw)
        except (InvalidCode, AmbiguousCode) as e:
            problems.append({"code": str(raw), "error": e.code.value, "message": e.message})
            continue
        if code not in seen:
            seen.add(code)
            result.append(code)
    if problems:
        error_cls = AmbiguousCode if all(p["error"] == "ambiguous_code" for p in problems) else InvalidCode
        raise error_cls(f"{len(problems)} code(s) could not be normalized", {"codes": problems})
    return result


def split_code(code: str) -> tuple[str, str]:
    """Split a canonical code into ``(digits, market)``."""
    digits, _, market = code.partition(".")
    return digits, market


def is_canonical(code: str) -> bool:
    """True when ``code`` is already ``XXXXXX.SH|SZ|BJ``."""
    match = _SUFFIX_RE.match(code)
    return match is not None and match["market"] in MARKETS


#: Instrument classes :func:`classify` can tell apart from the code alone.
KINDS: tuple[str, ...] = ("stock", "etf", "fund", "index", "bond", "other")

#: (market, code prefix) -> class, longest prefix wins. From xtquant's xtstocktype patterns (xtquant-api.md §2.2).
_KIND_PREFIXES: dict[str, dict[str, str]] = {
    "SH": {
        "60": "stock",
        "688": "stock",
        "689": "stock",
        "900": "stock",
        "000": "index",
        **{p: "etf" for p in ("510", "511", "512", "513", "515", "516", "517", "518", "520", "530")},
        **{p: "etf" for p in ("560", "561", "562", "563", "588")},
        "50": "fund",
        "501": "fund",
        "502": "fund",
        "506": "fund",
        "508": "fund",
        "100": "bond",
        "110": "bond",
        "111": "bond",
        "112": "bond",
        "113": "bond",
        "118": "bond",
        "20": "bond",
    },
    "SZ": {
        "00": "stock",
        "30": "stock",
        "20": "stock",
        "39": "index",
        "98": "index",
        "158": "etf",
        "159": "etf",
        "15": "fund",
        "16": "fund",
        "18": "fund",
        "12": "bond",
        "131": "bond",
    },
    "BJ": {"43": "stock", "83": "stock", "87": "stock", "920": "stock", "899": "index"},
}


def classify(code: str) -> str:
    """Instrument class of a canonical code by its prefix: stock, etf, fund, index, bond or other.

    A-shares and B-shares are ``stock``; LOFs, closed-end funds and REITs are ``fund``. This is the
    exchange's numbering plan, not a lookup, so it costs nothing and needs no upstream call.
    """
    digits, market = split_code(code)
    table = _KIND_PREFIXES.get(market, {})
    for length in (3, 2):
        kind = table.get(digits[:length])
        if kind is not None:
            return kind
    return "other"
