"""Time series for the dashboard's pictures, from the events in view (pure: no textual).

Buckets split the batch's run (its start to its end, or to now while it runs) into equal
slices; each counts the events of one kind that fall in it. Counted: stage-files finished
successfully (throughput) and file failures (GPU-health events are not file failures).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from tui.model import BatchModel, EventRecord, GpuInfo

BUCKETS = 40


def bucketed(
    times: Iterable[datetime], start: datetime, end: datetime, buckets: int = BUCKETS
) -> list[int]:
    out = [0] * buckets
    span = (end - start).total_seconds()
    if span <= 0:
        return out
    for t in times:
        i = int((t - start).total_seconds() / span * buckets)
        if 0 <= i <= buckets:
            out[min(i, buckets - 1)] += 1
    return out


def _finished(ev: EventRecord) -> bool:
    return ev.event_type == "file_complete" and ev.status != "failed"


def _file_failure(ev: EventRecord) -> bool:
    return ev.is_error and not ev.is_gpu_health and bool(ev.file_name)


def window(model: BatchModel, now: datetime | None) -> tuple[datetime, datetime] | None:
    start = model.started_at()
    end = model.info.completed_at or (model.last_event_at if model.completed else now)
    if start is None or end is None or end <= start:
        return None
    return start, end


def throughput(model: BatchModel, now: datetime | None) -> list[int]:
    w = window(model, now)
    if w is None:
        return []
    return bucketed((e.timestamp for e in model.events if e.timestamp and _finished(e)), *w)


def errors(model: BatchModel, now: datetime | None) -> list[int]:
    w = window(model, now)
    if w is None:
        return []
    return bucketed((e.timestamp for e in model.events if e.timestamp and _file_failure(e)), *w)


def last_minute(model: BatchModel, now: datetime | None, *, failures: bool) -> int:
    """Finished stage-files (or file failures) in the minute before the window's end."""
    w = window(model, now)
    if w is None:
        return 0
    since = w[1] - timedelta(minutes=1)
    pick = _file_failure if failures else _finished
    n = 0
    for e in reversed(model.events):  # newest first: stop at the first older one
        if e.timestamp is None:
            continue
        if e.timestamp <= since:
            break
        n += pick(e)
    return n


def gpu_cells(g: GpuInfo, width: int = 4) -> str:
    """Busy slots as a bar: ▮ busy, ▯ free (scaled to `width` cells)."""
    if g.slots <= 0:
        return "▯" * width
    busy = round(min(g.slots_in_use, g.slots) / g.slots * width)
    return "▮" * busy + "▯" * (width - busy)
