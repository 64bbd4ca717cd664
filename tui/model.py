"""The dashboard's data: events folded into per-stage card state, rates and ETA.

Pure Python (no textual, no grpc): the adapters convert protobuf messages into the plain
records below, and the widgets render what this module computes. Time is always passed
in (`now`), so the same events always give the same picture.

Folding rules (the daemon's batchExecutionLog, cofid/engine/run.py):

1. Events are applied in id order; an event whose id is not above the last applied id is a
   duplicate (a replay after a reconnect) and changes nothing.
2. stage_start resets a card's counters to what the event carries (a resumed run starts a
   stage again with its own counters) and marks the stage InProgress.
3. stage_progress and stage_complete carry the engine's authoritative counters in their
   metadata {done, failed, skipped}; CSV and distribution stages carry rows instead
   (done = processed_files, failed = total_files - processed_files). stage_complete marks
   the stage Complete.
4. Between stage-level events, file_complete (success) adds one done and error adds one
   failed, so cards move with every file, not only every progress tick.
5. A snapshot (GetBatch, polled while the batch runs) gives the header and every stage's
   status, and its counters (the daemon's state: they survive a restart and reopening
   the batch) replace the folded ones; from then on events no longer move that card's
   counters, only its status (so a replay or a restarted run cannot make them jump).
   GPU-health events (metadata gpu_healthy) are failures of a host, not of a file.
6. The `info` event of stage "pipeline" with metadata status "Completed" completes the batch.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

STAGES: tuple[str, ...] = (
    "file_distribution", "callmetadata", "trademetadata", "denoise", "ivr", "lid",
    "triaging", "stt", "llm1", "llm2",
)
TITLES: dict[str, str] = {
    "file_distribution": "File distribution", "callmetadata": "Call metadata",
    "trademetadata": "Trade metadata", "denoise": "Denoise", "ivr": "IVR", "lid": "LID",
    "triaging": "Triaging", "stt": "STT", "llm1": "LLM1", "llm2": "LLM2",
}
PENDING, IN_PROGRESS, COMPLETE = "Pending", "InProgress", "Complete"
RECENT_PER_STAGE = 20
RATE_WINDOW = timedelta(seconds=60)
MAX_EVENTS = 50_000  # events kept for the table and export (oldest dropped first)
MAX_ERRORS = 1_000


@dataclass(frozen=True)
class EventRecord:
    id: int
    batch_id: int
    timestamp: datetime | None
    stage: str
    event_type: str
    file_name: str = ""
    gpu_ip: str = ""
    payload: str = ""
    response: str = ""
    status: str = ""
    error_message: str = ""
    total_files: int | None = None
    processed_files: int | None = None
    metadata_json: str = ""

    @property
    def metadata(self) -> dict[str, Any]:
        return parse_json_object(self.metadata_json)

    @property
    def is_error(self) -> bool:
        return self.event_type == "error" or self.status == "failed"

    @property
    def is_gpu_health(self) -> bool:
        """A GPU going unhealthy or coming back (cofid.engine.reporting): not a file's."""
        return "gpu_healthy" in self.metadata


@dataclass(frozen=True)
class StageSnapshot:
    stage: str
    status: str
    total: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    files_per_minute: float = 0.0
    disabled: bool = False  # the batch's plan skips the stage
    retries: int = 0
    measured_fpm: float = 0.0  # the daemon's rate over the stage's recorded work


@dataclass(frozen=True)
class BatchInfo:
    batch_id: int
    batch_date: str = ""
    batch_number: int = 0
    status: str = ""
    source: str = ""
    total_files: int = 0
    created_at: datetime | None = None
    completed_at: datetime | None = None
    source_dir: str = ""
    verdict_counts: dict[str, int] = field(default_factory=dict)  # verdict -> trades
    last_file_finished_at: datetime | None = None  # the daemon's, for the stall banner


