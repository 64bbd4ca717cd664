"""Reading one batch CSV into checked rows (cofid/domain/csv_ingest.py, rules 1-5, 8, 9, 11
and 12).

The reader knows a file's format (its name and required headers, by field name) but not
what a row means: each file's builder turns one record's values into a row or row errors.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from cofid.domain.csv_values import preview

T = TypeVar("T")
V = TypeVar("V")

_DELIMITERS = (",", ";", "\t")
# Big enough for any field, small enough for a C long on every platform.
_FIELD_LIMIT = 2**31 - 1


class CsvHeaderError(ValueError):
    """The file cannot be read at all: not UTF-8, no header, a missing or duplicated column."""


@dataclass(frozen=True)
class RowError:
    line: int
    column: str | None  # the header as the format names it; None: the whole row
    value: str | None
    message: str


@dataclass(frozen=True)
class ParsedCsv(Generic[T]):
    rows: list[T]
    errors: list[RowError]


@dataclass(frozen=True)
class CsvFormat:
    """One input file's format: its name and the headers it must have, by field name."""

    name: str  # the file's stem: "x" for x.csv
    headers: Mapping[str, str]  # field name -> required header, in the format's order

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"


@dataclass
class Built(Generic[T]):
    """What a builder made of one record: the row (None when refused) and its key."""

    row: T | None
    key_field: str
    key: str
    errors: list[RowError]


class Fields:
    """Reads one record's required values by field name, recording in `errors` a RowError
    (named by the format's header) for each bad one."""

    def __init__(
        self, fmt: CsvFormat, line: int, values: dict[str, str], errors: list[RowError]
    ) -> None:
        self.fmt = fmt
        self.line = line
        self.values = values
        self.errors = errors

    def header(self, field: str) -> str:
        return self.fmt.headers[field]

    def error(self, field: str, value: str | None, message: str) -> None:
        self.errors.append(RowError(self.line, self.header(field), value, message))

    def required(self, field: str) -> str:
        value = self.values[field]
        if not value:
            self.error(field, value, f"{self.header(field)}: value is empty")
        return value

    def convert(self, field: str, parse: Callable[[str], V], *, optional: bool = False) -> V | None:
        value = self.values[field]
        if not value:
            if not optional:
                self.error(field, value, f"{self.header(field)}: value is empty")
            return None
        try:
            return parse(value)
        except ValueError as exc:
            self.error(field, value, f"{self.header(field)}: {exc}")
            return None


# A builder gets one record's Fields and the extra columns (header as written -> value).
Builder = Callable[[Fields, dict[str, str]], Built[T]]


def read_rows(data: bytes, fmt: CsvFormat, build: Builder[T]) -> ParsedCsv[T]:
    text = _decode(data, fmt.file_name)
    first_line = re.match(r"[^\r\n]*", text)  # csv ends lines at \r and \n only
    if first_line is None or not first_line.group().strip():
        raise CsvHeaderError(
            f"{fmt.file_name} has no header line (the file or its first line is empty)"
        )
    delimiter = _sniff_delimiter(first_line.group())
    rows: list[T] = []
    errors: list[RowError] = []
    first_seen: dict[str, int] = {}
    with _large_fields():
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            header = next(reader)
        except csv.Error as exc:
            raise CsvHeaderError(f"{fmt.file_name} header cannot be read: {exc}") from None
        columns = _map_header(header, fmt)
        for line, record in _records(reader, errors):
            if not any(cell.strip() for cell in record):
                continue
            split = _split_record(line, record, columns, len(header))
            if isinstance(split, RowError):
                errors.append(split)
                continue
            values, extra = split
            built = build(Fields(fmt, line, values, []), extra)
            errors.extend(built.errors)
            if built.row is None:
                continue
            if built.key in first_seen:
                key_header = fmt.headers[built.key_field]
                errors.append(
                    RowError(
                        line,
                        key_header,
                        built.key,
                        f"duplicate {key_header} {preview(built.key)}, "
                        f"first on line {first_seen[built.key]}",
                    )
                )
                continue
            first_seen[built.key] = line
            rows.append(built.row)
    return ParsedCsv(rows, errors)


class _LineReader(Protocol):
    line_num: int

    def __next__(self) -> list[str]: ...


def _records(reader: _LineReader, errors: list[RowError]) -> Iterator[tuple[int, list[str]]]:
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


def _decode(data: bytes, file_name: str) -> str:
    # The BOM is cut here rather than by "utf-8-sig", whose error offsets skip it.
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = bom + exc.start
        raise CsvHeaderError(
            f"{file_name} is not UTF-8 text: the byte at offset {offset} cannot be decoded "
            f"({exc.reason})"
        ) from None


def _sniff_delimiter(header_line: str) -> str:
    counts = [(header_line.count(d), -i, d) for i, d in enumerate(_DELIMITERS)]
    count, _, delimiter = max(counts)
    return delimiter if count else ","


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).casefold()


@dataclass(frozen=True)
class _Columns:
    required: dict[int, str]  # field index -> field name of a required header
    extra: dict[int, str]  # field index -> header as written


def _map_header(header: list[str], fmt: CsvFormat) -> _Columns:
    canonical = {_normalise(written): field for field, written in fmt.headers.items()}
    seen: dict[str, list[int]] = {}
    required_at: dict[int, str] = {}
    extra_at: dict[int, str] = {}
    for index, raw in enumerate(header):
        written = raw.strip()
        if not written:
            continue
        key = _normalise(written)
        seen.setdefault(key, []).append(index + 1)
        if key in canonical:
            required_at[index] = canonical[key]
        else:
            extra_at[index] = written
    # Header messages name the format's own headers and column positions, never a cell
    # as written: a file that is not a CSV at all (a token file, a key) would otherwise
    # have its first line copied into logs and RPC errors.
    duplicated = [(key, cols) for key, cols in seen.items() if len(cols) > 1]
    if duplicated:
        described = "; ".join(
            f"columns {' and '.join(map(str, cols))}"
            + (f" (both {fmt.headers[canonical[key]]})" if key in canonical else "")
            for key, cols in duplicated
        )
        raise CsvHeaderError(f"{fmt.file_name} has duplicated columns: {described}")
    found = set(required_at.values())
    missing = [written for field, written in fmt.headers.items() if field not in found]
    if missing:
        raise CsvHeaderError(
            f"{fmt.file_name} is missing required columns: {', '.join(missing)} "
            f"(its header line has {len(header)} column(s), {len(required_at)} of them "
            f"required ones)"
        )
    return _Columns(required_at, extra_at)


def _split_record(
    line: int, record: list[str], columns: _Columns, width: int
) -> tuple[dict[str, str], dict[str, str]] | RowError:
    if len(record) > width and any(cell.strip() for cell in record[width:]):
        return RowError(line, None, None, f"row has {len(record)} fields, the header has {width}")
    if len(record) < width:
        return RowError(line, None, None, f"row has {len(record)} fields, the header has {width}")
    values = {field: record[i].strip() for i, field in columns.required.items()}
    extra = {name: record[i].strip() for i, name in columns.extra.items()}
    return values, extra


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
