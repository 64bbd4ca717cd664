"""The event detail of a file failed by a model server shows the request that failed
(issue 17): URL, model, HTTP status, the server's message and a wrong reply's text, as
literal text — the `[bold]` and `[/x]` in the server's words stay as written.

The event is built as the daemon builds it: the backend's summary
(cofid.backends.remote_http.failed_request) in a cofid Event, turned into the gRPC Event
(cofid.api.convert) and read back by the TUI's client (tui.client.event_record)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from cofid.api.convert import event as to_pb
from cofid.backends.remote_http import failed_request
from cofid.domain.events import Event
from tests.tui.fakes import FILES, SETTINGS, T0, FakeClient, batch_events
from tui.app import CofiApp
from tui.client import event_record
from tui.screens.errors import ErrorsScreen
from tui.screens.event_detail import EventDetailScreen

URL = "http://ops:pw-Secret@10.0.0.7:8000/v1/chat/completions?api_key=KEY-Secret"
MESSAGE = "[bold]CUDA out of memory[/bold] on [/x] device 0\x1b[2J"
REPLY = "Sure! [red]Here[/red] is\nthe trade"


def failure() -> Event:
    request = failed_request(URL, model="qwen[2]", status=500, message=MESSAGE, reply=REPLY)
    return Event(batch_id=30, stage="stt", event_type="error", status="failed",
                 file_name=FILES[5], gpu="gpu-b", payload=request,
                 response={"status": 500, "reply": "{}"}, id=999,
                 error_message=f"http://10.0.0.7:8000/v1/chat/completions: HTTP 500: {MESSAGE}")


def events():
    record = event_record(to_pb(failure()))
    return [replace(record, id=e.id, timestamp=e.timestamp) if e.event_type == "error" else e
            for e in batch_events()]


def test_the_failed_request_is_shown_literally_in_the_event_detail():
    client = FakeClient(events())
    app = CofiApp(SETTINGS, client_factory=lambda s: client, clock=lambda: T0, gpu_refresh_s=0)

    async def main():
        async with app.run_test(size=(140, 40)) as pilot:
            while app.model is None or not app.model.completed:
                await pilot.pause(0.05)
            await pilot.pause(0.3)
            await pilot.press("e")
            await pilot.pause(0.3)
            assert isinstance(app.screen, ErrorsScreen)
            await pilot.press("enter")
            await pilot.pause(0.3)
            assert isinstance(app.screen, EventDetailScreen)
            text = app.screen.query_one("#detail-text").text
            return text, app.is_running

    text, running = asyncio.run(main())
    assert running
    section = text.split("── request that failed ──\n", 1)[1].split("\n\n── ", 1)[0]
    assert section == (
        "POST http://10.0.0.7:8000/v1/chat/completions\n"
        "model: qwen[2]\n"
        "status: HTTP 500\n"
        "message: [bold]CUDA out of memory[/bold] on [/x] device 0 [2J\n"
        "reply:\nSure! [red]Here[/red] is\nthe trade"
    )
    assert "Secret" not in text and "api_key" not in text
    assert "── response ──" in text
