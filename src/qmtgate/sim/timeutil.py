"""Exchange time: Asia/Shanghai wall clock, epoch-ms conversions and the intraday snapshot slot grid.

Everything the simulator stamps is epoch milliseconds (UTC), as xtquant does; conversions to the
exchange's local time always name Asia/Shanghai explicitly, never the host's zone.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np

CST = ZoneInfo("Asia/Shanghai")
MS_PER_DAY = 86_400_000
#: Asia/Shanghai has had no DST since 1991, so a fixed offset is exact for every date we generate.
CST_OFFSET_MS = 8 * 3_600_000

SNAPSHOT_SECONDS = 3


def hms(h: int, m: int, s: int = 0) -> int:
    """Seconds of day for a wall-clock time."""
    return h * 3600 + m * 60 + s


OPEN_AUCTION_START = hms(9, 15)
OPEN_AUCTION_MATCH = hms(9, 25)
AM_OPEN = hms(9, 30)
AM_CLOSE = hms(11, 30)
PM_OPEN = hms(13, 0)
CONTINUOUS_CLOSE = hms(14, 57)
CLOSE = hms(15, 0)

#: Snapshot slot grid of one trading day (seconds of day). A snapshot at t covers trades in (t-3 s, t].
AUCTION_SLOTS = np.arange(OPEN_AUCTION_START, OPEN_AUCTION_MATCH, SNAPSHOT_SECONDS, dtype=np.int32)  # 200
AM_SLOTS = np.arange(AM_OPEN + 3, AM_CLOSE + 1, SNAPSHOT_SECONDS, dtype=np.int32)  # 2400
PM_SLOTS = np.arange(PM_OPEN + 3, CONTINUOUS_CLOSE + 1, SNAPSHOT_SECONDS, dtype=np.int32)  # 2340
CONTINUOUS_SLOTS = np.concatenate([AM_SLOTS, PM_SLOTS])  # 4740
N_CONT = len(CONTINUOUS_SLOTS)

#: 16 segments of continuous trading (15 min each; the last one 14:45-14:57 is 12 min). The daily model
#: draws prices at segment boundaries ("knots"); the intraday model fills each segment's 3 s path.
SEG_LEN = 300
N_SEG = 16
SEG_BOUNDS = np.array([i * SEG_LEN for i in range(N_SEG)] + [N_CONT], dtype=np.int64)
SEG_SIZES = np.diff(SEG_BOUNDS)

#: One-minute bar labels of a day (241 bars): 09:30 carries the opening auction, then bar-end times.
MINUTE_LABELS = np.concatenate(
    [
        [AM_OPEN],
        np.arange(AM_OPEN + 60, AM_CLOSE + 1, 60),
        np.arange(PM_OPEN + 60, CLOSE + 1, 60),
    ]
).astype(np.int32)


def day_start_ms(day: dt.date) -> int:
    """Epoch ms of 00:00 Asia/Shanghai on ``day`` (the `time` of a daily bar)."""
    return (day.toordinal() - dt.date(1970, 1, 1).toordinal()) * MS_PER_DAY - CST_OFFSET_MS


def ms_of(day: dt.date, seconds_of_day: int) -> int:
    return day_start_ms(day) + seconds_of_day * 1000


def ms_to_cst(ms: int) -> dt.datetime:
    """Epoch ms -> aware datetime in Asia/Shanghai."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=CST)


def cst_date_of_ms(ms: int) -> dt.date:
    return dt.date.fromordinal(dt.date(1970, 1, 1).toordinal() + (ms + CST_OFFSET_MS) // MS_PER_DAY)


def seconds_of_day_of_ms(ms: int) -> float:
    return ((ms + CST_OFFSET_MS) % MS_PER_DAY) / 1000.0


def datetime_to_ms(value: dt.datetime) -> int:
    """Aware datetimes keep their zone; naive ones are read as Asia/Shanghai (the exchange's clock)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=CST)
    return int(value.timestamp() * 1000)


def parse_timetag(text: str) -> int:
    """'YYYYMMDD' or 'YYYYMMDDHHMMSS' (Asia/Shanghai) -> epoch ms. Raises ValueError on bad input."""
    text = text.strip()
    if len(text) == 8 and text.isdigit():
        return datetime_to_ms(dt.datetime.strptime(text, "%Y%m%d"))
    if len(text) == 14 and text.isdigit():
        return datetime_to_ms(dt.datetime.strptime(text, "%Y%m%d%H%M%S"))
    raise ValueError(f"bad time string {text!r}: expected YYYYMMDD or YYYYMMDDHHMMSS")


def format_ms(ms: int, fmt: str) -> str:
    return ms_to_cst(ms).strftime(fmt)


def labels_from_ms(times_ms: np.ndarray, daily: bool) -> list[str]:
    """Vectorised xtquant index labels: 'YYYYMMDD' (daily and longer) or 'YYYYMMDDHHMMSS'."""
    if len(times_ms) == 0:
        return []
    local = (np.asarray(times_ms, dtype=np.int64) + CST_OFFSET_MS).astype("datetime64[ms]")
    if daily:
        return [d.replace("-", "") for d in np.datetime_as_string(local, unit="D").tolist()]
    text = np.datetime_as_string(local, unit="s")
    return [s[0:4] + s[5:7] + s[8:10] + s[11:13] + s[14:16] + s[17:19] for s in text.tolist()]
