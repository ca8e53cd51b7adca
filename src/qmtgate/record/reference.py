"""Reference data recorded with a session, so a replay answers what the live gateway answered that day.

Once per recorded day the recorder stores, beside the ticks (tables ``ref_instruments``, ``ref_sectors``,
``ref_calendar``, docs/recording.md):

* the instrument detail (``get_instrument_detail``, as JSON) of every code it records;
* sector membership: every sector the source lists when it lists at most :data:`MAX_SECTORS` (the
  simulator, a plain QMT), otherwise the standard market sectors plus the sectors being recorded (a QMT
  with thousands of concept sectors would cost thousands of calls);
* the trading calendar (SH trading days up to the recorded day).

The replay source (``qmtgate.source.replay``) reads them; a recording made before they existed replays
with synthesized details and answers sectors as ``unsupported``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

MAX_SECTORS = 300
#: always recorded when the source lists them (the names xtdata uses after download_sector_data)
STANDARD_SECTORS = (
    "沪深A股",
    "上证A股",
    "深证A股",
    "京市A股",
    "创业板",
    "科创板",
    "沪深ETF",
    "沪市ETF",
    "深市ETF",
    "沪深指数",
    "沪市指数",
    "深市指数",
    "沪深基金",
    "沪深300",
    "中证500",
    "上证50",
    "中证1000",
)
DETAIL_CHUNK = 500


async def collect(
    source: Any, day: dt.date, codes: Sequence[str], sectors: Sequence[str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[dt.date]]:
    """Ask ``source`` for the reference data of ``day``: (code, detail JSON), (sector, code), trading days."""
    details: list[tuple[str, str]] = []
    codes = list(codes)
    for i in range(0, len(codes), DETAIL_CHUNK):
        found = await source.instrument_details(codes[i : i + DETAIL_CHUNK])
        details += [
            (c, json.dumps(d, ensure_ascii=False, default=str)) for c, d in found.items() if d is not None
        ]
    names = list(await source.sector_list())
    if len(names) > MAX_SECTORS:
        names = [n for n in names if n in STANDARD_SECTORS or n in sectors]
    members: list[tuple[str, str]] = []
    for name in dict.fromkeys([*names, *sectors]):
        members += [(name, c) for c in await source.sector_members(name)]
    end = day.strftime("%Y%m%d")
    days = [
        dt.date(1970, 1, 1) + dt.timedelta(days=(int(ms) + 8 * 3_600_000) // 86_400_000)
        for ms in await source.trading_dates("SH", "", end)
    ]
    return details, members, days


def store(con: Any, day: dt.date, data: tuple[list[Any], list[Any], list[dt.date]]) -> None:
    """Replace ``day``'s reference rows (and the calendar) in one transaction (the writer thread)."""
    import pyarrow as pa

    details, members, days = data
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM ref_instruments WHERE date = ?", [day])
        con.execute("DELETE FROM ref_sectors WHERE date = ?", [day])
        tables = {
            "ref_instruments": pa.table(
                {
                    "date": pa.array([day] * len(details), pa.date32()),
                    "code": [c for c, _ in details],
                    "detail": [d for _, d in details],
                }
            ),
            "ref_sectors": pa.table(
                {
                    "date": pa.array([day] * len(members), pa.date32()),
                    "sector": [s for s, _ in members],
                    "code": [c for _, c in members],
                }
            ),
        }
        if days:
            con.execute("DELETE FROM ref_calendar WHERE market = 'SH'")
            tables["ref_calendar"] = pa.table(
                {"market": ["SH"] * len(days), "day": pa.array(days, pa.date32())}
            )
        for name, table in tables.items():
            if table.num_rows:
                con.register("ref_batch", table)
                try:
                    con.execute(f"INSERT INTO {name} SELECT * FROM ref_batch")
                finally:
                    con.unregister("ref_batch")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def recorded_days(con: Any) -> set[dt.date]:
    """Days whose reference data is stored already."""
    return {r[0] for r in con.execute("SELECT DISTINCT date FROM ref_instruments").fetchall()}
