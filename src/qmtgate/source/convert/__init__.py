"""Pure conversions from xtquant's shapes and units to qmtgate's normalized schema.

xtquant speaks camelCase, stamps everything in epoch milliseconds, reports volume in 手 (lots of 100 shares)
and pads missing values with 0 or with DBL_MAX/INT_MAX sentinels. The normalized schema that the REST API
serves is snake_case, keeps ``ts`` in epoch ms (UTC) next to exchange-local time (Asia/Shanghai), reports
volume in **shares** and amounts in **yuan**, and uses null for anything missing (a 0 price would be a
real-looking lie). Everything here is a pure function of its arguments: no I/O, no clocks, no xtdata.

One module per topic (issue 18): :mod:`.schema` (normalized columns and units, sentinels, time helpers),
:mod:`.bars` (K-lines), :mod:`.ticks` (snapshots, the column-wise burst conversion, pushed bars) and
:mod:`.reference` (instrument details, dividends, calendars). The client-side vocabulary (China time,
markets, periods, K-line fields and dtypes) lives in the leaf module :mod:`qmtgate.vocab` (so
``qmtgate.client`` loads no server code) and is re-exported here with the rest, where the server modules
have always imported it from.
"""

from qmtgate.source.convert.bars import Bars, bars_from_ticks, bars_table, tail_parts
from qmtgate.source.convert.reference import DETAIL_SCHEMA, dates_table, detail_row, dividend_table
from qmtgate.source.convert.schema import (
    DBL_MAX,
    DIVIDEND_SCHEMA,
    INT_MAX,
    KLINE_FIELDS,
    KLINE_FROM_XT,
    KLINE_SCHEMA,
    SNAPSHOT_FIELDS,
    SNAPSHOT_SCHEMA,
    date_of_ms,
    day_start_ms,
    local_iso_one,
)
from qmtgate.source.convert.ticks import (
    SNAPSHOT_ARROW_TYPES,
    TickColumns,
    bar_row,
    rows_table,
    tick_row,
    tick_rows,
)
from qmtgate.vocab import (
    CST,
    CST_OFFSET_MS,
    DAILY_PERIODS,
    LOT,
    MS_PER_DAY,
    XT_KLINE_DTYPES,
    XT_KLINE_FIELDS,
    labels,
    local_iso,
)

__all__ = [
    "CST",
    "CST_OFFSET_MS",
    "DAILY_PERIODS",
    "DBL_MAX",
    "DETAIL_SCHEMA",
    "DIVIDEND_SCHEMA",
    "INT_MAX",
    "KLINE_FIELDS",
    "KLINE_FROM_XT",
    "KLINE_SCHEMA",
    "LOT",
    "MS_PER_DAY",
    "SNAPSHOT_ARROW_TYPES",
    "SNAPSHOT_FIELDS",
    "SNAPSHOT_SCHEMA",
    "XT_KLINE_DTYPES",
    "XT_KLINE_FIELDS",
    "Bars",
    "TickColumns",
    "bar_row",
    "bars_from_ticks",
    "bars_table",
    "date_of_ms",
    "dates_table",
    "day_start_ms",
    "detail_row",
    "dividend_table",
    "labels",
    "local_iso",
    "local_iso_one",
    "rows_table",
    "tail_parts",
    "tick_row",
    "tick_rows",
]