@dataclass
class StageCard:
    stage: str
    status: str = PENDING
    total: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    touched: bool = False
    disabled: bool = False
    retries: int = 0
    measured_fpm: float = 0.0
    from_daemon: bool = False  # a snapshot set the counters: events no longer move them
    recent: deque[EventRecord] = field(default_factory=lambda: deque(maxlen=RECENT_PER_STAGE))
    finishes: deque[datetime] = field(default_factory=deque)

    @property
    def title(self) -> str:
        return TITLES.get(self.stage, self.stage)

    @property
    def processed(self) -> int:
        return self.done + self.failed + self.skipped

    @property
    def fraction(self) -> float:
        if self.status == COMPLETE:
            return 1.0
        return min(1.0, self.processed / self.total) if self.total else 0.0

    def files_per_minute(self, now: datetime | None) -> float:
        """Finished files per minute: the last minute while running, the stage's average
        once complete."""
        if self.status == COMPLETE:
            if self.started_at and self.completed_at and self.processed:
                secs = (self.completed_at - self.started_at).total_seconds()
                return self.processed * 60.0 / secs if secs > 0 else 0.0
            return 0.0
        if now is None or not self.finishes:
            return 0.0
        return float(sum(1 for t in self.finishes if now - t <= RATE_WINDOW))

    def _set_counts(self, total: int | None, done: int, failed: int, skipped: int) -> None:
        if total is not None:
            self.total = total
        self.done, self.failed, self.skipped = done, failed, skipped


@dataclass(frozen=True)
class ErrorEntry:
    event_id: int
    timestamp: datetime | None
    stage: str
    file_name: str
    message: str


class BatchModel:
    """One batch's dashboard state, built from a snapshot and the event stream."""

    def __init__(self, batch_id: int) -> None:
        self.batch_id = batch_id
        self.info = BatchInfo(batch_id)
        self.cards: dict[str, StageCard] = {s: StageCard(s) for s in STAGES}
        self.events: deque[EventRecord] = deque(maxlen=MAX_EVENTS)
        self.errors: deque[ErrorEntry] = deque(maxlen=MAX_ERRORS)
        self.last_event_id = 0
        self.completed = False
        self.snapshotted = False  # a GetBatch answer has been applied
        self.first_event_at: datetime | None = None
        self.last_event_at: datetime | None = None

    # -- folding ---------------------------------------------------------------------

    def apply(self, ev: EventRecord) -> bool:
        """Fold one event; False when it is a duplicate or belongs to another batch."""
        if ev.id <= self.last_event_id or (self.batch_id and ev.batch_id != self.batch_id):
            return False
        self.last_event_id = ev.id
        self.events.append(ev)
        if ev.timestamp is not None:
            self.first_event_at = self.first_event_at or ev.timestamp
            self.last_event_at = ev.timestamp
        if ev.is_error:
            self.errors.append(ErrorEntry(ev.id, ev.timestamp, ev.stage, ev.file_name,
                                          ev.error_message or ev.status))
        if ev.stage == "pipeline":
            if ev.metadata.get("status") == "Completed":
                self.completed = True
                self.info = _replace(self.info, status="Completed",
                                     completed_at=self.info.completed_at or ev.timestamp)
            elif ev.metadata.get("status"):
                self.info = _replace(self.info, status=str(ev.metadata["status"]))
            return True
        card = self.cards.get(ev.stage)
        if card is None:
            return True
        card.touched = True
        card.recent.append(ev)
        self._fold(card, ev)
        return True

    def apply_all(self, events: list[EventRecord]) -> int:
        return sum(self.apply(e) for e in events)

    def _fold(self, card: StageCard, ev: EventRecord) -> None:
        md = ev.metadata
        et = ev.event_type
        if card.from_daemon or ev.is_gpu_health:
            self._fold_status(card, ev)
        elif et == "stage_start":
            card.status = IN_PROGRESS
            card.started_at = card.started_at or ev.timestamp
            card.completed_at = None
            # no metadata here: what the run already counted are files it passed over
            card._set_counts(ev.total_files, int(md.get("done", 0)), int(md.get("failed", 0)),
                             int(md.get("skipped", ev.processed_files or 0)))
        elif et in ("stage_progress", "stage_complete"):
            if "done" in md:
                card._set_counts(ev.total_files, int(md["done"]), int(md.get("failed", 0)),
                                 int(md.get("skipped", 0)))
            elif ev.total_files is not None:
                processed = ev.processed_files or 0
                card._set_counts(ev.total_files, processed,
                                 max(0, ev.total_files - processed), 0)
            if et == "stage_complete":
                card.status = COMPLETE
                card.started_at = card.started_at or ev.timestamp
                card.completed_at = ev.timestamp
            elif card.status == PENDING:
                card.status = IN_PROGRESS
        elif et == "file_complete" and ev.status != "failed":
            card.done += 1
            self._finished(card, ev)
        elif et == "error":
            card.failed += 1
            self._finished(card, ev)
        elif et == "file_start" and card.status == PENDING:
            card.status = IN_PROGRESS
            card.started_at = card.started_at or ev.timestamp

    def _fold_status(self, card: StageCard, ev: EventRecord) -> None:
        if ev.event_type == "stage_complete":
            card.status, card.completed_at = COMPLETE, ev.timestamp
        elif ev.event_type == "stage_start":
            card.status, card.completed_at = IN_PROGRESS, None
            card.started_at = card.started_at or ev.timestamp
        elif ev.event_type in ("file_complete", "error") and not ev.is_gpu_health:
            self._finished(card, ev)  # the rate still follows the events

    def _finished(self, card: StageCard, ev: EventRecord) -> None:
        if card.status == PENDING:
            card.status = IN_PROGRESS
        if ev.timestamp is not None:
            card.finishes.append(ev.timestamp)
            while card.finishes and ev.timestamp - card.finishes[0] > RATE_WINDOW:
                card.finishes.popleft()

    def apply_snapshot(self, info: BatchInfo, stages: list[StageSnapshot]) -> None:
        self.info, self.snapshotted = info, True
        if info.status == "Completed":
            self.completed = True
        for s in stages:
            card = self.cards.get(s.stage)
            if card is None:
                continue
            if s.status == COMPLETE or not card.touched:
                card.status = s.status if s.status else card.status
            card._set_counts(s.total, s.done, s.failed, s.skipped)
            card.disabled, card.retries, card.measured_fpm = s.disabled, s.retries, s.measured_fpm
            card.from_daemon = True

    # -- derived figures -------------------------------------------------------------

    @property
    def failed_files(self) -> int:
        """Files failed at a stage: the daemon's counters once known, else the events'."""
        if self.snapshotted:
            return sum(c.failed for c in self.cards.values())
        return len({(e.file_name, e.stage) for e in self.errors if e.file_name})

    @property
    def retries(self) -> int:
        return sum(c.retries for c in self.cards.values())

    def overall_fraction(self) -> float:
        if self.completed:
            return 1.0
        total = sum(c.total for c in self.cards.values())
        done = sum(min(c.processed, c.total) if c.status != COMPLETE else c.total
                   for c in self.cards.values())
        return done / total if total else 0.0

    def started_at(self) -> datetime | None:
        return self.info.created_at or self.first_event_at

    def elapsed(self, now: datetime | None) -> timedelta | None:
        start = self.started_at()
        end = self.info.completed_at or (self.last_event_at if self.completed else now)
        if start is None or end is None:
            return None
        return max(timedelta(0), end - start)

    def view(self, stage: str | None = None, errors_only: bool = False) -> list[EventRecord]:
        """Events in view: one stage's or all, optionally only failures, oldest first."""
        return [e for e in self.events
                if (stage is None or e.stage == stage) and (not errors_only or e.is_error)]


