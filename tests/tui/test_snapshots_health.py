"""Pinned screens of issue 17 (pytest-textual-snapshot): a stalled batch's dashboard (the
health banner: no file finished, 0/2 GPUs healthy; the pictures; the daemon's counters
with retries; a stage that is off; the status in words; no ETA while stalled) at 80×24
and 160×48; the `/` filter, `?` help and the cancel confirmation at 80×24; errors grouped
by cause and GPU, and the call view's reaudit dialog, at 160×48."""

from __future__ import annotations

from dataclasses import replace

from tests.tui.fakes import FILES, NOW, SETTINGS, FakeClient, RunningFakeClient
from tests.tui.test_snapshots import settle as settle_done
from tests.tui.test_snapshots import stable
from tui.app import CofiApp
from tui.screens.call_view import CallScreen
from tui.verdict_model import VerdictRow


def make_app() -> CofiApp:
    return CofiApp(
        SETTINGS,
        client_factory=lambda s: RunningFakeClient(),
        clock=lambda: NOW,
        gpu_refresh_s=0,
        snapshot_s=0,
    )


async def settle(pilot) -> None:
    app = pilot.app
    while (
        app.model is None
        or not app.model.snapshotted
        or app.gpus is None
        or app.conn_state != "connected"
    ):
        await pilot.pause(0.05)
    await pilot.pause(0.3)
    app._dirty = True
    app._refresh_if_dirty()
    await stable(pilot)


def test_stalled_dashboard_80x24(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=settle)


def test_stalled_dashboard_160x48(snap_compare):
    assert snap_compare(make_app(), terminal_size=(160, 48), run_before=settle)


# The operator actions need an operator token (tui.actions); never on screen.
OPERATOR = replace(SETTINGS, operator_token="op-fake", operator_token_source="test")


def completed_app(operator: bool = False) -> CofiApp:
    return CofiApp(
        OPERATOR if operator else SETTINGS, client_factory=lambda s: FakeClient(),
        clock=lambda: NOW, gpu_refresh_s=0,
    )


def test_filter_80x24(snap_compare):
    async def run(pilot):
        await settle_done(pilot)
        # Enter: back to the table with the filter kept (no blinking input cursor to pin)
        await pilot.press("slash", *"gpu:gpu-b", "space", *"stt", "enter")
        await stable(pilot)

    assert snap_compare(completed_app(), terminal_size=(80, 24), run_before=run)


def test_errors_grouped_160x48(snap_compare):
    async def run(pilot):
        await settle_done(pilot)
        await pilot.press("e")
        await stable(pilot)

    assert snap_compare(completed_app(), terminal_size=(160, 48), run_before=run)


def test_help_80x24(snap_compare):
    async def run(pilot):
        await settle_done(pilot)
        await pilot.press("question_mark")
        await stable(pilot)

    assert snap_compare(completed_app(), terminal_size=(80, 24), run_before=run)


def test_cancel_confirmation_80x24(snap_compare):
    async def run(pilot):
        await settle_done(pilot)
        await pilot.press("c")
        await stable(pilot)

    assert snap_compare(completed_app(operator=True), terminal_size=(80, 24), run_before=run)


def test_call_view_reaudit_160x48(snap_compare):
    async def run(pilot):
        await settle_done(pilot)
        pilot.app.push_screen(
            CallScreen(VerdictRow(30, "T-0042", "mismatch", FILES[3], "quantity differs"))
        )
        await stable(pilot)
        await pilot.press("r")
        await stable(pilot)

    assert snap_compare(completed_app(operator=True), terminal_size=(160, 48), run_before=run)
