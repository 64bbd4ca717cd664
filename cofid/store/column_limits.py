"""The batch inputs' column limits, read off the table definitions (cofid/store/tables.py).

The domain checks every CSV value against these before a row is written
(cofid/domain/csv_limits.py); deriving them from the columns keeps the two from drifting:
widen a column and the check widens with it.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from cofid.domain.csv_ingest import CALL_CSV, TRADE_CSV, CsvFormat
from cofid.domain.csv_limits import (
    BatchLimits,
    ColumnLimits,
    DecimalLimit,
    IntegerLimit,
    TimeLimit,
)
from cofid.store import tables as t
from cofid.store.column_types import ExactMoney

# MySQL/MariaDB's DATETIME range (SQLite holds any; the stricter database decides).
DATETIME_EARLIEST = datetime(1000, 1, 1)
DATETIME_LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999)
# A signed 32-bit INTEGER, as MySQL/MariaDB hold it.
INTEGER_RANGE = (-(2**31), 2**31 - 1)

_MYSQL = mysql.dialect()
# Row fields whose column has another field name (cofid/store/batches.py writes them so).
_COLUMN_FIELD = {"call_start": "call_start_time", "call_end": "call_end_time"}


def column_limits(table_field: str, fmt: CsvFormat) -> ColumnLimits:
    """The limits of `fmt`'s fields in the columns of the same field names."""
    widths: dict[str, int] = {}
    decimals: dict[str, DecimalLimit] = {}
    times: dict[str, TimeLimit] = {}
    for name in fmt.headers:
        column = t.column_of(table_field, _COLUMN_FIELD.get(name, name))
        kind = column.type
        if isinstance(kind, ExactMoney):
            decimals[name] = DecimalLimit(kind.precision, kind.scale)
        elif isinstance(kind, sa.Numeric):
            decimals[name] = DecimalLimit(int(kind.precision or 0), int(kind.scale or 0))
        elif isinstance(kind, sa.String) and kind.length is not None:
            widths[name] = kind.length
        elif isinstance(kind, sa.DateTime):
            fsp = getattr(kind.dialect_impl(_MYSQL), "fsp", None) or 0
            times[name] = TimeLimit(DATETIME_EARLIEST, DATETIME_LATEST, fsp)
    return ColumnLimits(widths, decimals, times)


@cache
def batch_limits() -> BatchLimits:
    """The limits of a batch directory's values (built once: the tables do not change)."""
    integers = {
        name: IntegerLimit(*INTEGER_RANGE)
        for name in ("process_id", "category_mapping_id")
        if isinstance(t.column_of("batch_status", name).type, sa.Integer)
    }
    return BatchLimits(
        call_metadata=column_limits("call_metadata", CALL_CSV),
        trade_metadata=column_limits("trade_metadata", TRADE_CSV),
        integers=integers,
    )
