"""A table of events, newest first; Enter opens an event's full payload and response."""

from __future__ import annotations

from textual.message import Message
from textual.widgets import DataTable

from tui.model import TITLES, EventRecord, format_time

# Fixed widths: auto-sized columns depended on when rows arrived (a loaded machine drew
# the same events with other widths); the last column takes what is left.
COLUMNS = (("time", 8), ("stage", 17), ("event", 14), ("file", 28), ("status", 10),
           ("gpu / message", None))


class EventTable(DataTable):
    class Open(Message):
        def __init__(self, event: EventRecord) -> None:
            super().__init__()
            self.event = event

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self._events: dict[str, EventRecord] = {}
        self._shown: list[int] = []

    def on_mount(self) -> None:
        for label, width in COLUMNS:
            self.add_column(label, width=width)

    def show(self, events: list[EventRecord]) -> None:
        """Show `events` (oldest first) newest on top; unchanged lists cost nothing."""
        ids = [e.id for e in events]
        if ids == self._shown:
            return
        self._shown = ids
        row = self.cursor_row
        self.clear()
        self._events = {}
        for e in reversed(events):
            key = str(e.id)
            self._events[key] = e
            self.add_row(format_time(e.timestamp), TITLES.get(e.stage, e.stage), e.event_type,
                         e.file_name or "—", e.status or "",
                         e.error_message or e.gpu_ip or "", key=key)
        if self.row_count:
            self.move_cursor(row=min(row, self.row_count - 1))

    def current(self) -> EventRecord | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self._events.get(key or "")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        ev = self._events.get(event.row_key.value or "")
        if ev is not None:
            self.post_message(self.Open(ev))
