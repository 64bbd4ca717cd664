"""Data shown as text, never as Rich markup.

File names, error messages and CSV values come from outside: `[bold red]x.wav` is a name,
not a style, and an error quoting `[/x]` must not raise MarkupError. Everything from the
daemon reaches a widget through `plain` (a rich Text, which Textual never parses), with
control characters shown escaped as cofictl shows them (cofid.ctl.escape).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from cofid.ctl.escape import terminal_text


def plain(value: Any, style: str = "") -> Text:
    """`value` as literal text (control characters escaped), in `style`."""
    return Text(terminal_text(value), style=style)


def plain_str(value: Any) -> str:
    """`value` for a markup=False notification: control characters escaped."""
    return terminal_text(value)
