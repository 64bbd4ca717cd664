"""One line under the header: what is wrong right now (tui.health), hidden when nothing is."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.health import ERROR

ICON = {ERROR: ("✘ ", "bold white on dark_red"), "warning": ("⚠ ", "bold black on dark_orange")}


class HealthBanner(Static):
    def show(self, lines: list[tuple[str, str]]) -> None:
        self.display = bool(lines)
        if not lines:
            self.update("")
            return
        # Daemon text (error details, GPU names) goes in as Text: never Rich markup.
        parts: list[Text] = []
        for text, level in lines:
            icon, style = ICON.get(level, ICON["warning"])
            parts.append(Text(icon + text, style=style))
        self.update(Text(" · ").join(parts))
