"""What a recording is known to miss: coverage spans in, holes out (docs/recording.md, "Completeness").

The recorder writes *coverage* rows into the recording (table ``coverage``): a span ``[lo, hi]`` of market
time (epoch ms, inclusive) for a *scope* (a whole market ``SH`` or one code) in which every published tick
is stored. A live recorder claims its span as it goes, only up to what the writer has committed (so a
``kill -9`` never leaves a claim for rows that were lost); a backfill claims each hole it filled once its
rows are stored. Everything in a session window that no span covers is a *hole*: what the day is known
to miss. A day without any coverage row (a recording made before this table existed) is *unknown*.

The session windows are 09:15-11:30 and 13:00-15:00 Asia/Shanghai (the call auction to the close; the
lunch break publishes nothing new). A day counts up to the latest market time a recorder saw (``meta``
``clock_ms``), less a short tail: the newest seconds of a running recorder are not yet claimed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from qmtgate.source.convert import CST_OFFSET_MS, MS_PER_DAY, day_start_ms

#: Session windows, seconds after 00:00 CST, inclusive.
WINDOWS_S: tuple[tuple[int, int], ...] = ((9 * 3600 + 15 * 60, 11 * 3600 + 30 * 60), (13 * 3600, 15 * 3600))
#: The newest market seconds a running recorder has not claimed yet are not reported as missing.
TAIL_MS = 30_000
#: Market codes a scope may name as a whole market.
MARKET_SCOPES = ("SH", "SZ", "BJ")

Span = tuple[int, int]


def windows(day: dt.date) -> list[Span]:
    start = day_start_ms(day)
    return [(start + lo * 1000, start + hi * 1000) for lo, hi in WINDOWS_S]


def date_of(ms: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=(ms + CST_OFFSET_MS) // MS_PER_DAY)


def merge(spans: Iterable[Span]) -> list[Span]:
    """Union of inclusive spans, sorted; touching spans (``b.lo == a.hi + 1``) join."""
    out: list[list[int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


def subtract(base: Sequence[Span], covered: Sequence[Span]) -> list[Span]:
    """The parts of ``base`` (sorted, disjoint) that ``covered`` does not cover."""
    holes: list[Span] = []
    cov = merge(covered)
    for lo, hi in base:
        cur = lo
        for c_lo, c_hi in cov:
            if c_hi < cur or c_lo > hi:
                continue
            if c_lo > cur:
                holes.append((cur, c_lo - 1))
            cur = max(cur, c_hi + 1)
            if cur > hi:
                break
        if cur <= hi:
            holes.append((cur, hi))
    return holes


def intersect(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """The parts of ``a`` (sorted, disjoint) that ``b`` covers."""
    return subtract(a, subtract(a, b))


def expected(day: dt.date, horizon_ms: int) -> list[Span]:
    """The session windows of ``day`` up to ``horizon_ms`` (the whole day once the horizon is past it)."""
    return [(lo, min(hi, horizon_ms)) for lo, hi in windows(day) if lo <= horizon_ms]


def scope_market(scope: str) -> str | None:
    """The market a code scope belongs to (``600000.SH`` -> ``SH``); None for a market scope."""
    if scope in MARKET_SCOPES:
        return None
    return scope.rsplit(".", 1)[-1] if "." in scope else None


def holes_by_scope(
    day: dt.date, spans: dict[str, list[Span]], scopes: Iterable[str], horizon_ms: int
) -> dict[str, list[Span]]:
    """Holes of each scope on ``day``: a code is covered by its own spans and by its market's."""
    base = expected(day, horizon_ms)
    out: dict[str, list[Span]] = {}
    for scope in scopes:
        covered = list(spans.get(scope, ()))
        market = scope_market(scope)
        if market is not None:
            covered += spans.get(market, ())
        out[scope] = subtract(base, covered)
    return out


def group_holes(holes: dict[str, list[Span]]) -> list[dict[str, Any]]:
    """Spans (holes, or covered spans) as report rows: one per distinct span, with every scope it is of."""
    grouped: dict[Span, list[str]] = defaultdict(list)
    for scope, spans in holes.items():
        for span in spans:
            grouped[span].append(scope)
    return [
        {
            "scopes": sorted(scopes),
            "start_ms": lo,
            "end_ms": hi,
            "start": _cst(lo),
            "end": _cst(hi),
            "seconds": round((hi - lo + 1) / 1000, 3),
        }
        for (lo, hi), scopes in sorted(grouped.items())
    ]


def _cst(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone(dt.timedelta(hours=8))).isoformat(
        timespec="seconds"
    )


def horizon_for(day: dt.date, clock_ms: int | None) -> int:
    """How far into ``day`` completeness is judged: the whole day once the clock left it."""
    last = windows(day)[-1][1]
    if clock_ms is None:
        return last
    if clock_ms > last + TAIL_MS:
        return last
    return clock_ms - TAIL_MS


def report(con: Any, day: dt.date | None = None) -> list[dict[str, Any]]:
    """Completeness of every recorded day (or one): ``known``, ``complete``, ``missing_seconds``, holes.

    ``con`` is a DuckDB connection or cursor of the recording. ``missing_seconds`` is the longest total
    any one scope misses (so a whole-market hole of 60 s is 60 s, not 60 s per market)."""
    from qmtgate.record.schema import has_table

    where, params = ("WHERE date = ?", [day]) if day is not None else ("", [])
    tick_days = [
        r[0] for r in con.execute(f"SELECT DISTINCT date FROM ticks {where} ORDER BY date", params).fetchall()
    ]
    if not has_table(con, "coverage"):
        return [_unknown(d) for d in tick_days]
    rows = con.execute(f"SELECT date, scope, lo, hi FROM coverage {where}", params).fetchall()
    clock_row = con.execute("SELECT value FROM meta WHERE key = 'clock_ms'").fetchall()
    clock_ms = int(clock_row[0][0]) if clock_row else None
    per_day: dict[dt.date, dict[str, list[Span]]] = defaultdict(lambda: defaultdict(list))
    for d, scope, lo, hi in rows:
        per_day[d][scope].append((int(lo), int(hi)))
    out = []
    for d in sorted(set(tick_days) | set(per_day)):
        spans = per_day.get(d)
        if not spans:
            out.append(_unknown(d))
            continue
        holes = holes_by_scope(d, spans, spans.keys(), horizon_for(d, clock_ms))
        grouped = group_holes(holes)
        missing = max((sum(hi - lo + 1 for lo, hi in h) for h in holes.values()), default=0) / 1000
        out.append(
            {
                "date": d.isoformat(),
                "known": True,
                "complete": not grouped,
                "scopes": sorted(spans),
                "missing_seconds": round(missing, 3),
                "holes": grouped,
                "covered": group_holes({scope: merge(found) for scope, found in spans.items()}),
            }
        )
    return out


def _unknown(day: dt.date) -> dict[str, Any]:
    return {
        "date": day.isoformat(),
        "known": False,
        "complete": None,
        "scopes": [],
        "missing_seconds": None,
        "holes": [],
        "covered": [],
    }
