"""The rules inside the MCP server, without a gateway: K-line summaries, sector breadth, quote fields and
the confirmation tokens of the two-step place (hypothesis over generated inputs)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp.server.mcpserver.exceptions import ToolError

from qmtgate.mcp.summary import breadth, kline_summary, quote_row
from qmtgate.mcp.trading import Confirmations
from qmtgate.vocab import HALTED_PHASES, PHASE_NAMES

price = st.floats(min_value=0.5, max_value=5000, allow_nan=False, allow_infinity=False)


@st.composite
def bars(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=1, max_value=60))
    rows = []
    close = draw(price)
    for i in range(n):
        pre = close
        o, c, a, b = (draw(price) for _ in range(4))
        rows.append(
            {
                "time": pd.Timestamp("2025-01-02", tz="Asia/Shanghai") + pd.Timedelta(days=i),
                "open": o,
                "high": max(o, c, a, b),
                "low": min(o, c, a, b),
                "close": c,
                "pre_close": pre,
                "volume": draw(st.integers(min_value=0, max_value=10**9)),
                "amount": draw(st.floats(min_value=0, max_value=1e12)),
            }
        )
        close = c
    return pd.DataFrame(rows)


@settings(max_examples=60, deadline=None)
@given(bars())
def test_kline_summary(df: pd.DataFrame) -> None:
    s = kline_summary(df)
    assert s["bars"] == len(df)
    assert s["high"] == df["high"].max() and s["low"] == df["low"].min()
    assert df.loc[df["high"].idxmax(), "time"].isoformat() == s["high_time"]
    assert s["low"] <= s["last_close"] <= s["high"] and s["low"] <= s["first_open"] <= s["high"]
    assert s["first_time"] <= s["last_time"]
    expected = (df["close"].iloc[-1] / df["pre_close"].iloc[0] - 1) * 100
    assert s["return_pct"] == pytest.approx(expected, abs=1e-3)
    assert s["total_volume"] == df["volume"].sum()


def test_kline_summary_of_nothing() -> None:
    assert kline_summary(pd.DataFrame(columns=["time", "open", "high", "low", "close"])) == {"bars": 0}


quote = st.fixed_dictionaries(
    {
        "code": st.just("600000.SH"),
        "last_price": st.one_of(st.none(), price, st.just(math.nan)),
        "pre_close": price,
        "amount": st.floats(min_value=0, max_value=1e10),
        "phase": st.one_of(st.none(), st.integers(min_value=0, max_value=30)),
    }
)


@given(st.lists(quote, max_size=40))
def test_breadth_counts_every_row_once(raw: list[dict]) -> None:
    rows = [quote_row(r) for r in raw]
    b = breadth(rows)
    assert b["up"] + b["down"] + b["flat"] + b["no_price"] == b["count"] == len(rows)
    assert b["no_price"] == sum(1 for r in raw if r["last_price"] is None or math.isnan(r["last_price"]))
    assert b["halted"] == sum(1 for r in raw if r["phase"] in (1, 17, 20)), "suspended, 临时停牌, 停牌至闭市"
    for r, q in zip(raw, rows, strict=True):
        # the name of the shared table (xtquant-api.md 3.4); a code outside it is "unknown"
        expected = None if r["phase"] is None else PHASE_NAMES.get(r["phase"], "unknown")
        assert q["phase"] == r["phase"] and q["phase_name"] == expected
    for r, q in zip(raw, rows, strict=True):
        if q["change"] is not None:
            assert q["change"] == pytest.approx(r["last_price"] - r["pre_close"], abs=1e-4)
            assert (q["change_pct"] > 0) == (q["change"] > 0) or q["change"] == 0


order = st.fixed_dictionaries(
    {
        "code": st.sampled_from(["600519.SH", "000001.SZ"]),
        "side": st.sampled_from(["buy", "sell"]),
        "volume": st.integers(min_value=100, max_value=10_000),
        "price_type": st.just("limit"),
        "price": st.floats(min_value=1, max_value=2000).map(lambda p: round(p, 2)),
    }
)


@given(order, order)
def test_a_token_confirms_only_its_own_order(a: dict, b: dict) -> None:
    confirmations = Confirmations()
    token, coid = confirmations.issue(a)
    assert confirmations.check(token, dict(a)) == coid  # the same order, confirmed as often as asked
    assert confirmations.check(token, dict(a)) == coid
    if b != a:
        with pytest.raises(ToolError, match="confirmation_mismatch"):
            confirmations.check(token, b)
    with pytest.raises(ToolError, match="confirmation_invalid"):
        confirmations.check(token[::-1] + "x", a)


def test_tokens_expire_and_ids_are_gateway_client_order_ids() -> None:
    confirmations = Confirmations(ttl=-1.0)  # expired as soon as issued
    o = {"code": "600519.SH", "side": "buy", "volume": 100, "price_type": "limit", "price": 1.0}
    token, coid = confirmations.issue(o)
    assert len(coid) <= 24 and coid.replace("-", "").replace("_", "").isalnum()
    with pytest.raises(ToolError, match="confirmation_invalid"):
        confirmations.check(token, o)
    tokens = {Confirmations().issue(o)[0] for _ in range(200)}
    assert len(tokens) == 200


class _Gateway:
    """Answers the three calls the name index makes, refusing any batch with an unknown code (as the
    gateway's /instruments does), and counts the calls."""

    def __init__(self, members: list[str], unknown: set[str]) -> None:
        self.members, self.unknown, self.calls = members, unknown, 0

    async def call(self, name: str, *args: object) -> object:
        self.calls += 1
        if name == "sectors":
            return ["沪深A股", "其他"]
        if name == "sector_members":
            return self.members if args[0] == "沪深A股" else []
        codes = list(args[0])  # type: ignore[call-overload]
        if set(codes) & self.unknown:
            raise ToolError("unknown code (code: unknown_code, HTTP 404)")
        return pd.DataFrame({"code": codes, "name": [f"股票{c[:6]}" for c in codes]})


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=1, max_value=1200), st.sets(st.integers(min_value=0, max_value=1199), max_size=3)
)
def test_name_index_leaves_out_only_the_codes_the_gateway_refuses(n: int, bad: set[int]) -> None:
    import asyncio

    from qmtgate.mcp.names import NameIndex

    members = [f"{600000 + i}.SH" for i in range(n)]
    unknown = {members[i] for i in bad if i < n}
    gateway = _Gateway(members, unknown)
    index = NameIndex(gateway)  # type: ignore[arg-type]

    async def scenario() -> None:
        good = next((c for c in members if c not in unknown), None)
        if good is not None:
            assert await index.resolve(f"股票{good[:6]}") == good
        for c in unknown:
            with pytest.raises(ToolError, match="unknown_name"):
                await index.resolve(f"股票{c[:6]}")
        assert len(await index.name_of(members)) == n - len(unknown)

    asyncio.run(scenario())


def test_the_phase_table_names_the_halted_codes() -> None:
    """The shared table (xtquant-api.md 3.4): 1 suspended, 17 temporary halt, 20 halted until close."""
    assert {1, 17, 20} == HALTED_PHASES
    assert [PHASE_NAMES[c] for c in (1, 17, 20)] == ["suspended", "temporary halt", "halted until close"]
    assert set(PHASE_NAMES) == {0, 1, *range(10, 24)}
