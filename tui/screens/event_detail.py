"""One event in full: its fields, then payload, response and metadata pretty-printed in a
scrollable, selectable text area (c copies everything, Ctrl+C the selection).

A file's failure at a model server carries the request that failed as its payload (the
Event message's contract in protos/cofi/v1/cofi.proto: url without credentials, model,
status, message, a wrong reply's text): it is shown first, as "request that failed", one
field a line. Everything is the daemon's text, shown literally (a TextArea parses no
markup)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static, TextArea

from tui.model import EventRecord, parse_json_object, pretty_json
from tui.text import plain


def failed_request(ev: EventRecord) -> str:
    """The request a failure event names, one field a line; "" when it names none."""
    if not ev.is_error:
        return ""
    req = parse_json_object(ev.payload)
    if not isinstance(req.get("url"), str):
        return ""
    status = req.get("status")
    lines = [f"POST {req['url']}",
             f"model: {req.get('model') or '—'}",
             f"status: HTTP {status}" if status is not None else "status: no reply",
             f"message: {req.get('message') or '—'}"]
    if isinstance(req.get("reply"), str):
        lines.append(f"reply:\n{req['reply']}")
    return "\n".join(lines)


def detail_text(ev: EventRecord) -> str:
    request = failed_request(ev)
    parts = [
        ("request that failed", request) if request else
        ("payload", pretty_json(ev.payload) or "(empty)"),
        ("response", pretty_json(ev.response) or "(empty)"),
    ]
    if ev.error_message:
        parts.insert(0, ("error", ev.error_message))
    if ev.metadata_json:
        parts.append(("metadata", pretty_json(ev.metadata_json)))
    return "\n\n".join(f"── {name} ──\n{body}" for name, body in parts)


def summary_line(ev: EventRecord) -> Text:
    """The event's fields as Text: names are data, never markup (tui/text.py)."""
    ts = ev.timestamp.isoformat(timespec="milliseconds") if ev.timestamp else "—"
    counts = (f"  {ev.processed_files}/{ev.total_files} files"
              if ev.total_files is not None else "")
    return Text.assemble(
        (f"#{ev.id}", "bold"), f" {ts}  batch {ev.batch_id}  ", plain(ev.stage, "bold"), " ",
        plain(ev.event_type), "  ", plain(ev.status), counts, "\nfile: ",
        plain(ev.file_name or "—"), "   gpu: ", plain(ev.gpu_ip or "—"))


class EventDetailScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("c", "copy_all", "Copy all"),
    ]

    def __init__(self, event: EventRecord) -> None:
        super().__init__(id="event-detail")
        self.event = event

    def compose(self) -> ComposeResult:
        with Vertical(id="detail-box"):
            yield Static(summary_line(self.event), id="detail-summary")
            yield TextArea(detail_text(self.event), read_only=True, id="detail-text",
                           soft_wrap=True, show_line_numbers=False)
        yield Footer()

    def on_mount(self) -> None:
        box = self.query_one("#detail-box")
        box.border_title = f"Event {self.event.id}"
        self.query_one(TextArea).focus()

    def action_copy_all(self) -> None:
        self.app.copy_to_clipboard(detail_text(self.event))
        self.notify("Payload and response copied to the clipboard", timeout=2)
