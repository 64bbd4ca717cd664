"""A plan's pass over its files: what the engine tracks while it runs (counters per stage,
failures, the retry policy), read by progress displays, GetTask and systemd STATUS."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cofid.domain.model import Stage, StageStatus


@dataclass
class StageCounters:
    total: int = 0
    entered: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    gated: int = 0  # left alone by a rule (the STT gate), not failed
    skipped_ok: int = 0  # of skipped: done before a restart, or nothing to do here
    failed_before: int = 0  # of skipped: failed this stage before a restart
    status: str = StageStatus.PENDING
    started_at: float | None = None
    finished_at: float | None = None
    last_progress: float = 0.0  # monotonic time of the last progress event

    def rate_per_minute(self, now: float) -> float:
        if self.started_at is None:
            return 0.0
        span = (self.finished_at or now) - self.started_at
        return 60.0 * self.done / span if span > 0 else 0.0


@dataclass
class RetryPolicy:
    attempts: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.max_backoff_s, self.backoff_s * 2.0 ** (attempt - 1))
        return base * rng.uniform(0.5, 1.5)


@dataclass
class PlanRun:
    """One plan's pass over its files."""

    kind: str  # batch | upload | reaudit
    batch_id: int  # 0 for a reaudit (its files may span batches)
    stages: tuple[Stage, ...]
    total_files: int
    load_page: Callable[[int, int], Any]  # (after_fd_id, limit) -> awaitable list[FileState]
    update_batch: bool = True
    batch_statuses: dict[Stage, Any] = field(default_factory=dict)  # current batch_status values
    batch_status: str = "Pending"  # batch_status.status as last written (rule 8's walk)
    # Held while a stage's completion walks batch_status.status: two stages finishing at
    # once must not write a value twice or out of order.
    # (a trio.Lock the engine makes: the plans that build PlanRuns import no trio).
    status_lock: Any = field(default=None, repr=False)
    enabled: tuple[Stage, ...] = ()  # every stage of the batch plan (for the overall status)
    counters: dict[Stage, StageCounters] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (audio, stage, reason)
    draining: bool = False
    started: float = field(default_factory=time.monotonic)
    on_change: Callable[[PlanRun], None] | None = None
    # What the plan adds to its task's result (a reaudit: the calls it covers and the
    # calls it left alone, cofid.plans.reaudit).
    extra: dict[str, Any] = field(default_factory=dict)
    # Files counted without being fed (count_unfed): finished before a restart.
    unfed: int = 0

    def __post_init__(self) -> None:
        for s in self.stages:
            self.counters.setdefault(s, StageCounters(total=self.total_files))

    def count_unfed(self, by_failed_stage: Mapping[str | None, int]) -> int:
        """Count files the run is not fed because no stage of it needs them (a resumed
        batch's finished files: cofid.store.pending.finished_counts), `by_failed_stage`
        holding how many failed each stage before (None: failed nothing). They count at
        every stage as a fed file that needs nothing there does (Engine._process): skipped,
        and skipped_ok or failed_before. Returns how many there are."""
        n = sum(by_failed_stage.values())
        for stage, c in self.counters.items():
            c.skipped += n
            c.skipped_ok += by_failed_stage.get(None, 0)
            c.failed_before += by_failed_stage.get(stage.value, 0)
        self.unfed += n
        return n
