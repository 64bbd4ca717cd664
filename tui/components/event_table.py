"""A table of events, newest first; Enter opens an event's full payload and response."""

from __future__ import annotations

from textual.message import Message
from textual.widgets import DataTable

from tui.model import TITLES, EventRecord, format_time
from tui.text import plain

# Fixed widths: auto-sized columns depended on when rows arrived (a loaded machine drew
# the same events with other widths); the last column takes what is left (_last_width). Below
# WIDE_FROM columns the compact set keeps status and message on an 80-column screen.
COLUMNS = (("time", 8), ("stage", 17), ("event", 14), ("file", 28), ("status", 10),
           ("gpu / message", None))
COMPACT = (("time", 8), ("stage", 6), ("event", 8), ("file", 18), ("status", 7),
           ("gpu / message", None))
WIDE_FROM = 120
SHORT_STAGE = {"file_distribution": "dist", "callmetadata": "cmeta", "trademetadata": "tmeta",
               "triaging": "triage", "denoise": "denois"}
SHORT_EVENT = {"file_start": "start", "file_complete": "done", "stage_start": "stg start",
               "stage_progress": "progress", "stage_complete": "stg done"}


class EventTable(DataTable):
    class Open(Message):
        def __init__(self, event: EventRecord) -> None:
            super().__init__()
            self.event = event

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self._events: dict[str, EventRecord] = {}
        self._shown: list[int] = []
        self._layout: tuple[bool, int | None] | None = None  # (compact, last column's width)
        # The selection across a column rebuild (a resize clears the rows and the cursor).
        self._held: tuple[int, EventRecord | None] = (0, None)

    def _columns(self) -> bool:
        """(Re)build the columns for this width; True when they changed (rows are gone)."""
        compact = 0 < self.size.width < WIDE_FROM
        spec = COMPACT if compact else COLUMNS
        layout = (compact, self._last_width(spec))
        if layout == self._layout:
            return False
        self._layout = layout
        if self.row_count:
            self._held = (self.cursor_row, self.current())
        self.clear(columns=True)
        self._shown = []
        for label, width in spec:
            self.add_column(label, width=width if width is not None else layout[1])
        return True

    def _last_width(self, spec: tuple[tuple[str, int | None], ...]) -> int | None:
        """What the fixed columns leave of the table's width for the last one (cell
        padding and a vertical scrollbar's room taken off): a DataTable's auto width only
        ever grows with the rows it has shown, so the same rows were drawn with other
        widths. None while the table has no width yet (it is rebuilt on resize)."""
        if self.size.width <= 0:
            return None
        pad = 2 * self.cell_padding
        used = sum(w + pad for _label, w in spec if w is not None) + pad
        used += self.styles.scrollbar_size_vertical
        return max(len(spec[-1][0]), self.size.width - used)

    def on_mount(self) -> None:
        self._columns()

    def on_resize(self) -> None:
        if self._columns():
            self.app._dirty = True  # type: ignore[attr-defined]  # the screen refills us

    def show(self, events: list[EventRecord]) -> None:
        """Show `events` (oldest first) newest on top; unchanged lists cost nothing. The
        cursor stays on the event it was on (by id) while new rows slide in above it."""
        ids = [e.id for e in events]
        if ids == self._shown:
            return
        self._shown = ids
        row, keep = self.cursor_row, self.current()
        if keep is None:
            (row, keep), self._held = self._held, (0, None)
        self.clear()
        self._events = {}
        short = self._layout is not None and self._layout[0]
        for e in reversed(events):
            key = str(e.id)
            self._events[key] = e
            stage = (SHORT_STAGE.get(e.stage, e.stage) if short
                     else TITLES.get(e.stage, e.stage))
            etype = SHORT_EVENT.get(e.event_type, e.event_type) if short else e.event_type
            # Text cells: a DataTable parses plain strings as markup (tui/text.py).
            self.add_row(format_time(e.timestamp), plain(stage), plain(etype),
                         plain(e.file_name or "—"), plain(e.status or ""),
                         plain(e.error_message or e.gpu_ip or ""), key=key)
        if self.row_count:
            if keep is not None and str(keep.id) in self._events and row > 0:
                row = self.get_row_index(str(keep.id))  # the same event, wherever it went
            self.move_cursor(row=min(row, self.row_count - 1))

    def action_cursor_left(self) -> None:
        """←/→ move between the stage cards (docs/tui.md), not across the columns."""
        move = getattr(self.screen, "action_move", None)
        if move is not None:
            move(-1)

    def action_cursor_right(self) -> None:
        move = getattr(self.screen, "action_move", None)
        if move is not None:
            move(1)

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
