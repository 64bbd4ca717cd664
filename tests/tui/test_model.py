"""tui.model: folding events into cards, duplicates, snapshots, rates, ETA, export — and the
module stays pure (no textual, no grpc)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from tests.test_architecture import imports_of
from tests.tui.fakes import FILES, NOW, T0, batch_events
from tui.export_data import to_csv, to_jsonl
from tui.model import (
    COMPLETE,
    IN_PROGRESS,
    PENDING,
    STAGES,
    BatchInfo,
    BatchModel,
    EventRecord,
    StageSnapshot,
    format_duration,
    next_backoff,
    pretty_json,
)
from tui.rates import eta, human_status

ROOT = Path(__file__).resolve().parents[2]


def folded(events=None) -> BatchModel:
    m = BatchModel(30)
    m.apply_all(batch_events() if events is None else events)
    return m


def test_model_is_pure():
    bad = {i for i in imports_of(ROOT / "tui" / "model.py")
           if i.split(".")[0] in ("textual", "grpc", "protos", "trio", "rich")}
    assert not bad


def test_finished_batch_folds_to_complete_cards():
    m = folded()
    assert m.completed and m.info.status == "Completed"
    assert all(c.status == COMPLETE for c in m.cards.values())
    assert (m.cards["stt"].done, m.cards["stt"].failed, m.cards["stt"].total) == (11, 1, 12)
    assert m.cards["callmetadata"].done == 12 and m.cards["llm2"].fraction == 1.0
    assert [e.file_name for e in m.errors] == [FILES[5]] and m.failed_files == 1
    assert len(m.cards["lid"].recent) == 20  # only the last 20 per stage
    assert m.overall_fraction() == 1.0 and eta(m, NOW) == timedelta(0)


def test_duplicates_and_other_batches_change_nothing():
    events = batch_events()
    m = folded(events[:40])
    before = (m.last_event_id, m.cards["denoise"].done, len(m.events))
    assert m.apply_all(events[:40]) == 0  # a replay after reconnect
    assert m.apply(replace(events[40], batch_id=99)) is False
    assert (m.last_event_id, m.cards["denoise"].done, len(m.events)) == before
    assert m.apply_all(events[40:]) == len(events) - 40
    assert [e.id for e in m.events] == [e.id for e in events]


def test_running_batch_progress_rate_and_eta():
    events = batch_events(until_stage="stt")
    m = folded(events)
    stt = m.cards["stt"]
    assert stt.status == IN_PROGRESS and (stt.done, stt.failed) == (6, 1)
    assert m.cards["llm1"].status == PENDING and not m.completed
    now = events[-1].timestamp
    assert stt.files_per_minute(now) == 7.0  # seven finished within the last minute
    assert stt.files_per_minute(now + timedelta(minutes=5)) == 0.0
    m.cards["llm1"].total = m.cards["llm2"].total = 12
    assert 0 < m.overall_fraction() < 1
    # the slowest remaining stage at its rate: STT has 5 left at 7/min; LLM1/LLM2 have no
    # rate yet and borrow the slowest known one (7/min) for their 12 files
    assert eta(m, now) == timedelta(minutes=12 / 7)
    m.cards["llm2"].measured_fpm = 2.0  # the daemon's measured rate wins
    assert eta(m, now) == timedelta(minutes=6)
    assert m.cards["denoise"].files_per_minute(now) > 0  # complete: its average


def test_stage_start_resets_counters_for_a_resumed_run():
    m = folded(batch_events(until_stage="stt"))
    ev = EventRecord(10_000, 30, NOW, "stt", "stage_start", status="processing",
                     total_files=12, processed_files=4)
    m.apply(ev)
    assert (m.cards["stt"].done, m.cards["stt"].skipped, m.cards["stt"].total) == (0, 4, 12)


def test_snapshot_counters_are_the_daemons_and_events_no_longer_move_them():
    m = folded(batch_events(until_stage="stt"))
    info = BatchInfo(30, "2024-06-11", 3, "llm1Done", "batch", 12, T0)
    snaps = [StageSnapshot(s, "Complete" if s == "denoise" else "InProgress", 12, 9, 0, 0,
                           retries=4 if s == "stt" else 0, disabled=s == "ivr")
             for s in STAGES]
    m.apply_snapshot(info, snaps)
    assert m.info.batch_date == "2024-06-11" and m.info.status == "llm1Done"
    assert m.cards["denoise"].done == 9  # complete: the database's final numbers
    assert (m.cards["stt"].done, m.cards["stt"].retries) == (9, 4)  # running: the daemon's
    assert (m.cards["llm1"].status, m.cards["llm1"].done) == (IN_PROGRESS, 9)  # untouched
    assert m.cards["ivr"].disabled and human_status(m) == "transcribing + extracting trades +1"
    # a restarted run's stage_start (its own counters) and replayed files change nothing
    m.apply(EventRecord(10_000, 30, NOW, "stt", "stage_start", status="processing",
                        total_files=12, processed_files=10))
    m.apply(EventRecord(10_001, 30, NOW, "stt", "file_complete", status="success",
                        file_name=FILES[9]))
    assert (m.cards["stt"].done, m.cards["stt"].skipped, m.cards["stt"].failed) == (9, 0, 0)
    assert m.failed_files == 0 and m.retries == 4
    assert m.elapsed(T0 + timedelta(minutes=2)) == timedelta(minutes=2)


def test_gpu_health_events_are_not_file_failures():
    m = folded(batch_events(until_stage="stt"))
    before = m.cards["stt"].failed
    m.apply(EventRecord(10_000, 30, NOW, "stt", "error", status="failed", gpu_ip="gpu-b",
                        error_message="GPU gpu-b marked unhealthy after 3 failures in a row",
                        metadata_json='{"gpu_healthy": false}'))
    assert m.cards["stt"].failed == before and m.failed_files == before


def test_export_csv_and_jsonl_round_trip():
    m = folded()
    events = m.view("stt")
    rows = list(csv.DictReader(io.StringIO(to_csv(events))))
    assert len(rows) == len(events) and rows[0]["stage"] == "stt"
    assert rows[-1]["metadata_json"] == events[-1].metadata_json
    lines = [json.loads(x) for x in to_jsonl(events).splitlines()]
    assert [x["id"] for x in lines] == [e.id for e in events]
    assert lines[0]["timestamp"] == events[0].timestamp.isoformat()
    assert len(m.view(errors_only=True)) == 1


def test_helpers():
    assert pretty_json('{"a":1}') == '{\n  "a": 1\n}' and pretty_json("not json") == "not json"
    assert format_duration(timedelta(seconds=3725)) == "1:02:05"
    assert format_duration(None) == "—"
    delays = [next_backoff(0.0)]
    for _ in range(6):
        delays.append(next_backoff(delays[-1]))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
