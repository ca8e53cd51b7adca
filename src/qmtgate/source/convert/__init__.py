"""Pure conversions from xtquant's shapes and units to qmtgate's normalized schema.

xtquant speaks camelCase, stamps everything in epoch milliseconds, reports volume in 手 (lots of 100 shares)
and pads missing values with 0 or with DBL_MAX/INT_MAX sentinels. The normalized schema that the REST API
serves is snake_case, keeps ``ts`` in epoch ms (UTC) next to exchange-local time (Asia/Shanghai), reports
volume in **shares** and amounts in **yuan**, and uses null for anything missing (a 0 price would be a
real-looking lie). Everything here is a pure function of its arguments: no I/O, no clocks, no xtdata.

One module per concern; this package re-exports what the rest of the server uses:

* ``values``: scalar cleaning (no-value markers to None, lots to shares, China-time dates and text);
* ``schemas``: the normalized columns with their units, and the Arrow types of snapshot rows;
* ``bars``: K-line bars (:class:`Bars`), bars from ticks, pushed bars to rows, bars to Arrow;
* ``ticks``: snapshots, one tick (:func:`tick_row`) or a whole burst column-wise (:class:`TickColumns`);
* ``reference``: instrument details, dividends, calendar days.

The xtquant vocabulary itself (time zone, periods, K-line fields and dtypes, the lot) lives in the leaf
module :mod:`qmtgate.vocab`, which the client shares.
"""

from qmtgate.source.convert.bars import Bars, bar_row, bars_from_ticks, bars_table, tail_parts
from qmtgate.source.convert.reference import DETAIL_SCHEMA, dates_table, detail_row, dividend_table
from qmtgate.source.convert.schemas import (
    DIVIDEND_SCHEMA,
    KLINE_FIELDS,
    KLINE_FROM_XT,
    KLINE_SCHEMA,
    SNAPSHOT_ARROW_TYPES,
    SNAPSHOT_FIELDS,
    SNAPSHOT_SCHEMA,
)
from qmtgate.source.convert.ticks import TickColumns, rows_table, tick_row, tick_rows
from qmtgate.source.convert.values import DBL_MAX, INT_MAX, date_of_ms, day_start_ms, local_iso_one

__all__ = [
    "DBL_MAX",
    "DETAIL_SCHEMA",
    "DIVIDEND_SCHEMA",
    "INT_MAX",
    "KLINE_FIELDS",
    "KLINE_FROM_XT",
    "KLINE_SCHEMA",
    "SNAPSHOT_ARROW_TYPES",
    "SNAPSHOT_FIELDS",
    "SNAPSHOT_SCHEMA",
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
    "local_iso_one",
    "rows_table",
    "tail_parts",
    "tick_row",
    "tick_rows",
]
