"""Pinned screens (pytest-textual-snapshot): fixed data, fixed size, a fixed clock.
Update after an intended change with `pytest tests/tui --snapshot-update`."""

from __future__ import annotations

from tests.tui.fakes import NOW, SETTINGS, FakeClient
from tui.app import CofiApp


def make_app() -> CofiApp:
    return CofiApp(SETTINGS, client_factory=lambda s: FakeClient(), clock=lambda: NOW,
                   gpu_refresh_s=0)


async def settle(pilot) -> None:
    app = pilot.app
    while app.model is None or not app.model.completed or app.model.info.batch_date == "":
        await pilot.pause(0.05)
    await pilot.pause(0.3)
    app._dirty = True
    app._refresh_if_dirty()
    await stable(pilot)


async def stable(pilot, *, tries: int = 50) -> None:
    """Wait until two renders 0.1 s apart are identical: on a loaded machine the last
    messages and layout passes can land after any fixed pause."""
    previous = None
    for _ in range(tries):
        await pilot.pause(0.1)
        current = pilot.app.export_screenshot()
        if current == previous:
            return
        previous = current


def test_dashboard_80x24(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=settle)


def test_dashboard_140x45(snap_compare):
    assert snap_compare(make_app(), terminal_size=(140, 45), run_before=settle)


def test_event_detail(snap_compare):
    async def open_detail(pilot):
        await settle(pilot)
        ev = next(e for e in pilot.app.model.events
                  if e.stage == "stt" and e.event_type == "file_complete")
        pilot.app.open_event(ev)
        await stable(pilot)

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=open_detail)


def test_batches_screen(snap_compare):
    async def open_batches(pilot):
        await settle(pilot)
        await pilot.press("b")
        await stable(pilot)

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=open_batches)
