"""Failures of the batch on the dashboard: grouped by stage, GPU and cause with counts
(tui.error_groups; GPU-health events included, they are failures of a host), then each
one: file, stage and message; Enter for the event."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui.error_groups import group_errors
from tui.model import TITLES, format_time
from tui.text import plain


class ErrorsScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self) -> None:
        super().__init__(id="errors")

    def compose(self) -> ComposeResult:
        yield Static(id="errors-title")
        yield DataTable(id="error-groups", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="error-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#error-groups", DataTable).add_columns("count", "files", "stage",
                                                               "gpu", "cause")
        self.query_one("#error-table", DataTable).add_columns("time", "stage", "file",
                                                              "message")
        self.refresh_view()
        self.query_one("#error-table", DataTable).focus()

    def refresh_view(self) -> None:
        model = self.app.model  # type: ignore[attr-defined]
        errors = list(model.errors) if model else []
        title = self.query_one("#errors-title", Static)
        batch = f"batch {model.batch_id}" if model else "no batch"
        title.update(f"[b]Errors[/b] — {batch}: {len(errors)} failures "
                     "[dim](Enter: full event)[/dim]")
        t = self.query_one("#error-table", DataTable)
        if t.row_count == len(errors):
            return
        g = self.query_one("#error-groups", DataTable)
        g.clear()
        for grp in group_errors(model.view(errors_only=True) if model else []):
            g.add_row(str(grp.count), str(grp.files), plain(TITLES.get(grp.stage, grp.stage)),
                      plain(grp.gpu or "—"), plain(grp.cause))
        t.clear()
        for e in reversed(errors):
            t.add_row(format_time(e.timestamp), plain(TITLES.get(e.stage, e.stage)),
                      plain(e.file_name or "—"), plain(e.message), key=str(e.event_id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "error-table":
            return
        model = self.app.model  # type: ignore[attr-defined]
        wanted = int(event.row_key.value or 0)
        ev = next((e for e in reversed(model.events) if e.id == wanted), None) if model else None
        if ev is not None:
            self.app.open_event(ev)  # type: ignore[attr-defined]
