"""Batches, newest first, filtered by date and paged; Enter shows one on the dashboard."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from tui.messages import BatchesLoaded, OpenBatch
from tui.model import BatchInfo, format_duration
from tui.text import plain

PAGE_SIZE = 20


def _when(b: BatchInfo) -> str:
    return b.created_at.strftime("%Y-%m-%d %H:%M") if b.created_at else "—"


class BatchesScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("n", "page(1)", "Next page"),
        Binding("p", "page(-1)", "Prev page"),
        Binding("l", "live", "Follow newest"),
        Binding("slash", "focus_filter", "Filter"),
    ]

    def __init__(self) -> None:
        super().__init__(id="batches")
        self.tokens: list[str] = [""]  # page tokens of the pages seen, current last
        self.next_token = ""
        self.rows: dict[str, BatchInfo] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="batch-filter"):
            yield Label("From")
            yield Input(placeholder="YYYY-MM-DD", id="date-from", max_length=10)
            yield Label("To")
            yield Input(placeholder="YYYY-MM-DD", id="date-to", max_length=10)
        yield DataTable(id="batch-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="batch-status")
        yield Footer()

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_columns("id", "date", "#", "status", "source", "files", "created", "took")
        self.reload()
        t.focus()

    def reload(self) -> None:
        self.load(self.tokens[-1])

    @work(exclusive=True, group="batches")
    async def load(self, token: str) -> None:
        d_from = self.query_one("#date-from", Input).value.strip() or None
        d_to = self.query_one("#date-to", Input).value.strip() or None
        try:
            batches, nxt = await self.app.client.list_batches(  # type: ignore[attr-defined]
                d_from, d_to, PAGE_SIZE, token)
        except Exception as exc:  # noqa: BLE001 - shown to the user, the screen stays usable
            from tui.client import describe_error

            self.post_message(BatchesLoaded([], "", describe_error(exc)))
            return
        self.post_message(BatchesLoaded(batches, nxt))

    def on_batches_loaded(self, message: BatchesLoaded) -> None:
        status = self.query_one("#batch-status", Static)
        if message.error:
            status.update(plain(message.error, "red"))
            return
        self.next_token = message.next_token
        t = self.query_one(DataTable)
        t.clear()
        self.rows = {}
        current = getattr(self.app.model, "batch_id", None)  # type: ignore[attr-defined]
        for b in message.batches:
            took = (format_duration(b.completed_at - b.created_at)
                    if b.completed_at and b.created_at else "running")
            mark = "▶ " if b.batch_id == current else ""
            t.add_row(f"{mark}{b.batch_id}", plain(b.batch_date), str(b.batch_number),
                      plain(b.status), plain(b.source), str(b.total_files), _when(b), took,
                      key=str(b.batch_id))
            self.rows[str(b.batch_id)] = b
        page = len(self.tokens)
        more = "  n: next page" if self.next_token else ""
        status.update(f"page {page} · {len(message.batches)} batches{more}"
                      "  · Enter: open on the dashboard")

    @on(Input.Submitted)
    def filter_changed(self) -> None:
        self.tokens = [""]
        self.reload()
        self.query_one(DataTable).focus()

    def action_focus_filter(self) -> None:
        self.query_one("#date-from", Input).focus()

    def action_page(self, step: int) -> None:
        if step > 0 and self.next_token:
            self.tokens.append(self.next_token)
        elif step < 0 and len(self.tokens) > 1:
            self.tokens.pop()
        else:
            return
        self.reload()

    def action_live(self) -> None:
        self.app.post_message(OpenBatch(None))
        self.app.pop_screen()

    @on(DataTable.RowSelected, "#batch-table")
    def open_batch(self, event: DataTable.RowSelected) -> None:
        b = self.rows.get(event.row_key.value or "")
        if b is not None:
            self.app.post_message(OpenBatch(b.batch_id))
            self.app.pop_screen()
