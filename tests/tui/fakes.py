"""Canned daemon data for the TUI's snapshot and unit tests: fixed ids, fixed times."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from tui.config import Settings
from tui.model import (
    STAGES,
    BatchInfo,
    EventRecord,
    GpuInfo,
    Heartbeat,
    StageSnapshot,
)
from tui.verdict_model import CallDetail, Segment

T0 = datetime(2024, 6, 11, 10, 15, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=7, seconds=30)
FILES = [f"20240611_1015{i:02d}_AG17_C44{i:02d}.wav" for i in range(12)]
FAILED = {("stt", FILES[5]): "BackendError: gpu-b: 503 Service Unavailable"}
CSV_STAGES = ("file_distribution", "callmetadata", "trademetadata", "triaging")
SETTINGS = Settings(target="fake", token=None)


def batch_events(batch_id: int = 30, *, until_stage: str | None = None) -> list[EventRecord]:
    """A 12-file batch: every stage in order, one STT failure; stops before `until_stage`
    finishes when given (a batch still running)."""
    out: list[EventRecord] = []
    t = T0

    def add(**kw) -> None:
        nonlocal t
        t += timedelta(seconds=2)
        out.append(EventRecord(id=len(out) + 1, batch_id=batch_id, timestamp=t, **kw))

    for stage in STAGES:
        n = len(FILES)
        if stage in CSV_STAGES:
            add(stage=stage, event_type="stage_complete", status="success", total_files=n,
                processed_files=n, metadata_json=json.dumps({"rows": n, "errors": 0}))
            continue
        add(stage=stage, event_type="stage_start", status="processing", total_files=n,
            processed_files=0)
        done = failed = 0
        for i, f in enumerate(FILES):
            gpu = "gpu-a" if i % 2 == 0 else "gpu-b"
            if stage == until_stage and i == 7:
                return out
            add(stage=stage, event_type="file_start", status="processing", file_name=f,
                gpu_ip=gpu, payload=json.dumps({"audio": f, "model": f"{stage}-model"}))
            err = FAILED.get((stage, f))
            if err:
                failed += 1
                add(stage=stage, event_type="error", status="failed", file_name=f, gpu_ip=gpu,
                    error_message=err)
                continue
            done += 1
            add(stage=stage, event_type="file_complete", status="success", file_name=f,
                gpu_ip=gpu, payload=json.dumps({"audio": f, "model": f"{stage}-model"}),
                response=json.dumps({"text": f"result of {stage} for {f}", "segments": 3,
                                     "language": "en"}))
        add(stage=stage, event_type="stage_complete", status="success", total_files=n,
            processed_files=done + failed,
            metadata_json=json.dumps({"done": done, "failed": failed, "skipped": 0}))
    add(stage="pipeline", event_type="info", status="success", total_files=len(FILES),
        processed_files=len(FILES),
        metadata_json=json.dumps({"status": "Completed", "failed_files": 1}))
    return out


def batch_list() -> list[BatchInfo]:
    out = []
    for i in range(25):
        day = T0 - timedelta(days=i // 3)
        out.append(BatchInfo(
            batch_id=30 - i, batch_date=day.date().isoformat(), batch_number=3 - i % 3,
            status="Completed" if i else "llm1Done", source="upload" if i % 4 == 1 else "batch",
            total_files=100 + 7 * i, created_at=day - timedelta(hours=i % 3),
            completed_at=None if i == 0 else day - timedelta(hours=i % 3) + timedelta(
                minutes=40 + i)))
    return out


class FakeClient:
    def __init__(self, events: list[EventRecord] | None = None, completed: bool = True) -> None:
        self.events = batch_events() if events is None else events
        self.completed = completed
        self.batches = batch_list()
        self.watch_calls: list[tuple[int, int | None]] = []
        self.closed = False
        self.actions: list[tuple] = []  # operator RPCs received, in order
        self.refuse: Exception | None = None  # raised by the operator RPCs when set

    async def reaudit(self, audio_names, stages):
        self.actions.append(("Reaudit", tuple(audio_names), tuple(stages)))
        if self.refuse:
            raise self.refuse
        return "task-r1"

    async def get_call(self, audio_name, batch_id):
        return CallDetail(
            batch_id or 30, audio_name, "Complete", "en", 42.5,
            transcript=(Segment(0.0, 3.2, "May I have your client code please?", "agent"),
                        Segment(3.4, 7.9, "I want to buy 100 shares of INFY.", "client")),
            extracted=("BUY 100 INFY @ MKT",), answers=(("Was the order confirmed?", "yes"),),
            mapped=("T-0042: BUY 150 INFY @ 1500",))

    async def batch_task(self, batch_id):
        self.actions.append(("ListTasks", batch_id))
        return "task-b30"

    async def cancel_task(self, task_id):
        self.actions.append(("CancelTask", task_id))
        if self.refuse:
            raise self.refuse
        return "cancelled"

    async def close(self) -> None:
        self.closed = True

    async def list_batches(self, date_from, date_to, page_size, page_token):
        rows = [b for b in self.batches if (not date_from or b.batch_date >= date_from)
                and (not date_to or b.batch_date <= date_to)]
        start = int(page_token or 0)
        nxt = start + page_size
        return rows[start:nxt], str(nxt) if nxt < len(rows) else ""

    async def get_batch(self, batch_id: int):
        info = BatchInfo(batch_id, "2024-06-11", 3,
                         "Completed" if self.completed else "sttDone", "batch", len(FILES),
                         T0, T0 + timedelta(minutes=6, seconds=4) if self.completed else None,
                         "/data/batches/2024-06-11_3")
        stages = []
        for s in STAGES:
            failed = sum(1 for (st, _f) in FAILED if st == s)
            stages.append(StageSnapshot(s, "Complete" if self.completed else "Pending",
                                        len(FILES), len(FILES) - failed, failed, 0, 0.0))
        return info, stages

    async def list_gpus(self):
        return [GpuInfo("gpu-a", "http://10.0.0.11:8000", True, 4, 3, 6, 6, 812.0, 1490.0, 0),
                GpuInfo("gpu-b", "http://10.0.0.12:8000", False, 4, 0, 6, 5, 954.0, 2210.0, 3,
                        11, 0.45)]

    async def watch(self, batch_id, from_event_id, *, event_types=(), idle_timeout=30.0):
        self.watch_calls.append((batch_id, from_event_id))
        if batch_id:
            for e in self.events:
                if e.batch_id == batch_id and e.id > (from_event_id or 0):
                    yield e
        yield Heartbeat(self.events[-1].id if self.events else 0)
        await asyncio.Event().wait()  # an idle live stream


class RunningFakeClient(FakeClient):
    """Batch 30 in the middle of STT, as GetBatch reports it: earlier stages complete
    (denoise off for this batch), STT with retries and a measured rate, no file finished
    for 3 min 20 s, and both GPU hosts down."""

    def __init__(self) -> None:
        super().__init__(batch_events(until_stage="stt"), completed=False)

    async def get_batch(self, batch_id: int):
        info = BatchInfo(batch_id, "2024-06-11", 3, "triagingDone", "batch", len(FILES), T0,
                         None, "/data/batches/2024-06-11_3",
                         last_file_finished_at=NOW - timedelta(minutes=3, seconds=20))
        n, before = len(FILES), STAGES.index("stt")
        stages = [StageSnapshot(s, "Complete", n, n, 0, 0, 0.0, measured_fpm=20.0)
                  for s in STAGES[:before]]
        stages[STAGES.index("denoise")] = StageSnapshot("denoise", "Complete", 0, 0, 0, 0,
                                                        disabled=True)
        stages.append(StageSnapshot("stt", "InProgress", n, 6, 1, 0, 0.0, retries=3,
                                    measured_fpm=4.0))
        stages += [StageSnapshot(s, "Pending", n) for s in STAGES[before + 1:]]
        return info, stages

    async def list_gpus(self):
        return [GpuInfo("gpu-a", "http://10.0.0.11:8000", False, 4, 0, 6, 4, 812.0, 1490.0, 7),
                GpuInfo("gpu-b", "http://10.0.0.12:8000", False, 4, 0, 6, 3, 954.0, 2210.0, 9,
                        14, 0.45)]
