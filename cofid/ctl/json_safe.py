"""JSON documents on stdout with no character that steers a terminal.

json.dumps escapes U+0000-U+001F itself but leaves DEL, the C1 controls and the bidi
overrides raw (with ensure_ascii=False, which keeps Devanagari readable); here those
become \\uXXXX escapes too, so a document printed to a terminal shows as itself and
still parses to the exact values. (cofid/ctl/escape.py does the same for text and CSV.)
"""

from __future__ import annotations

import json
import re
from typing import Any

_RAW = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def json_text(doc: Any, *, indent: int | None = 2) -> str:
    text = json.dumps(doc, ensure_ascii=False, indent=indent, default=str)
    return _RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
