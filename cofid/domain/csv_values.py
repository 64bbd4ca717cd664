"""The value rules of the batch CSVs (cofid/domain/csv_ingest.py, rules 6 and 7).

Each parser takes one stripped cell and returns the typed value, or raises ValueError with
a message that names the problem (the row loop prefixes the column).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_SIDES = {"BUY": "BUY", "B": "BUY", "SELL": "SELL", "S": "SELL"}
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?",
    re.ASCII,
)


def preview(value: str, limit: int = 60) -> str:
    """repr of a value for a message, cut short: a cell may hold a megabyte."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value)} chars)"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown time zone {name!r} (expected an IANA name such as Asia/Kolkata)"
        ) from None


def to_utc(value: str, default_zone: ZoneInfo) -> datetime:
    """Rule 6: an ISO 8601 date-time as naive UTC; no offset means `default_zone`."""
    text = value.strip()
    problem = f"{preview(value)} is not an ISO 8601 date-time"
    if not _ISO_DATETIME.fullmatch(text):
        hint = " (no time of day)" if _ISO_DATE.fullmatch(text) or not text else ""
        raise ValueError(problem + hint)
    try:
        parsed = datetime.fromisoformat(text)  # checks the ranges: month 13, hour 25
    except ValueError:
        raise ValueError(problem) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=default_zone)
    try:
        return parsed.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError(f"{preview(value)} is out of the representable range in UTC") from None


def side(value: str) -> str:
    """Rule 7: BUY or SELL (B and S too, any case)."""
    # isascii: str.upper() maps some letters onto ASCII ones ("\u017f".upper() == "S").
    found = _SIDES.get(value.upper()) if value.isascii() else None
    if found is None:
        raise ValueError(f"{preview(value)} is not BUY or SELL (B and S are accepted too)")
    return found


def decimal(value: str, *, minimum_exclusive: bool) -> Decimal:
    """Rule 7: a plain decimal, > 0 when `minimum_exclusive`, else >= 0."""
    if "," in value:
        raise ValueError(
            f"{preview(value)} contains ',': thousands separators and decimal commas are not accepted "
            "(write 1500 or 12.50)"
        )
    if not _PLAIN_DECIMAL.fullmatch(value):
        raise ValueError(f"{preview(value)} is not a plain decimal number")
    number = Decimal(value)
    if minimum_exclusive and number <= 0:
        raise ValueError(f"{preview(value)} must be greater than 0")
    if not minimum_exclusive and number < 0:
        raise ValueError(f"{preview(value)} must not be negative")
    return number
