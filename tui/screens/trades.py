"""The trades of the dashboard's batch that need a person (mismatch, no_call,
call_unusable), a page at a time; Enter drills down to the trade's call.

Everything from the daemon is shown as text (tui/text.py), never as markup."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui.screens.call_view import CallScreen
from tui.text import plain
from tui.verdict_model import NEEDS_A_PERSON, VERDICT_STYLE, VerdictRow

PAGE_SIZE = 100


class TradesScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("n", "page(1)", "Next page"),
        Binding("p", "page(-1)", "Prev page"),
    ]

    def __init__(self, batch_id: int) -> None:
        super().__init__(id="trades")
        self.batch_id = batch_id
        self.tokens: list[str] = [""]
        self.next_token = ""
        self.rows: dict[str, VerdictRow] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="trades-title")
        yield DataTable(id="trade-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="trades-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#trades-title", Static).update(
            Text.assemble(
                ("Trades that need a person", "bold"),
                f" — batch {self.batch_id} ",
                ("(" + ", ".join(NEEDS_A_PERSON) + "; Enter: the call)", "grey70"),
            )
        )
        t = self.query_one(DataTable)
        t.add_columns("trade", "verdict", "call", "fields off", "reason")
        self.load(self.tokens[-1])
        t.focus()

    @work(exclusive=True, group="trades")
    async def load(self, token: str) -> None:
        status = self.query_one("#trades-status", Static)
        try:
            rows, nxt = await self.app.client.list_trade_verdicts(  # type: ignore[attr-defined]
                self.batch_id, NEEDS_A_PERSON, PAGE_SIZE, token
            )
        except Exception as exc:  # noqa: BLE001 - shown; the screen stays usable
            from tui.client import describe_error

            status.update(plain(describe_error(exc), "red"))
            return
        self.next_token = nxt
        t = self.query_one(DataTable)
        t.clear()
        self.rows = {}
        for i, v in enumerate(rows):
            key = str(i)
            self.rows[key] = v
            t.add_row(
                plain(v.trade_id),
                plain(v.verdict, VERDICT_STYLE.get(v.verdict, "")),
                plain(v.audio_name or "—"),
                plain(v.fields_off or "—"),
                plain(v.reason),
                key=key,
            )
        more = "  n: next page" if nxt else ""
        status.update(f"page {len(self.tokens)} · {len(rows)} trades{more}")

    def action_page(self, step: int) -> None:
        if step > 0 and self.next_token:
            self.tokens.append(self.next_token)
        elif step < 0 and len(self.tokens) > 1:
            self.tokens.pop()
        else:
            return
        self.load(self.tokens[-1])

    @on(DataTable.RowSelected, "#trade-table")
    def open_trade(self, event: DataTable.RowSelected) -> None:
        v = self.rows.get(event.row_key.value or "")
        if v is not None:
            self.app.push_screen(CallScreen(v))
