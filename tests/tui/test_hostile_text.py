"""Names and error messages are data, never markup (issue 14, class 6): a file named
`[bold red]x.wav` shows as written, an error quoting `[/x]` (which Textual's markup parser
refuses with MarkupError) crashes nothing — in the errors panel, the event table, the
event detail, the GPU screen, the batch list and the notifications, also while the app
follows another batch — and the event export writes formula-safe CSV cells."""

from __future__ import annotations

import asyncio
import csv
from dataclasses import replace
from datetime import timedelta

import pytest
from textual.content import Content
from textual.markup import MarkupError

from tests.tui.fakes import FILES, SETTINGS, T0, FakeClient, batch_events
from tui.app import CofiApp
from tui.components.event_table import EventTable
from tui.model import EventRecord, GpuInfo
from tui.screens.batches import BatchesScreen
from tui.screens.errors import ErrorsScreen
from tui.screens.event_detail import EventDetailScreen, summary_line
from tui.screens.export import ExportScreen
from tui.screens.gpus import GpusScreen

NAME = "[bold red]x.wav"
ERROR = "BackendError: [/x] closing tag \x1b[31m[link=http://evil]y[/link]"
ERROR_SHOWN = "BackendError: [/x] closing tag \\x1b[31m[link=http://evil]y[/link]"
FORMULA_NAME = '=HYPERLINK("http://evil","x").wav'


def test_the_hostile_texts_are_refused_as_markup():
    # Without Text cells these would be parsed: the first raises, the second loses text.
    with pytest.raises(MarkupError):
        Content.from_markup(ERROR)
    assert Content.from_markup(NAME).plain == "x.wav"


def hostile_events() -> list[EventRecord]:
    events = batch_events()
    out = []
    for e in events:
        if e.file_name == FILES[5]:
            e = replace(e, file_name=NAME)
        if e.event_type == "error":
            e = replace(e, error_message=ERROR)
        if e.file_name == FILES[6]:
            e = replace(e, file_name=FORMULA_NAME)
        out.append(e)
    return out


class HostileClient(FakeClient):
    """The canned batch with hostile names, and on the all-batches stream an error of
    another batch whose name and message are hostile too."""

    def __init__(self) -> None:
        super().__init__(hostile_events())
        self.batches = [replace(b, status="[/x]", source="[b]batch") for b in self.batches]

    async def list_gpus(self):
        return [GpuInfo("[/gpu]", "http://[red]h:8000", True, 4, 1, 2, 2, 1.0, 2.0, 0)]

    async def watch(self, batch_id, from_event_id, *, event_types=(), idle_timeout=30.0):
        if batch_id:
            async for m in super().watch(
                batch_id, from_event_id, event_types=event_types, idle_timeout=idle_timeout
            ):
                yield m
            return
        # the all-batches stream: a live failure elsewhere, while following batch 30
        yield EventRecord(
            id=10_000,
            batch_id=29,
            timestamp=T0 + timedelta(seconds=5),
            stage="stt",
            event_type="error",
            status="failed",
            file_name="[/name]\nforged line",
            error_message="[/x] \x9b2J",
        )
        await asyncio.Event().wait()


def run(scenario, clock=T0):
    client = HostileClient()
    app = CofiApp(SETTINGS, client_factory=lambda s: client, clock=lambda: clock, gpu_refresh_s=0)

    async def main():
        async with app.run_test(size=(140, 40)) as pilot:
            while app.model is None or not app.model.completed:
                await pilot.pause(0.05)
            await pilot.pause(0.3)
            return await scenario(app, pilot)

    return asyncio.run(main())


def test_errors_panel_table_detail_and_notifications_show_markup_literally():
    async def scenario(app, pilot):
        await pilot.press("e")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ErrorsScreen)
        row = [str(c) for c in app.screen.query_one("#error-table").get_row_at(0)]
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, EventDetailScreen)
        summary = str(app.screen.query_one("#detail-summary").render())
        await pilot.press("escape")
        await pilot.pause(0.2)
        return row, summary, [n.message for n in app._notifications], app.is_running

    row, summary, notes, running = run(scenario)
    assert running
    assert row[1:] == ["STT", NAME, ERROR_SHOWN]
    assert f"file: {NAME}" in summary
    # the batch's own failure, and the other batch's (followed meanwhile), literally and
    # on one line each: the newline and the C1 CSI are shown escaped
    assert f"stt: {NAME} — {ERROR_SHOWN}" in notes
    assert "batch 29 · stt: [/name]\\nforged line — [/x] \\x9b2J" in notes


def test_event_table_gpus_and_batches_render_names_as_text():
    async def scenario(app, pilot):
        await pilot.click("#card-stt")  # the STT card's events, the failure among them
        await pilot.pause(0.3)
        table = app.screen.query_one(EventTable)
        cells = {str(c) for k in table.rows for c in table.get_row(k)}
        await pilot.press("g")
        await pilot.pause(0.3)
        assert isinstance(app.screen, GpusScreen)
        gpu_row = [str(c) for c in app.screen.query_one("#gpu-table").get_row_at(0)]
        await pilot.press("escape")
        await pilot.press("b")
        await pilot.pause(0.4)
        assert isinstance(app.screen, BatchesScreen)
        batch_row = [str(c) for c in app.screen.query_one("#batch-table").get_row_at(0)]
        return cells, gpu_row, batch_row, app.is_running

    cells, gpu_row, batch_row, running = run(scenario)
    assert running
    assert NAME in cells and ERROR_SHOWN in cells
    assert gpu_row[0] == "[/gpu]" and gpu_row[-1] == "http://[red]h:8000"
    assert "[/x]" in batch_row and "[b]batch" in batch_row


def test_summary_line_is_text_not_markup():
    ev = EventRecord(
        id=1,
        batch_id=2,
        timestamp=T0,
        stage="[b]stt",
        event_type="error",
        status="[/failed]",
        file_name=NAME,
        gpu_ip="[i]g",
    )
    plain = summary_line(ev).plain
    assert "[b]stt error  [/failed]" in plain and f"file: {NAME}   gpu: [i]g" in plain


def test_event_export_csv_cells_are_formula_safe(tmp_path):
    async def scenario(app, pilot):
        await pilot.click("#card-stt")
        await pilot.press("x")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ExportScreen)
        app.screen.query_one("#export-path").value = str(tmp_path / "stt.csv")
        await pilot.press("enter")
        await pilot.pause(0.3)
        return len(app.model.view("stt"))

    n = run(scenario)
    rows = list(csv.DictReader((tmp_path / "stt.csv").open(encoding="utf-8")))
    assert len(rows) == n
    names = {r["file_name"] for r in rows}
    assert "'" + FORMULA_NAME in names and FORMULA_NAME not in names
    assert NAME in names  # not a formula: unchanged
    assert all(not v.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for v in r.values())
