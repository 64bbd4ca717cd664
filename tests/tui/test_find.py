"""Find and focus: the `/` filter (unit and pilot), errors grouped by cause and GPU with
counts, and `?` help with the colour legend."""

from __future__ import annotations

import asyncio

from tests.tui.fakes import FILES, NOW, SETTINGS, FakeClient, batch_events
from tui.app import CofiApp
from tui.components.event_table import EventTable
from tui.error_groups import group_errors
from tui.event_filter import filtered, matches
from tui.model import EventRecord
from tui.screens.errors import ErrorsScreen
from tui.screens.help import HelpScreen


def run(scenario, size=(80, 24)):
    app = CofiApp(
        SETTINGS, client_factory=lambda s: FakeClient(), clock=lambda: NOW, gpu_refresh_s=0
    )

    async def main():
        async with app.run_test(size=size) as pilot:
            while app.model is None or not app.model.completed or app.gpus is None:
                await pilot.pause(0.05)
            await pilot.pause(0.3)
            return await scenario(app, pilot)

    return asyncio.run(main())


def test_filter_words_fields_and_free_text():
    events = batch_events()
    err = next(e for e in events if e.event_type == "error")
    assert matches(err, "stage:stt type:error gpu:gpu-b")
    assert matches(err, "503") and matches(err, "STAGE:STT 503")
    assert not matches(err, "stage:llm1") and not matches(err, "type:file_complete")
    got = filtered(events, f"file:{FILES[5]} stage:stt")
    assert [e.event_type for e in got] == ["file_start", "error"]
    assert len(filtered(events, "type:file_complete", limit=7)) == 7


def test_errors_grouped_by_stage_gpu_and_cause():
    def err(i, name, gpu, msg, md=""):
        return EventRecord(
            i,
            30,
            NOW,
            "stt",
            "error",
            name,
            gpu,
            status="failed",
            error_message=msg,
            metadata_json=md,
        )

    groups = group_errors(
        [
            err(1, "a.wav", "gpu-b", "a.wav: simulated GPU error (HTTP 500)"),
            err(2, "b.wav", "gpu-b", "b.wav: simulated GPU error (HTTP 500)"),
            err(3, "b.wav", "gpu-b", "b.wav: simulated GPU error (HTTP 500)"),
            err(4, "c.wav", "gpu-a", "c.wav: cannot decode audio"),
            err(5, "", "gpu-b", "GPU gpu-b marked unhealthy", '{"gpu_healthy": false}'),
        ]
    )
    assert [(g.gpu, g.cause, g.count, g.files) for g in groups] == [
        ("gpu-b", "<file>: simulated GPU error (HTTP 500)", 3, 2),
        ("gpu-a", "<file>: cannot decode audio", 1, 1),
        ("gpu-b", "GPU gpu-b marked unhealthy", 1, 0),
    ]


def test_slash_filters_the_event_table_and_escape_clears_it():
    async def scenario(app, pilot):
        await pilot.press("slash")
        await pilot.pause(0.1)
        for ch in "type:error":
            await pilot.press(ch if ch != ":" else "colon")
        await pilot.press("enter")  # back to the table, the filter stays
        await pilot.pause(0.4)
        table = app.screen.query_one(EventTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        title = str(app.screen.query_one("#events-title").render())
        focused = app.focused
        await pilot.press("escape")
        await pilot.pause(0.4)
        return rows, title, focused, table.row_count, app.screen.filter

    rows, title, focused, after, flt = run(scenario)
    assert len(rows) == 1 and rows[0][2] == "error" and rows[0][3].startswith(FILES[5][:10])
    assert "1 matching" in title and isinstance(focused, EventTable)
    assert after == 20 and flt == ""


def test_errors_screen_shows_groups_and_help_shows_the_legend():
    async def scenario(app, pilot):
        await pilot.press("e")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ErrorsScreen)
        g = app.screen.query_one("#error-groups")
        groups = [[str(c) for c in g.get_row_at(i)] for i in range(g.row_count)]
        await pilot.press("escape")
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        await pilot.press("space")
        await pilot.pause(0.2)
        return groups, text, app.screen.id

    groups, text, back = run(scenario)
    assert groups == [["1", "1", "STT", "gpu-b", "BackendError: gpu-b: 503 Service Unavailable"]]
    assert "○ off" in text and "↻n" in text and "/" in text and back == "dashboard"
