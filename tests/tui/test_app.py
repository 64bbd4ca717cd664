"""The app with a fake daemon: errors and their notification, GPUs, batches (filter, paging,
switching), export to CSV / JSON lines, keyboard and mouse, and target/token resolution.
Textual runs on asyncio: each test drives its pilot inside asyncio.run."""

from __future__ import annotations

import asyncio
import csv
import json

from tests.tui.fakes import FILES, NOW, SETTINGS, T0, FakeClient
from tui.app import CofiApp
from tui.config import DEFAULT_TCP, parse_args
from tui.screens.batches import BatchesScreen
from tui.screens.errors import ErrorsScreen
from tui.screens.event_detail import EventDetailScreen
from tui.screens.export import ExportScreen
from tui.screens.gpus import GpusScreen


def run(scenario, *, clock=NOW, size=(100, 30)):
    client = FakeClient()
    app = CofiApp(SETTINGS, client_factory=lambda s: client, clock=lambda: clock,
                  gpu_refresh_s=0)

    async def main():
        async with app.run_test(size=size) as pilot:
            # the batch, and ListGpus for the health banner (it takes a line when shown)
            while app.model is None or not app.model.completed or app.gpus is None:
                await pilot.pause(0.05)
            await pilot.pause(0.3)
            return await scenario(app, pilot, client)

    return asyncio.run(main())


def test_errors_panel_and_live_notification():
    async def scenario(app, pilot, client):
        await pilot.press("e")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ErrorsScreen)
        table = app.screen.query_one("#error-table")
        row = [str(c) for c in table.get_row_at(0)]  # cells are Text: data, never markup
        assert row[1:] == ["STT", FILES[5], "BackendError: gpu-b: 503 Service Unavailable"]
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, EventDetailScreen)
        assert app.screen.event.event_type == "error"
        return [n.message for n in app._notifications]

    # the clock at the batch's start: its failure is live and notifies
    notes = run(scenario, clock=T0)
    assert any(FILES[5] in n and "503" in n for n in notes)
    # opened long after: history, no notification flood
    assert not run(lambda app, pilot, c: _notes(app))


async def _notes(app):
    return [n.message for n in app._notifications]


def test_gpus_screen():
    async def scenario(app, pilot, client):
        await pilot.press("g")
        await pilot.pause(0.3)
        assert isinstance(app.screen, GpusScreen)
        t = app.screen.query_one("#gpu-table")
        rows = [[str(c) for c in t.get_row_at(i)] for i in range(t.row_count)]
        status = str(app.screen.query_one("#gpu-status").render())
        await pilot.press("escape")
        return rows, status, app.screen.id

    rows, status, back = run(scenario)
    assert rows[0][0] == "gpu-a" and rows[0][2:7] == ["3/4", "6", "6", "812", "1490"]
    assert "down" in rows[1][1] and rows[1][7:9] == ["45% (11)", "3"]  # rate, in a row
    assert status.startswith("1/2 healthy") and back == "dashboard"


def test_batches_filter_paging_and_switching():
    async def scenario(app, pilot, client):
        await pilot.press("b")
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, BatchesScreen)
        t = screen.query_one("#batch-table")
        assert t.row_count == 20
        await pilot.press("n")
        await pilot.pause(0.2)
        assert t.row_count == 5 and t.get_row_at(0)[0] == "10"
        await pilot.press("p")
        await pilot.pause(0.2)
        assert t.row_count == 20
        await pilot.click("#date-from")
        await pilot.press(*"2024-06-10", "enter")
        await pilot.pause(0.2)
        assert {str(t.get_row_at(i)[1]) for i in range(t.row_count)} == {"2024-06-10",
                                                                    "2024-06-11"}
        t.move_cursor(row=3)  # batch 27, a past batch
        await pilot.press("enter")
        await pilot.pause(0.3)
        return app.screen.id, app.model.batch_id, app.follow, client.watch_calls[-1]

    screen, batch, follow, last_watch = run(scenario)
    assert (screen, batch, follow, last_watch) == ("dashboard", 27, False, (27, 0))


def test_export_csv_and_jsonl(tmp_path):
    async def scenario(app, pilot, client):
        await pilot.click("#card-stt")  # the mouse selects a card: its events are in view
        await pilot.press("x")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ExportScreen)
        app.screen.query_one("#export-path").value = str(tmp_path / "stt.csv")
        await pilot.press("enter")
        await pilot.pause(0.2)
        await pilot.press("a", "x")  # all stages, JSON lines through the button
        await pilot.pause(0.2)
        app.screen.query_one("#export-path").value = str(tmp_path / "all")
        await pilot.click("#as-jsonl")
        await pilot.pause(0.2)
        return len(app.model.view("stt")), len(app.model.events)

    n_stt, n_all = run(scenario)
    rows = list(csv.DictReader((tmp_path / "stt.csv").open()))
    assert len(rows) == n_stt and {r["stage"] for r in rows} == {"stt"}
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    assert len(lines) == n_all and json.loads(lines[-1])["stage"] == "pipeline"


def test_cards_keyboard_navigation_and_detail():
    async def scenario(app, pilot, client):
        await pilot.click("#card-lid")
        await pilot.press("right")
        await pilot.pause(0.1)
        stage = app.screen.stage
        await pilot.press("enter")  # to the card's events
        await pilot.press("enter")  # the newest one in full
        await pilot.pause(0.2)
        return stage, app.screen

    stage, screen = run(scenario)
    assert stage == "triaging" and isinstance(screen, EventDetailScreen)
    assert screen.event.stage == "triaging"


def test_target_and_token_resolution(tmp_path, monkeypatch):
    tok = tmp_path / "tok"
    tok.write_text("s3cret\n")
    tok.chmod(0o600)
    monkeypatch.setenv("COFI_TARGET", "x:2")
    monkeypatch.setenv("COFI_TOKEN", "env")
    s = parse_args(["--target", "h:1", "--token-file", str(tok)])
    assert (s.target, s.token, s.batch_id) == ("h:1", "s3cret", None)
    s = parse_args(["--batch", "7"])
    assert (s.target, s.token, s.batch_id) == ("x:2", "env", 7)
    monkeypatch.delenv("COFI_TARGET")
    monkeypatch.delenv("COFI_TOKEN")
    monkeypatch.delenv("COFID_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # no default token file
    monkeypatch.chdir(tmp_path)  # no var/cofid.sock here
    assert parse_args([]).target == DEFAULT_TCP
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "cofid.sock").touch()
    assert parse_args([]).target == "unix:var/cofid.sock"
