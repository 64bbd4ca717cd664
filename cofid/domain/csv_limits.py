"""What the table columns behind a batch CSV can hold, as plain data (csv_ingest rule 13).

The store builds these limits from its table definitions (cofid/store/column_limits.py),
so they cannot drift from the schema; the domain only checks values against them. A value
that does not fit is a row error naming the column and the limit, never the value when it
is long: a database must never be the one to refuse it (MariaDB fails the whole statement,
SQLite silently stores something else).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation, localcontext

from cofid.domain.csv_values import preview


@dataclass(frozen=True)
class DecimalLimit:
    """A DECIMAL(precision, scale) column: at most precision - scale digits before the
    point and scale after it."""

    precision: int
    scale: int

    def check(self, value: Decimal, written: str) -> Decimal:
        """`value` at the column's scale, exactly; ValueError when it would need rounding
        or does not fit."""
        whole = self.precision - self.scale
        if abs(value) >= Decimal(10) ** whole:
            raise ValueError(
                f"{preview(written, 40)} has more than {whole} digits before the decimal point "
                f"(the column holds DECIMAL({self.precision},{self.scale}))"
            )
        with localcontext() as ctx:
            ctx.prec = self.precision + 2  # enough for any value below 10**whole
            try:
                exact = value.quantize(Decimal(1).scaleb(-self.scale))
            except InvalidOperation:  # pragma: no cover - the magnitude was checked above
                raise ValueError(f"{preview(written, 40)} does not fit the column") from None
        if exact != value:
            raise ValueError(
                f"{preview(written, 40)} has more than {self.scale} digits after the decimal "
                f"point; it would be rounded (the column holds DECIMAL({self.precision},"
                f"{self.scale}))"
            )
        return exact


@dataclass(frozen=True)
class TimeLimit:
    """A DATETIME column: the range it holds and how many digits of a second it keeps."""

    earliest: datetime
    latest: datetime
    fraction_digits: int = 0

    def check(self, value: datetime, written: str) -> datetime:
        """`value` cut to the column's fraction of a second (what MariaDB keeps, and SQLite
        then keeps too, so both read back the same); ValueError outside the range."""
        if not self.earliest <= value <= self.latest:
            raise ValueError(
                f"{preview(written, 40)} is outside the range the column holds "
                f"({self.earliest.isoformat(sep=' ')} to {self.latest.isoformat(sep=' ')} UTC)"
            )
        keep = 10 ** (6 - min(max(self.fraction_digits, 0), 6))
        return value.replace(microsecond=value.microsecond - value.microsecond % keep)


@dataclass(frozen=True)
class ColumnLimits:
    """The limits of one file's row fields (by the row type's field names): widths of the
    text columns in characters, DECIMAL shapes, DATETIME ranges."""

    widths: Mapping[str, int] = field(default_factory=dict)
    decimals: Mapping[str, DecimalLimit] = field(default_factory=dict)
    times: Mapping[str, TimeLimit] = field(default_factory=dict)

    def text(self, name: str, value: str) -> str:
        width = self.widths.get(name)
        if width is not None and len(value) > width:
            # The length alone: a long cell may be anything, even a pasted secret.
            raise ValueError(f"{len(value)} characters, the column holds at most {width}")
        return value

    def amount(self, name: str, value: Decimal, written: str) -> Decimal:
        limit = self.decimals.get(name)
        return value if limit is None else limit.check(value, written)

    def time(self, name: str, value: datetime, written: str) -> datetime:
        limit = self.times.get(name)
        return value if limit is None else limit.check(value, written)


NO_LIMITS = ColumnLimits()


@dataclass(frozen=True)
class IntegerLimit:
    """An INTEGER column's range."""

    minimum: int
    maximum: int

    def problem(self, value: int) -> str | None:
        if self.minimum <= value <= self.maximum:
            return None
        return f"is outside the range the column holds ({self.minimum} to {self.maximum})"


@dataclass(frozen=True)
class BatchLimits:
    """Everything a batch directory's values must fit: each CSV's row fields, and the
    manifest's integers (process_id, category_mapping_id)."""

    call_metadata: ColumnLimits
    trade_metadata: ColumnLimits
    integers: Mapping[str, IntegerLimit]
