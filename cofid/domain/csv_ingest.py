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
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

T = TypeVar("T")

CALL_METADATA = "callMetadata"
TRADE_METADATA = "tradeMetadata"

CALL_COLUMNS: tuple[str, ...] = (
    "audioName",
    "clientCode",
    "agentId",
    "callStartTime",
    "callEndTime",
)
TRADE_COLUMNS: tuple[str, ...] = (
    "tradeId",
    "clientCode",
    "symbol",
    "side",
    "quantity",
    "price",
    "tradeTime",
)

_DELIMITERS = (",", ";", "\t")
_SIDES = {"BUY": "BUY", "B": "BUY", "SELL": "SELL", "S": "SELL"}
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?",
    re.ASCII,
)
# Big enough for any field, small enough for a C long on every platform.
_FIELD_LIMIT = 2**31 - 1


class CsvHeaderError(ValueError):
    """The file cannot be read at all: not UTF-8, no header, a missing or duplicated column."""


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


@dataclass(frozen=True)
class RowError:
    line: int
    column: str | None
    value: str | None
    message: str


@dataclass(frozen=True)
class ParsedCsv(Generic[T]):
    rows: list[T]
    errors: list[RowError]


def parse_call_metadata(
    data: bytes,
    *,
    default_zone: str = "UTC",
    known_audio: Collection[str] | None = None,
) -> ParsedCsv[CallMetaRow]:
    zone = _zone(default_zone)
    known = None if known_audio is None else frozenset(name.strip() for name in known_audio)

    def build(line: int, values: dict[str, str], extra: dict[str, str]) -> _Built:
        errors: list[RowError] = []
        fields = _Fields(line, values, errors)
        audio_name = fields.required("audioName")
        client_code = fields.required("clientCode")
        agent_id = fields.required("agentId")
        start = fields.convert("callStartTime", lambda v: _to_utc(v, zone))
        end = fields.convert("callEndTime", lambda v: _to_utc(v, zone), optional=True)
        if start is not None and end is not None and end < start:
            errors.append(
                RowError(
                    line,
                    "callEndTime",
                    values["callEndTime"],
                    f"callEndTime: {_preview(values['callEndTime'])} is before callStartTime "
                    f"{_preview(values['callStartTime'])}",
                )
            )
        if audio_name and known is not None and audio_name not in known:
            errors.append(
                RowError(
                    line,
                    "audioName",
                    audio_name,
                    f"audioName {_preview(audio_name)} is not a file of this batch",
                )
            )
        if errors:
            return _Built(None, "audioName", audio_name, errors)
        assert start is not None
        row = CallMetaRow(audio_name, client_code, agent_id, start, end, extra)
        return _Built(row, "audioName", audio_name, errors)

    return _parse(data, CALL_METADATA, CALL_COLUMNS, build)


def parse_trade_metadata(data: bytes, *, default_zone: str = "UTC") -> ParsedCsv[TradeRow]:
    zone = _zone(default_zone)

    def build(line: int, values: dict[str, str], extra: dict[str, str]) -> _Built:
        errors: list[RowError] = []
        fields = _Fields(line, values, errors)
        trade_id = fields.required("tradeId")
        client_code = fields.required("clientCode")
        symbol = fields.required("symbol")
        side = fields.convert("side", _side)
        quantity = fields.convert("quantity", lambda v: _decimal(v, minimum_exclusive=True))
        price = fields.convert("price", lambda v: _decimal(v, minimum_exclusive=False))
        trade_time = fields.convert("tradeTime", lambda v: _to_utc(v, zone))
        if errors:
            return _Built(None, "tradeId", trade_id, errors)
        assert side is not None and quantity is not None and price is not None
        assert trade_time is not None
        row = TradeRow(trade_id, client_code, symbol, side, quantity, price, trade_time, extra)
        return _Built(row, "tradeId", trade_id, errors)

    return _parse(data, TRADE_METADATA, TRADE_COLUMNS, build)


