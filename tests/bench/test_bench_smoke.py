"""Every benchmark runs at a tiny size and prints the JSON keys the README quotes.

No timing assertions: the numbers depend on the machine. bench.all runs the others as
subprocesses, so one call covers every module and the collection itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCHEDULE_KEYS = {"makespan_s", "lower_bound_s", "ratio", "first_completion_s",
                 "mean_completion_s", "first_complete_s", "mean_complete_s",
                 "gpu_utilization", "wall_s"}
FANOUT_KEYS = {"events_per_s_total", "events_per_s_per_subscriber", "dropped", "fell_behind",
               "latency_ms_p50", "latency_ms_p99", "per_subscriber", "batch_s", "wall_s",
               "slowdown", "alone_batch_s", "cpu_slowdown", "daemon_cpu_s",
               "alone_daemon_cpu_s", "clients_cpu_s"}
RESUME_KEYS = {"resume_first_result_s", "peak_rss_mb", "vm_hwm_mb", "rss_series_mb",
               "at_kill", "final", "wall_s"}
UPLOAD_KEYS = {"total_ms", "upload_ms", "processing_ms", "states", "wall_s"}
THROUGHPUT_KEYS = {"files_per_s", "rows", "rows_per_s", "bulk_load_s", "ratio_to_bulk",
                   "peak_rss_mb", "pipeline_s", "wall_s"}


def run_module(*args: str) -> dict:
    p = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, check=True)
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1, p.stdout  # one JSON object, nothing else on stdout
    return json.loads(lines[0])


def test_all_benchmarks_tiny(tmp_path):
    out_file = tmp_path / "results.json"
    out = run_module("bench.all", "--files", "24", "--subscribers", "4", "--upload-runs", "2",
                     "--mariadb", "no", "--out", str(out_file))
    assert json.loads(out_file.read_text()) == out
    runs = out["runs"]
    assert set(runs) == {"schedule_4x2", "barrier_4x2", "schedule_8x4", "barrier_8x4",
                         "throughput_sqlite", "resume", "fanout", "upload_latency"}
    for name, r in runs.items():
        assert "error" not in r, (name, r)
        keys = (THROUGHPUT_KEYS if name.startswith("throughput") else RESUME_KEYS
                if name == "resume" else FANOUT_KEYS
                if name == "fanout" else UPLOAD_KEYS if name == "upload_latency"
                else SCHEDULE_KEYS)
        assert keys <= set(r), (name, keys - set(r))
    s = runs["schedule_4x2"]
    assert s["files"] == 24 and s["failed"] == 0
    assert sum(s["statuses"].values()) == 24
    assert s["makespan_s"] >= s["lower_bound_s"] * 0.999
    assert len(s["gpu_utilization"]) == 4
    t = runs["throughput_sqlite"]
    assert t["failed"] == 0 and t["rows_by_table"]["transcript"] == 24 * 50
    assert t["rows_by_table"]["auditAnswer"] == 24 * 30
    r = runs["resume"]  # killed at 12 Complete calls, the rest done by the resume, once
    assert r["at_kill"]["calls_by_status"]["Complete"] >= 12
    assert r["final"]["calls_by_status"] == {"Complete": 24}
    assert r["final"]["results_twice"] == 0 and r["final"]["file_stage_results"] == 24 * 6
    assert r["final"]["batch_status"] == ["Completed"]
    f = runs["fanout"]
    assert f["task_state"] == "completed" and f["calls_by_status"] == {"Complete": 24}
    assert len(f["per_subscriber"]) == 4
    # Every subscriber is open before the batch starts: each gets every event its filter
    # matches (events/s and latencies are machine-dependent and not asserted).
    assert f["dropped"] == 0 and f["fell_behind"] == 0 and f["unexpected"] == 0
    assert f["per_subscriber"][0]["expected"] > 24 * 6  # "all": at least every file_complete
    u = runs["upload_latency"]
    assert u["states"] == {"completed": 3}  # 2 runs + 1 warm-up
    assert u["audio"]["seconds"] == 60.0 and u["audio"]["rate"] == 8000
    assert u["total_ms"]["p50"] >= u["upload_ms"]["p50"] > 0
    assert out["checks"]["fanout_dropped"]["met"]


def test_schedule_dump(tmp_path):
    dump = tmp_path / "dump.json"
    out = run_module("bench.schedule", "--files", "12", "--gpus", "2", "--slots", "2",
                     "--seed", "3", "--dump", str(dump))
    d = json.loads(dump.read_text())
    assert d["summary"] == out
    assert len(d["files"]) == 12
    for f in d["files"]:
        assert f["stages"]["lid"][0] in ("gpu0", "gpu1")
        start, end = f["stages"]["denoise"][1:]
        assert 0 <= start <= end <= f["completion_s"] + 1e-6
        if f["duration_s"] < 5:
            assert f["status"] == "ShortCall" and "stt" not in f["stages"]
        else:
            assert f["status"] == "Complete" and "llm2" in f["stages"]
    b = run_module("bench.barrier", "--files", "12", "--gpus", "2", "--slots", "2",
                   "--seed", "3", "--dump", str(tmp_path / "b.json"))
    assert b["lower_bound_s"] == out["lower_bound_s"]


def test_fanout_subscribers_in_a_child_process():
    out = run_module("bench.fanout", "--files", "12", "--subscribers", "3", "--clients",
                     "process")
    assert out["clients"] == "process" and out["task_state"] == "completed"
    assert [p["filter"] for p in out["per_subscriber"]] == ["all", "all", "file_complete"]
    assert out["dropped"] == 0 and out["fell_behind"] == 0
    # Six file stages and the distribution (issue 15), one each per file.
    assert out["per_subscriber"][2]["received"] == 12 * 7
    assert out["events_delivered"] == sum(p["received"] for p in out["per_subscriber"])
    # The child's CPU is counted apart from the daemon's (both measured, both positive).
    assert out["clients_cpu_s"] > 0 and out["daemon_cpu_s"] > 0
    # (the figures are rounded to 10 ms, the ratio is of the unrounded ones)
    assert out["cpu_slowdown"] == pytest.approx(
        out["daemon_cpu_s"] / out["alone_daemon_cpu_s"], rel=0.1)


def test_upload_latency_inprocess_worker():
    out = run_module("bench.upload_latency", "--runs", "2", "--warmup", "0", "--worker",
                     "inprocess")
    assert out["states"] == {"completed": 2} and out["replies"] == ["queued"]
    assert out["simworker_requests"]["chat"] >= 2 * 2  # llm1 and llm2 per call
