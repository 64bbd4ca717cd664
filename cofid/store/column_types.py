"""Column types and defaults shared by the table definitions (cofid.store.tables)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

# Portable types with the MySQL spelling the seed's readers expect.
Flag = sa.SmallInteger().with_variant(mysql.TINYINT(), "mysql")
Millis = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql")
Seconds = sa.DateTime().with_variant(mysql.DATETIME(), "mysql")
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql")
Money = sa.Numeric(20, 6)

class _CurrentTimestampMillis(FunctionElement):
    """CURRENT_TIMESTAMP(3) on MySQL (a DATETIME(3) default must match its precision),
    CURRENT_TIMESTAMP elsewhere."""

    type = sa.DateTime()
    inherit_cache = True


@compiles(_CurrentTimestampMillis)
def _ts_default(element, compiler, **kw):  # noqa: ARG001
    return "CURRENT_TIMESTAMP"


@compiles(_CurrentTimestampMillis, "mysql")
def _ts_mysql(element, compiler, **kw):  # noqa: ARG001
    return "CURRENT_TIMESTAMP(3)"


def now_default() -> FunctionElement:
    return _CurrentTimestampMillis()