# -- helpers --------------------------------------------------------------------------


def _replace(info: BatchInfo, **kw: Any) -> BatchInfo:
    return BatchInfo(**{**asdict(info), **kw})


def parse_json_object(text: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def pretty_json(text: str) -> str:
    """Indented JSON when `text` is JSON, the text unchanged otherwise."""
    if not text:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=False)
    except ValueError:
        return text


def format_duration(td: timedelta | None) -> str:
    if td is None:
        return "—"
    secs = int(td.total_seconds())
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_time(ts: datetime | None) -> str:
    return ts.strftime("%H:%M:%S") if ts else "--:--:--"


# -- stream and GPU records (what the client yields) -----------------------------------


@dataclass(frozen=True)
class Heartbeat:
    last_event_id: int
    server_time: datetime | None = None


@dataclass(frozen=True)
class Notice:
    code: str
    message: str = ""


@dataclass(frozen=True)
class GpuInfo:
    name: str
    url: str = ""
    healthy: bool = False
    slots: int = 0
    slots_in_use: int = 0
    files_assigned: int = 0
    files_done: int = 0
    latency_ms_p50: float = 0.0
    latency_ms_p95: float = 0.0
    consecutive_failures: int = 0
    requests_failed: int = 0
    error_rate: float = 0.0  # failed share of the host's last 200 requests


def next_backoff(previous: float, *, initial: float = 0.5, cap: float = 10.0) -> float:
    """Reconnect delays: initial, then doubling up to cap."""
    return initial if previous <= 0 else min(cap, previous * 2)
