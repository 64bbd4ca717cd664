"""GPU hosts (ListGpus): health, slots in use, files assigned and done, recent latency."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui.messages import GpusLoaded
from tui.text import plain

REFRESH_S = 2.0


class GpusScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"),
                Binding("r", "refresh_gpus", "Refresh")]

    def __init__(self, refresh_s: float = REFRESH_S) -> None:
        super().__init__(id="gpus")
        self.refresh_s = refresh_s

    def compose(self) -> ComposeResult:
        yield Static("[b]GPU hosts[/b]", id="gpus-title")
        yield DataTable(id="gpu-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="gpu-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("host", "health", "slots", "assigned", "done",
                                              "p50 ms", "p95 ms", "errors", "in a row", "url")
        self.action_refresh_gpus()
        if self.refresh_s > 0:
            self.set_interval(self.refresh_s, self.action_refresh_gpus)

    @work(exclusive=True, group="gpus")
    async def action_refresh_gpus(self) -> None:
        from tui.client import describe_error

        try:
            gpus = await self.app.client.list_gpus()  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - shown, retried at the next refresh
            self.post_message(GpusLoaded([], describe_error(exc)))
            return
        self.post_message(GpusLoaded(gpus))

    def on_gpus_loaded(self, message: GpusLoaded) -> None:
        status = self.query_one("#gpu-status", Static)
        if message.error:
            status.update(plain(message.error, "red"))
            return
        t = self.query_one(DataTable)
        row = t.cursor_row
        t.clear()
        for g in message.gpus:
            health = "[green]● healthy[/]" if g.healthy else "[red]✘ down[/]"
            used = f"{g.slots_in_use}/{g.slots}"
            t.add_row(plain(g.name), health, used, str(g.files_assigned), str(g.files_done),
                      f"{g.latency_ms_p50:.0f}", f"{g.latency_ms_p95:.0f}",
                      # the share of recent requests that failed: a host failing every
                      # other request never fails "in a row" but is far from fine
                      f"{g.error_rate:.0%} ({g.requests_failed})",
                      str(g.consecutive_failures), plain(g.url), key=g.name)
        if t.row_count:
            t.move_cursor(row=min(row, t.row_count - 1))
        healthy = sum(g.healthy for g in message.gpus)
        status.update(f"{healthy}/{len(message.gpus)} healthy · "
                      f"{sum(g.slots_in_use for g in message.gpus)} slots busy")
