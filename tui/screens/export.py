"""Write the events in view to a CSV or JSON-lines file (the format follows the name)."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from tui.export_data import to_csv, to_jsonl
from tui.model import EventRecord


def write_export(path: Path, events: list[EventRecord]) -> str:
    fmt = "csv" if path.suffix.lower() == ".csv" else "jsonl"
    path.write_text(to_csv(events) if fmt == "csv" else to_jsonl(events), encoding="utf-8")
    return fmt


class ExportScreen(ModalScreen[Path | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, events: list[EventRecord], default: Path) -> None:
        super().__init__(id="export")
        self.events, self.default = events, default

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box"):
            yield Static(f"Export {len(self.events)} events (.csv → CSV, otherwise JSON lines)")
            yield Input(str(self.default), id="export-path")
            with Horizontal(id="export-buttons"):
                yield Button("CSV", id="as-csv", variant="primary")
                yield Button("JSON lines", id="as-jsonl")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#export-box").border_title = "Export"
        self.query_one(Input).focus()

    def _write(self, path: Path) -> None:
        try:
            fmt = write_export(path, self.events)
        except OSError as exc:
            self.notify(f"Export failed: {exc}", severity="error", markup=False)
            return
        self.notify(f"Wrote {len(self.events)} events to {path} ({fmt})", markup=False)
        self.dismiss(path)

    @on(Input.Submitted)
    def submitted(self) -> None:
        self._write(Path(self.query_one(Input).value).expanduser())

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
            return
        path = Path(self.query_one(Input).value).expanduser()
        self._write(path.with_suffix(".csv" if event.button.id == "as-csv" else ".jsonl"))
