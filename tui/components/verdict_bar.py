"""The dashboard's verdict line: trades per verdict of the batch, hidden while it has none."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.widgets import Static

from tui.text import plain
from tui.verdict_model import VERDICT_STYLE, counts_items, needs_a_person


def verdict_line(counts: Mapping[str, int]) -> Text:
    parts: list[Text | str] = [Text("Trades ", "bold")]
    for i, (verdict, n) in enumerate(counts_items(counts)):
        parts += [" · " if i else "", plain(verdict, VERDICT_STYLE.get(verdict, "")), f" {n}"]
    waiting = needs_a_person(counts)
    parts.append(Text(f"   {waiting} need a person (t)" if waiting else "", "grey70"))
    return Text.assemble(*parts)


class VerdictBar(Static):
    DEFAULT_CSS = """
    VerdictBar {
        height: 1;
        padding: 0 1;
    }
    """

    def show(self, counts: Mapping[str, int]) -> None:
        self.display = bool(counts)
        if counts:
            self.update(verdict_line(counts))
