"""Column types and defaults shared by the table definitions (cofid.store.tables)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

# Portable types with the MySQL spelling the seed's readers expect.
Flag = sa.SmallInteger().with_variant(mysql.TINYINT(), "mysql")
Millis = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql")
Seconds = sa.DateTime().with_variant(mysql.DATETIME(), "mysql")
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql")


class ExactMoney(sa.types.TypeDecorator[Decimal]):
    """DECIMAL(20, 6) on MySQL/MariaDB; exact text on SQLite.

    SQLite has no decimal type: a NUMERIC column turns '99999999999999.999999' into a REAL
    (15 significant digits, read back as 100000000000000), and SQLAlchemy's Numeric binds a
    float. There the value is stored as its canonical text at the column's scale
    ('1500.000000', TEXT affinity, no conversion) and read back as that Decimal, which is
    what MariaDB returns too. Digits past the scale round as MariaDB rounds them (CSV values
    never have any: cofid/domain/csv_limits.py refuses them); a value too large for the
    column raises (cofid/domain/replies.py and csv_limits.py refuse those first).
    """

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int = 20, scale: int = 6) -> None:
        super().__init__(precision, scale)
        # Kept here too: on SQLite the dialect's copy of this type wraps a String.
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(self.precision + 2))
        return dialect.type_descriptor(sa.Numeric(self.precision, self.scale))

    def _exact(self, value: Any) -> Decimal:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        with localcontext() as ctx:
            ctx.prec = self.precision + 2
            # Digits past the scale round half away from zero, as MySQL/MariaDB round them.
            exact = number.quantize(Decimal(1).scaleb(-self.scale), rounding=ROUND_HALF_UP)
        if abs(exact) >= Decimal(10) ** (self.precision - self.scale):
            raise ValueError(f"{number} does not fit DECIMAL({self.precision},{self.scale})")
        return exact

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return format(self._exact(value), "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name != "sqlite":
            return value if isinstance(value, Decimal) else Decimal(str(value))
        # A database made before this type holds REALs (NUMERIC affinity): str() of the
        # float is its shortest spelling, the best that can be read back from it.
        return self._exact(value)


Money = ExactMoney()

def utcnow() -> datetime:
    """The one clock of stored timestamps: UTC, naive (the seed's DATETIME columns)."""
    return datetime.now(UTC).replace(tzinfo=None)


class _UtcTimestampMillis(FunctionElement):
    """The server default of a timestamp column, in UTC whatever the server's zone, for
    rows other writers insert without one (cofid always writes the value itself):
    (UTC_TIMESTAMP(3)) on MySQL/MariaDB (an expression default: MySQL 8.0.13+, MariaDB
    10.2+; CURRENT_TIMESTAMP would be the session's local time), CURRENT_TIMESTAMP on
    SQLite (which is UTC there)."""

    type = sa.DateTime()
    inherit_cache = True


@compiles(_UtcTimestampMillis)
def _ts_default(element, compiler, **kw):  # noqa: ARG001
    return "CURRENT_TIMESTAMP"


@compiles(_UtcTimestampMillis, "mysql")
def _ts_mysql(element, compiler, **kw):  # noqa: ARG001
    return "(UTC_TIMESTAMP(3))"


def now_default() -> FunctionElement:
    return _UtcTimestampMillis()


def utc_timestamp(name: str, *, updated: bool = False) -> sa.Column:
    """A NOT NULL DATETIME(3) that cofid fills with utcnow() on every INSERT (and, with
    `updated`, on every UPDATE of the row), the UTC server default behind it."""
    return sa.Column(name, Millis, nullable=False, default=utcnow,
                     onupdate=utcnow if updated else None, server_default=now_default())