def parse_datetime(value: str, default_zone: str) -> datetime:
    """One ISO 8601 date-time as naive UTC (rule 6). Raises ValueError saying what is wrong."""
    return _to_utc(value, _zone(default_zone))


# -- the row loop ---------------------------------------------------------------------------


@dataclass
class _Built:
    row: object | None
    key_column: str
    key: str
    errors: list[RowError]


_Builder = Callable[[int, dict[str, str], dict[str, str]], _Built]


def _parse(data: bytes, kind: str, required: tuple[str, ...], build: _Builder) -> ParsedCsv:
    text = _decode(data, kind)
    first_line = re.match(r"[^\r\n]*", text).group()  # csv ends lines at \r and \n only
    if not first_line.strip():
        raise CsvHeaderError(f"{kind}.csv has no header line (the file or its first line is empty)")
    delimiter = _sniff_delimiter(first_line)
    rows: list = []
    errors: list[RowError] = []
    first_seen: dict[str, int] = {}
    with _large_fields():
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            header = next(reader)
        except csv.Error as exc:
            raise CsvHeaderError(f"{kind}.csv header cannot be read: {exc}") from None
        columns = _map_header(header, kind, required)
        for line, record in _records(reader, errors):
            if not any(cell.strip() for cell in record):
                continue
            split = _split_record(line, record, columns, len(header))
            if isinstance(split, RowError):
                errors.append(split)
                continue
            built = build(line, *split)
            errors.extend(built.errors)
            if built.row is None:
                continue
            if built.key in first_seen:
                errors.append(
                    RowError(
                        line,
                        built.key_column,
                        built.key,
                        f"duplicate {built.key_column} {_preview(built.key)}, "
                        f"first on line {first_seen[built.key]}",
                    )
                )
                continue
            first_seen[built.key] = line
            rows.append(built.row)
    return ParsedCsv(rows, errors)


def _records(reader, errors: list[RowError]) -> Iterator[tuple[int, list[str]]]:
    """(first physical line, fields) for each record after the header."""
    while True:
        line = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # Not seen with non-strict dialects and raised limits, but a reader that fails
            # cannot be trusted to resynchronise: report where, keep the rows already read.
            errors.append(
                RowError(line, None, None, f"CSV syntax error, rest of file unread: {exc}")
            )
            return
        yield line, record


def _decode(data: bytes, kind: str) -> str:
    # The BOM is cut here rather than by "utf-8-sig", whose error offsets skip it.
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = bom + exc.start
        raise CsvHeaderError(
            f"{kind}.csv is not UTF-8 text: byte 0x{data[offset]:02x} at offset {offset} "
            f"cannot be decoded ({exc.reason})"
        ) from None


def _sniff_delimiter(header_line: str) -> str:
    counts = [(header_line.count(d), -i, d) for i, d in enumerate(_DELIMITERS)]
    count, _, delimiter = max(counts)
    return delimiter if count else ","


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).casefold()


@dataclass(frozen=True)
class _Columns:
    required: dict[int, str]  # field index -> canonical required name
    extra: dict[int, str]  # field index -> header as written


def _map_header(header: list[str], kind: str, required: tuple[str, ...]) -> _Columns:
    canonical = {_normalise(name): name for name in required}
    seen: dict[str, list[str]] = {}
    required_at: dict[int, str] = {}
    extra_at: dict[int, str] = {}
    for index, raw in enumerate(header):
        written = raw.strip()
        if not written:
            continue
        key = _normalise(written)
        seen.setdefault(key, []).append(written)
        if key in canonical:
            required_at[index] = canonical[key]
        else:
            extra_at[index] = written
    duplicated = [names for names in seen.values() if len(names) > 1]
    if duplicated:
        described = "; ".join(" and ".join(_preview(n) for n in names) for names in duplicated)
        raise CsvHeaderError(f"{kind}.csv has duplicated columns: {described}")
    missing = [name for name in required if name not in required_at.values()]
    if missing:
        raise CsvHeaderError(
            f"{kind}.csv is missing required columns: {', '.join(missing)} "
            f"(header read: {', '.join(_preview(h.strip()) for h in header[:30])})"
        )
    return _Columns(required_at, extra_at)


