"""Parse a batch's callMetadata.csv and tradeMetadata.csv: bytes in, typed rows and errors out.

Rules:

1. The file is UTF-8; a leading byte-order mark is ignored. Bytes that are not UTF-8, or a
   file with no header line, raise CsvHeaderError: nothing of such a file is used.
2. The delimiter is read from the header line: whichever of ``,`` ``;`` and tab occurs most
   there (``,`` wins ties and a one-column header). Fields may be quoted the usual CSV way
   (``"a;b"``, ``""`` for a quote), including line breaks inside quotes.
3. Header names are matched case-insensitively, ignoring surrounding spaces, and ignoring
   ``_``, ``-`` and inner spaces: ``audioName``, ``AUDIO_NAME`` and ``Audio Name`` are one
   column. Every required column must be present (callMetadata: audioName, clientCode,
   agentId, callStartTime, callEndTime; tradeMetadata: tradeId, clientCode, symbol, side,
   quantity, price, tradeTime). A missing one, or two headers that name the same column
   (required or not), raise CsvHeaderError naming them. Blank header cells (a trailing
   delimiter, as spreadsheets write) are ignored with whatever is under them.
4. Columns that are not required are kept in ``extra``, keyed by the header as written (spaces
   around it stripped), so nothing the batch sent is lost.
5. Every value has surrounding whitespace stripped (str.strip). Required values may not be
   empty; callEndTime alone may be (the call's end is then unknown, ``None``).
6. Date-times are ISO 8601 in the extended form with a time of day, seconds and fractions
   optional, with or without an offset: ``2026-11-22T10:15:00``, ``2026-11-22 10:15``,
   ``...Z``, ``...+05:30``; nothing else (no week dates, no dd/mm/yyyy). A value without
   an offset is wall-clock time in ``default_zone`` (an IANA name such as Asia/Kolkata; an
   ambiguous or skipped wall-clock time in a DST change takes zoneinfo's fold=0 reading).
   Every result is converted to UTC and returned naive, which is how the tables store it.
   A call that ends before it starts is a row error.
7. side is BUY or SELL, also B or S, any case; it is returned as "BUY" or "SELL".
   quantity and price are plain decimals (``1500``, ``12.50``, ``+3``, ``.5``) read as
   Decimal: quantity > 0, price >= 0. Commas are refused with an error that says so, because
   ``1,000`` could be a thousand or one (decimal comma); exponents, NaN and infinity are
   refused too.
8. A row with a bad value gets one RowError per bad value and is skipped; the other rows
   still parse. A row with more fields than the header (other than blank trailing ones) or
   fewer is one row-level RowError (column None). A row whose fields are all blank is
   skipped silently.
9. Keys are unique: the first accepted row with an audioName (callMetadata) or tradeId
   (tradeMetadata) wins; a later accepted row with the same key is a RowError naming the
   line of the first. A rejected row claims no key.
10. When ``known_audio`` is given, a callMetadata row whose audioName is not in it is a
    RowError ("not a file of this batch") and is skipped. Audio names are compared exactly
    as written (case-sensitive) after stripping spaces, as file systems compare them.
11. RowError.line is the 1-based physical line where the row starts (the header is line 1),
    counting the line breaks inside quoted fields.
12. Fields of any length parse (1 MB and more): csv's process-wide field size limit is raised
    while any parse runs and put back when the last one ends.
13. When ``limits`` is given (the store's column limits, cofid/domain/csv_limits.py), every
    value must fit its column: text at most the column's width in characters, quantity and
    price within DECIMAL(precision, scale) without rounding, date-times within the DATETIME
    range (fractions of a second beyond the column's are cut, as MariaDB does, so both
    databases read back the same). A value that does not fit is a RowError naming the
    column and the limit, never quoting a long value; the row is skipped, the rest loads.

This module says what the two files hold (rules 3, 5 for the files' columns, 8-10 for
their rows); cofid/domain/csv_reader.py reads any such file (rules 1-5, 8, 9, 11, 12) and
cofid/domain/csv_values.py holds the value rules (6, 7). Rows and errors name values by
the format's headers, which other systems write; the rest of cofid uses the field names.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Protocol
from zoneinfo import ZoneInfo

from cofid.domain import csv_values
from cofid.domain.csv_limits import NO_LIMITS, ColumnLimits
from cofid.domain.csv_reader import (
    Built,
    CsvFormat,
    CsvHeaderError,
    Fields,
    ParsedCsv,
    RowError,
    read_rows,
)
from cofid.domain.csv_values import preview

__all__ = [
    "CALL_CSV",
    "TRADE_CSV",
    "CallMetaRow",
    "CsvFormat",
    "CsvHeaderError",
    "ParsedCsv",
    "RowError",
    "TradeRow",
    "parse_call_metadata",
    "parse_datetime",
    "parse_trade_metadata",
]

# The input file format: each file's name and required headers (rule 3), by the field
# names of its row type. The headers belong to the files a batch brings, not to the tables.
CALL_CSV = CsvFormat(
    "callMetadata",
    MappingProxyType(
        {
            "audio_name": "audioName",
            "client_code": "clientCode",
            "agent_id": "agentId",
            "call_start": "callStartTime",
            "call_end": "callEndTime",
        }
    ),
)
TRADE_CSV = CsvFormat(
    "tradeMetadata",
    MappingProxyType(
        {
            "trade_id": "tradeId",
            "client_code": "clientCode",
            "symbol": "symbol",
            "side": "side",
            "quantity": "quantity",
            "price": "price",
            "trade_time": "tradeTime",
        }
    ),
)


@dataclass(frozen=True)
class CallMetaRow:
    audio_name: str
    client_code: str
    agent_id: str
    call_start: datetime
    call_end: datetime | None
    extra: dict[str, str]


@dataclass(frozen=True)
class TradeRow:
    trade_id: str
    client_code: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    trade_time: datetime
    extra: dict[str, str]


def parse_call_metadata(
    data: bytes,
    *,
    default_zone: str = "UTC",
    known_audio: Collection[str] | None = None,
    limits: ColumnLimits = NO_LIMITS,
) -> ParsedCsv[CallMetaRow]:
    zone = csv_values.zone(default_zone)
    known = None if known_audio is None else frozenset(name.strip() for name in known_audio)
    text, time_of = _text_rule(limits), _time_rule(limits, zone)

    def build(fields: Fields, extra: dict[str, str]) -> Built[CallMetaRow]:
        audio_name = text(fields, "audio_name")
        client_code = text(fields, "client_code")
        agent_id = text(fields, "agent_id")
        start = time_of(fields, "call_start")
        end = time_of(fields, "call_end", optional=True)
        if start is not None and end is not None and end < start:
            written_end, written_start = fields.values["call_end"], fields.values["call_start"]
            fields.error(
                "call_end",
                written_end,
                f"{fields.header('call_end')}: {preview(written_end)} is before "
                f"{fields.header('call_start')} {preview(written_start)}",
            )
        if audio_name and known is not None and audio_name not in known:
            fields.error(
                "audio_name",
                audio_name,
                f"{fields.header('audio_name')} {preview(audio_name)} is not a file of this batch",
            )
        if fields.errors:
            return Built(None, "audio_name", audio_name, fields.errors)
        assert start is not None
        row = CallMetaRow(audio_name, client_code, agent_id, start, end, extra)
        return Built(row, "audio_name", audio_name, fields.errors)

    return read_rows(data, CALL_CSV, build)


def parse_trade_metadata(
    data: bytes, *, default_zone: str = "UTC", limits: ColumnLimits = NO_LIMITS
) -> ParsedCsv[TradeRow]:
    zone = csv_values.zone(default_zone)
    text, time_of = _text_rule(limits), _time_rule(limits, zone)

    def quantity_of(value: str) -> Decimal:
        number = csv_values.decimal(value, minimum_exclusive=True)
        return limits.amount("quantity", number, value)

    def price_of(value: str) -> Decimal:
        return limits.amount("price", csv_values.decimal(value, minimum_exclusive=False), value)

    def side_of(value: str) -> str:
        return limits.text("side", csv_values.side(value))

    def build(fields: Fields, extra: dict[str, str]) -> Built[TradeRow]:
        trade_id = text(fields, "trade_id")
        client_code = text(fields, "client_code")
        symbol = text(fields, "symbol")
        side = fields.convert("side", side_of)
        quantity = fields.convert("quantity", quantity_of)
        price = fields.convert("price", price_of)
        trade_time = time_of(fields, "trade_time")
        if fields.errors:
            return Built(None, "trade_id", trade_id, fields.errors)
        assert side is not None and quantity is not None and price is not None
        assert trade_time is not None
        row = TradeRow(trade_id, client_code, symbol, side, quantity, price, trade_time, extra)
        return Built(row, "trade_id", trade_id, fields.errors)

    return read_rows(data, TRADE_CSV, build)


def _text_rule(limits: ColumnLimits) -> Callable[[Fields, str], str]:
    """A required text value that fits its column (rules 5 and 13); "" when refused."""

    def text(fields: Fields, name: str) -> str:
        value = fields.convert(name, lambda v: limits.text(name, v))
        return value if value is not None else ""

    return text


class _TimeRule(Protocol):
    def __call__(self, fields: Fields, name: str, *, optional: bool = False) -> datetime | None: ...


def _time_rule(limits: ColumnLimits, zone: ZoneInfo) -> _TimeRule:
    """A date-time value (rule 6) that fits its column (rule 13)."""

    def time_of(fields: Fields, name: str, *, optional: bool = False) -> datetime | None:
        def parse(value: str) -> datetime:
            return limits.time(name, csv_values.to_utc(value, zone), value)

        return fields.convert(name, parse, optional=optional)

    return time_of


def parse_datetime(value: str, default_zone: str) -> datetime:
    """One ISO 8601 date-time as naive UTC (rule 6). Raises ValueError saying what is wrong."""
    return csv_values.to_utc(value, csv_values.zone(default_zone))
