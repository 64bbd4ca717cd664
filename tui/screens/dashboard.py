"""The dashboard: batch header, the ten stage cards, the selected stage's last 20 events."""

from __future__ import annotations

from itertools import islice

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from tui.actions import ask_cancel
from tui.components.batch_header import BatchHeader
from tui.components.event_table import EventTable
from tui.components.health_banner import HealthBanner
from tui.components.pictures import BatchPictures, GpuStrip
from tui.components.stage_card import StageCardWidget
from tui.components.verdict_bar import VerdictBar
from tui.event_filter import filtered
from tui.health import banner_lines, stalled_for
from tui.model import RECENT_PER_STAGE, STAGES, TITLES, BatchModel


class DashboardScreen(Screen):
    AUTO_FOCUS = "#events"
    BINDINGS = [
        Binding("a", "all_stages", "All stages"),
        Binding("enter", "open_event", "Detail", show=False),
        Binding("left", "move(-1)", "Prev card", show=False),
        Binding("right", "move(1)", "Next card", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("c", "cancel_task", "Cancel task…", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self.stage: str | None = None
        self.filter = ""  # the `/` query (tui.event_filter)

    def compose(self) -> ComposeResult:
        yield BatchHeader(id="batch-header")
        yield HealthBanner(id="health-banner")
        yield BatchPictures(id="pictures")
        yield GpuStrip(id="gpu-strip")
        yield VerdictBar(id="verdict-bar")
        with Grid(id="cards"):
            for s in STAGES:
                yield StageCardWidget(s)
        yield Static(id="events-title")
        yield Input(placeholder="filter: file: stage: type: gpu: status: or any text",
                    id="event-filter")
        yield EventTable(id="events")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view()

    def on_resize(self) -> None:
        cols = 5 if self.size.width >= 75 else 2 if self.size.width < 50 else 3
        grid = self.query_one("#cards", Grid)
        grid.styles.grid_size_columns = cols
        rows = -(-len(STAGES) // cols)
        spare = self.size.height - 6 - 1 - 8  # header, banner, pictures, footer, table
        card_h = max(4, min(9, spare // rows)) if rows else 5
        grid.styles.grid_rows = str(card_h)
        grid.styles.height = card_h * rows

    def refresh_view(self) -> None:
        app = self.app
        model: BatchModel | None = app.model  # type: ignore[attr-defined]
        now = app.now()  # type: ignore[attr-defined]
        stalled = stalled_for(model, now, app.stall_after) is not None  # type: ignore[attr-defined]
        self.query_one(BatchHeader).show(model, now, app.conn_state,  # type: ignore[attr-defined]
                                         app.conn_detail, app.follow,  # type: ignore[attr-defined]
                                         stalled)
        self.query_one(VerdictBar).show(model.info.verdict_counts if model else {})
        self.query_one(HealthBanner).show(banner_lines(
            app.health(), model, now, app.stall_after))  # type: ignore[attr-defined]
        self.query_one(BatchPictures).show(model, now)
        self.query_one(GpuStrip).show(app.gpus)  # type: ignore[attr-defined]
        if model is None:
            self.query_one(EventTable).show([])
            self.query_one("#events-title", Static).update("Waiting for a batch…")
            return
        for w in self.query(StageCardWidget):
            w.show(model.cards[w.stage], now)
        if self.filter:
            events = filtered(model.view(self.stage), self.filter)
        elif self.stage:
            events = list(model.cards[self.stage].recent)
        else:
            events = list(islice(reversed(model.events), RECENT_PER_STAGE))[::-1]
        label = (f"{TITLES[self.stage]} — last {RECENT_PER_STAGE} events" if self.stage
                 else f"All stages — last {RECENT_PER_STAGE} events")
        if self.filter:
            label = f"{TITLES.get(self.stage or '', 'All stages')} — {len(events)} matching"
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

    def action_cancel_task(self) -> None:
        """Cancel the batch's task, after a confirmation (tui.actions)."""
        model = self.app.model  # type: ignore[attr-defined]
        if model is not None:
            ask_cancel(self.app, model.batch_id)

    def action_filter(self) -> None:
        box = self.query_one("#event-filter", Input)
        box.add_class("-active")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#event-filter", Input)
        box.value, self.filter = "", ""
        box.remove_class("-active")
        self.query_one(EventTable).focus()
        self.refresh_view()

    def on_input_changed(self, message: Input.Changed) -> None:
        if message.input.id == "event-filter":
            self.filter = message.value.strip()
            self.refresh_view()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        if message.input.id == "event-filter":
            self.query_one(EventTable).focus()

    def action_move(self, step: int) -> None:
        """The next / previous card from the focused one, else from the selected one."""
        cards = list(self.query(StageCardWidget))
        idx = next((i for i, c in enumerate(cards) if c.has_focus), -1)
        if idx < 0 and self.stage in STAGES:
            idx = STAGES.index(self.stage)
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