def _split_record(
    line: int, record: list[str], columns: _Columns, width: int
) -> tuple[dict[str, str], dict[str, str]] | RowError:
    if len(record) > width and any(cell.strip() for cell in record[width:]):
        return RowError(line, None, None, f"row has {len(record)} fields, the header has {width}")
    if len(record) < width:
        return RowError(line, None, None, f"row has {len(record)} fields, the header has {width}")
    values = {name: record[i].strip() for i, name in columns.required.items()}
    extra = {name: record[i].strip() for i, name in columns.extra.items()}
    return values, extra


class _Fields:
    """Reads one row's required values, recording a RowError for each bad one."""

    def __init__(self, line: int, values: dict[str, str], errors: list[RowError]) -> None:
        self._line = line
        self._values = values
        self._errors = errors

    def required(self, column: str) -> str:
        value = self._values[column]
        if not value:
            self._errors.append(RowError(self._line, column, value, f"{column}: value is empty"))
        return value

    def convert(
        self, column: str, parse: Callable[[str], T], *, optional: bool = False
    ) -> T | None:
        value = self._values[column]
        if not value:
            if not optional:
                self._errors.append(
                    RowError(self._line, column, value, f"{column}: value is empty")
                )
            return None
        try:
            return parse(value)
        except ValueError as exc:
            self._errors.append(RowError(self._line, column, value, f"{column}: {exc}"))
            return None


# -- value rules ----------------------------------------------------------------------------


def _preview(value: str, limit: int = 60) -> str:
    """repr of a value for a message, cut short: a cell may hold a megabyte."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value)} chars)"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown time zone {name!r} (expected an IANA name such as Asia/Kolkata)"
        ) from None


def _to_utc(value: str, zone: ZoneInfo) -> datetime:
    text = value.strip()
    problem = f"{_preview(value)} is not an ISO 8601 date-time"
    if not _ISO_DATETIME.fullmatch(text):
        hint = " (no time of day)" if _ISO_DATE.fullmatch(text) or not text else ""
        raise ValueError(problem + hint)
    try:
        parsed = datetime.fromisoformat(text)  # checks the ranges: month 13, hour 25
    except ValueError:
        raise ValueError(problem) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        return parsed.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError(f"{_preview(value)} is out of the representable range in UTC") from None


def _side(value: str) -> str:
    # isascii: str.upper() maps some letters onto ASCII ones ("\u017f".upper() == "S").
    side = _SIDES.get(value.upper()) if value.isascii() else None
    if side is None:
        raise ValueError(f"{_preview(value)} is not BUY or SELL (B and S are accepted too)")
    return side


def _decimal(value: str, *, minimum_exclusive: bool) -> Decimal:
    if "," in value:
        raise ValueError(
            f"{_preview(value)} contains ',': thousands separators and decimal commas are not accepted "
            "(write 1500 or 12.50)"
        )
    if not _PLAIN_DECIMAL.fullmatch(value):
        raise ValueError(f"{_preview(value)} is not a plain decimal number")
    number = Decimal(value)
    if minimum_exclusive and number <= 0:
        raise ValueError(f"{_preview(value)} must be greater than 0")
    if not minimum_exclusive and number < 0:
        raise ValueError(f"{_preview(value)} must not be negative")
    return number


# -- csv's process-wide field size limit ----------------------------------------------------

_limit_lock = threading.Lock()
_limit_users = 0
_limit_saved = 0


@contextmanager
def _large_fields() -> Iterator[None]:
    """Raise csv.field_size_limit while any parse runs (it is global, and stores parse in
    worker threads: restoring it under a parse still running would break that parse)."""
    global _limit_users, _limit_saved
    with _limit_lock:
        if _limit_users == 0:
            _limit_saved = csv.field_size_limit(_FIELD_LIMIT)
        _limit_users += 1
    try:
        yield
    finally:
        with _limit_lock:
            _limit_users -= 1
            if _limit_users == 0:
                csv.field_size_limit(_limit_saved)
