"""The `/` filter over events (pure): words that must all match, each either a field test
(`file:`, `stage:`, `type:`, `gpu:`, `status:`) or free text found in any of them or in
the error message. Case-insensitive substring matches: `stage:stt type:error gpu:b`."""

from __future__ import annotations

from tui.model import TITLES, EventRecord

FIELDS = ("file", "stage", "type", "gpu", "status")


def _values(ev: EventRecord) -> dict[str, str]:
    return {
        "file": ev.file_name,
        "stage": f"{ev.stage} {TITLES.get(ev.stage, '')}",
        "type": ev.event_type,
        "gpu": ev.gpu_ip,
        "status": ev.status,
    }


def matches(ev: EventRecord, query: str) -> bool:
    values = {k: v.lower() for k, v in _values(ev).items()}
    anywhere = " ".join([*values.values(), ev.error_message.lower()])
    for word in query.lower().split():
        key, sep, want = word.partition(":")
        if sep and key in FIELDS:
            if want not in values[key]:
                return False
        elif word not in anywhere:
            return False
    return True


def filtered(events: list[EventRecord], query: str, limit: int = 200) -> list[EventRecord]:
    """The newest `limit` events that match, oldest first."""
    out: list[EventRecord] = []
    for ev in reversed(events):
        if matches(ev, query):
            out.append(ev)
            if len(out) >= limit:
                break
    return out[::-1]
