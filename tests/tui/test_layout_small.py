"""80×24 first: the event table's status and message columns are on screen, toasts take one
line, ←/→ move between the cards even with the table focused, and the selection is keyed
by event id (Enter opens the event under the cursor while new events slide in)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from tests.tui.fakes import FILES, NOW, SETTINGS, T0, FakeClient
from tui.app import CofiApp
from tui.components.event_table import EventTable
from tui.messages import EventArrived
from tui.screens.event_detail import EventDetailScreen


def run(scenario, *, clock=NOW, size=(80, 24), notifications=False):
    client = FakeClient()
    app = CofiApp(SETTINGS, client_factory=lambda s: client, clock=lambda: clock, gpu_refresh_s=0)

    async def main():
        async with app.run_test(size=size, notifications=notifications) as pilot:
            while app.model is None or not app.model.completed or app.gpus is None:
                await pilot.pause(0.05)
            await pilot.pause(0.3)
            return await scenario(app, pilot)

    return asyncio.run(main())


def test_status_and_message_columns_fit_80_columns():
    async def scenario(app, pilot):
        await pilot.click("#card-stt")
        await pilot.pause(0.3)
        table = app.screen.query_one(EventTable)
        labels = [str(c.label) for c in table.columns.values()]
        widths = [c.get_render_width(table) for c in table.columns.values()]
        rows = [[str(x) for x in table.get_row_at(i)] for i in range(table.row_count)]
        return labels, widths, table.size.width, rows

    labels, widths, width, rows = run(scenario)
    assert labels[-2:] == ["status", "gpu / message"]
    assert sum(widths[:-1]) + 12 <= width  # the message column starts with room to spare
    failed = next(r for r in rows if r[2] == "error")
    assert failed[1] == "stt" and failed[4] == "failed" and failed[5].startswith("BackendError")


def test_arrows_move_between_cards_with_the_table_focused():
    async def scenario(app, pilot):
        await pilot.click("#card-lid")
        await pilot.pause(0.2)
        app.screen.query_one(EventTable).focus()
        await pilot.pause(0.1)
        await pilot.press("right")
        await pilot.pause(0.2)
        after_right = app.screen.stage
        app.screen.query_one(EventTable).focus()
        await pilot.press("left", "left")
        await pilot.pause(0.2)
        return after_right, app.screen.stage

    assert run(scenario) == ("triaging", "ivr")


def test_one_line_toasts():
    async def scenario(app, pilot):
        app.notify("stt: a-very-long-file-name.wav — " + "x" * 200, severity="error", markup=False)
        app.notify("batch 29 · stt: other.wav — BackendError", severity="warning", markup=False)
        await pilot.pause(0.3)
        return [t.region.height for t in app.screen.query("Toast")]

    heights = run(scenario, clock=T0, notifications=True)
    assert len(heights) >= 2 and set(heights) == {1}


def test_enter_opens_the_event_under_the_cursor_while_events_slide_in():
    async def scenario(app, pilot):
        table = app.screen.query_one(EventTable)
        table.focus()
        for _ in range(200):  # the first fill (and any resize rebuild) has happened
            if table.row_count > 3:
                break
            await pilot.pause(0.05)
        table.move_cursor(row=3)
        await pilot.pause(0.1)
        chosen = table.current()
        last = app.model.events[-1]
        for i in range(5):  # five newer events arrive above it
            ev = replace(
                last,
                id=last.id + 1 + i,
                stage="stt",
                event_type="info",
                file_name=FILES[i],
                timestamp=NOW,
            )
            app.post_message(EventArrived(app.model.batch_id, ev))
        for _ in range(200):  # until the table has redrawn with them (a refresh tick)
            if last.id + 5 in table._shown:
                break
            await pilot.pause(0.05)
        moved = table.cursor_row
        await pilot.press("enter")
        await pilot.pause(0.3)
        return chosen, moved, app.screen

    chosen, moved, screen = run(scenario)
    assert moved == 8  # the same event, five rows further down
    assert isinstance(screen, EventDetailScreen) and screen.event == chosen
