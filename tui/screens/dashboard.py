"""The dashboard: batch header, the ten stage cards, the selected stage's last 20 events."""

from __future__ import annotations

from itertools import islice

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.components.batch_header import BatchHeader
from tui.components.event_table import EventTable
from tui.components.stage_card import StageCardWidget
from tui.model import RECENT_PER_STAGE, STAGES, TITLES, BatchModel


class DashboardScreen(Screen):
    AUTO_FOCUS = "#events"
    BINDINGS = [
        Binding("a", "all_stages", "All stages"),
        Binding("enter", "open_event", "Detail", show=False),
        Binding("left", "move(-1)", "Prev card", show=False),
        Binding("right", "move(1)", "Next card", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self.stage: str | None = None

    def compose(self) -> ComposeResult:
        yield BatchHeader(id="batch-header")
        with Grid(id="cards"):
            for s in STAGES:
                yield StageCardWidget(s)
        yield Static(id="events-title")
        yield EventTable(id="events")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view()

    def on_resize(self) -> None:
        cols = 5 if self.size.width >= 75 else 2 if self.size.width < 50 else 3
        grid = self.query_one("#cards", Grid)
        grid.styles.grid_size_columns = cols
        rows = -(-len(STAGES) // cols)
        spare = self.size.height - 3 - 1 - 8  # header, footer, a useful event table
        card_h = max(4, min(9, spare // rows)) if rows else 5
        grid.styles.grid_rows = str(card_h)
        grid.styles.height = card_h * rows

    def refresh_view(self) -> None:
        app = self.app
        model: BatchModel | None = app.model  # type: ignore[attr-defined]
        now = app.now()  # type: ignore[attr-defined]
        self.query_one(BatchHeader).show(model, now, app.conn_state,  # type: ignore[attr-defined]
                                         app.conn_detail, app.follow)  # type: ignore[attr-defined]
        if model is None:
            self.query_one(EventTable).show([])
            self.query_one("#events-title", Static).update("Waiting for a batch…")
            return
        for w in self.query(StageCardWidget):
            w.show(model.cards[w.stage], now)
        if self.stage:
            events = list(model.cards[self.stage].recent)
        else:
            events = list(islice(reversed(model.events), RECENT_PER_STAGE))[::-1]
        label = (f"{TITLES[self.stage]} — last {RECENT_PER_STAGE} events" if self.stage
                 else f"All stages — last {RECENT_PER_STAGE} events")
        self.query_one("#events-title", Static).update(f"[b]{label}[/b]  [dim](Enter: detail"
                                                       ", a: all stages, x: export)[/dim]")
        self.query_one(EventTable).show(events)

    def events_in_view(self) -> list:
        """Every retained event of the selected stage (or of all): what export writes."""
        model = self.app.model  # type: ignore[attr-defined]
        return [] if model is None else model.view(self.stage)

    def on_stage_card_widget_selected(self, message: StageCardWidget.Selected) -> None:
        self.stage = message.stage
        self.refresh_view()

    def action_all_stages(self) -> None:
        self.stage = None
        self.query_one(EventTable).focus()
        self.refresh_view()

    def action_move(self, step: int) -> None:
        cards = list(self.query(StageCardWidget))
        idx = next((i for i, c in enumerate(cards) if c.has_focus), -1)
        cards[(idx + step) % len(cards)].focus()

    def action_open_event(self) -> None:
        """Enter on a card: to its events; Enter on the table opens the event."""
        table = self.query_one(EventTable)
        if not table.has_focus:
            table.focus()
            return
        ev = table.current()
        if ev is not None:
            self.app.open_event(ev)  # type: ignore[attr-defined]

    def on_event_table_open(self, message: EventTable.Open) -> None:
        self.app.open_event(message.event)  # type: ignore[attr-defined]
