"""Failures grouped by cause and GPU (pure): one row per (stage, GPU, cause) with a count,
most frequent first. The cause is the error message with the file's own name taken out
(so "x.wav: simulated GPU error" and "y.wav: simulated GPU error" are one cause)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tui.model import EventRecord


@dataclass(frozen=True)
class ErrorGroup:
    stage: str
    gpu: str
    cause: str
    count: int
    files: int  # distinct files among them (GPU-health events have none)


def cause_of(ev: EventRecord) -> str:
    text = ev.error_message or ev.status or "failed"
    if ev.file_name:
        text = text.replace(ev.file_name, "<file>")
    return " ".join(text.split())


def group_errors(events: list[EventRecord]) -> list[ErrorGroup]:
    counts: Counter[tuple[str, str, str]] = Counter()
    files: dict[tuple[str, str, str], set[str]] = {}
    for ev in events:
        if not ev.is_error:
            continue
        key = (ev.stage, ev.gpu_ip, cause_of(ev))
        counts[key] += 1
        if ev.file_name:
            files.setdefault(key, set()).add(ev.file_name)
    return [
        ErrorGroup(s, g, c, n, len(files.get((s, g, c), ())))
        for (s, g, c), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
