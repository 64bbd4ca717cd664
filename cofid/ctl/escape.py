"""Escaping data for the medium it is shown in: spreadsheets (CSV) and terminals.

Everything cofictl and cofi-tui show comes from outside: file names a producer chose,
CSV values, model replies, error messages quoting them. Two rules, one function each, used
by every writer (cofictl export, cofictl trades, the TUI's event export; every terminal
printer):

- `csv_cell`: a cell that begins with = + - @ TAB or CR gets a leading apostrophe
  (OWASP's CSV injection rule): Excel and LibreOffice would run it as a formula
  (`=HYPERLINK(...)`, `@SUM(...)`, `-2+3` included). The apostrophe shows that the cell was
  escaped; numbers cofi writes are never negative, so none is changed. Nothing else of
  the cell changes (a newline inside it is quoted by the csv module and stays data).
- `terminal_text`: control characters (C0 including newline and tab, DEL, C1), the
  bidirectional marks and overrides that reorder what is shown, and the Unicode line and
  paragraph separators become visible escapes (`\\x1b`, `\\n`, `\\u202e`), so a name can
  neither send an ANSI sequence nor forge a second line. Everything else (Devanagari with
  its joiners included) stays as it is.

This module imports nothing from grpc or rich: the TUI uses it too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# C0 controls, DEL, C1 controls, ALM / LRM / RLM, line and paragraph separators, and the
# bidi embeddings / overrides / isolates.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def csv_cell(value: Any) -> str:
    """One CSV cell, safe to open in a spreadsheet (module docstring)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_row(row: Mapping[str, Any]) -> dict[str, str]:
    """A csv.DictWriter row with every cell through `csv_cell`."""
    return {key: csv_cell(value) for key, value in row.items()}


def csv_cells(values: Iterable[Any]) -> list[str]:
    """A csv.writer row with every cell through `csv_cell`."""
    return [csv_cell(value) for value in values]


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def terminal_text(value: Any) -> str:
    """`value` as text that is safe to print on a terminal (module docstring)."""
    text = "" if value is None else str(value)
    return UNSAFE.sub(_escape, text)
