"""cofictl output: plain aligned tables for people, JSON for scripts, progress on stderr.

Results go to stdout; messages, warnings and progress bars to stderr. ``--json`` prints
one JSON document (JSON lines for streams). Protobuf messages become plain dicts with
proto field names, int64 as JSON numbers (not strings, unlike canonical proto3 JSON),
timestamps as RFC 3339 strings ("" when unset) and every field present.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from cofid.ctl.escape import terminal_text

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress


def stdout() -> TextIO:
    return sys.stdout


def stderr() -> TextIO:
    return sys.stderr


def say(msg: str) -> None:
    """A message for the person (stderr); control characters from data shown escaped."""
    print(f"cofictl: {terminal_text(msg)}", file=sys.stderr, flush=True)


# ---- protobuf -> plain data -----------------------------------------------------------


def ts_text(t: Timestamp) -> str:
    if not t.seconds and not t.nanos:
        return ""
    return t.ToDatetime().replace(microsecond=0).isoformat() + "Z"


def _value(fd: FieldDescriptor, v: Any) -> Any:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        if isinstance(v, Timestamp):
            return ts_text(v)
        return to_dict(v)
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return len(v)
    return v


def to_dict(msg: Message) -> dict[str, Any]:
    fd: Any  # descriptor types differ between the pure-Python and upb runtimes
    out: dict[str, Any] = {}
    for fd in msg.DESCRIPTOR.fields:
        v = getattr(msg, fd.name)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            vf = fd.message_type.fields_by_name["value"]
            out[fd.name] = {k: _value(vf, x) for k, x in sorted(v.items())}
        elif fd.is_repeated:
            out[fd.name] = [_value(fd, x) for x in v]
        elif fd.has_presence and fd.type != FieldDescriptor.TYPE_MESSAGE and not msg.HasField(
                fd.name):
            out[fd.name] = None
        else:
            out[fd.name] = _value(fd, v)
    return out


def print_json(doc: Any) -> None:
    stdout().write(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")
    stdout().flush()


def print_jsonl(doc: Any, file: TextIO | None = None) -> None:
    f = file or stdout()
    f.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str) + "\n")
    f.flush()


# ---- tables ---------------------------------------------------------------------------


def cell(v: Any) -> str:
    """A value as one terminal cell: control characters (a newline, an ANSI escape) are
    shown escaped (cofid.ctl.escape), never sent to the terminal."""
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.1f}"
    return terminal_text(v)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, file: TextIO | None = None,
          max_width: int = 80) -> None:
    """A plain table: upper-case headers, columns two spaces apart, cells cut at
    max_width characters (numbers right-aligned)."""
    f = file or stdout()
    body = [[cell(c) for c in r] for r in rows]
    body = [[c if len(c) <= max_width else c[:max_width - 1] + "…" for c in r] for r in body]
    numeric = [bool(body) and all(_is_num(r[i]) for r in body if r[i] != "")
               for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if numeric[i] else c.ljust(w)
                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    f.write(line([h.upper() for h in headers]) + "\n")
    for r in body:
        f.write(line(r) + "\n")
    f.flush()


def _is_num(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def fields(pairs: Sequence[tuple[str, Any]], *, file: TextIO | None = None) -> None:
    """`key: value` lines, keys aligned."""
    f = file or stdout()
    w = max(len(k) for k, _ in pairs)
    for k, v in pairs:
        f.write(f"{k + ':':<{w + 1}} {cell(v)}\n")
    f.flush()


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# ---- progress -------------------------------------------------------------------------


class Progress:
    """Progress bars on stderr when it is a terminal (rich); otherwise a line at most
    every `every_s` seconds and at the end, so logs of scripts stay short."""

    def __init__(self, enabled: bool = True, every_s: float = 5.0) -> None:
        self.tty = enabled and sys.stderr.isatty()
        self.enabled = enabled
        self.every_s = every_s
        self._rich: RichProgress | None = None
        self._tasks: dict[str, Any] = {}
        self._last_line: dict[str, float] = {}
        self._state: dict[str, tuple[float, float, str]] = {}

    def __enter__(self) -> Progress:
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(TextColumn("{task.description:<12}"), BarColumn(),
                                      TextColumn("{task.fields[info]}"),
                                      TimeRemainingColumn(),
                                      console=Console(file=sys.stderr), transient=False)
            self._rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()

    def update(self, key: str, done: float, total: float, info: str = "",
               final: bool = False) -> None:
        if not self.enabled:
            return
        if self._rich is not None:
            if key not in self._tasks:
                self._tasks[key] = self._rich.add_task(key, total=total or None, info=info)
            self._rich.update(self._tasks[key], completed=done, total=total or None, info=info)
            return
        state = (done, total, info)
        now = time.monotonic()
        changed = self._state.get(key) != state
        due = now - self._last_line.get(key, 0.0) >= self.every_s
        if changed and (due or final):
            self._state[key] = state
            self._last_line[key] = now
            print(f"cofictl: {key}: {info}", file=sys.stderr, flush=True)
