"""Every benchmark runs at a tiny size and prints the JSON keys the README quotes.

No timing assertions: the numbers depend on the machine. bench.all runs the others as
subprocesses, so one call covers every module and the collection itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCHEDULE_KEYS = {"makespan_s", "lower_bound_s", "ratio", "first_completion_s",
                 "mean_completion_s", "first_complete_s", "mean_complete_s",
                 "gpu_utilization", "wall_s"}
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
    out = run_module("bench.all", "--files", "24", "--mariadb", "no", "--out", str(out_file))
    assert json.loads(out_file.read_text()) == out
    runs = out["runs"]
    assert set(runs) == {"schedule_4x2", "barrier_4x2", "schedule_8x4", "barrier_8x4",
                         "throughput_sqlite"}
    for name, r in runs.items():
        assert "error" not in r, (name, r)
        keys = THROUGHPUT_KEYS if name.startswith("throughput") else SCHEDULE_KEYS
        assert keys <= set(r), (name, keys - set(r))
    s = runs["schedule_4x2"]
    assert s["files"] == 24 and s["failed"] == 0
    assert sum(s["statuses"].values()) == 24
    assert s["makespan_s"] >= s["lower_bound_s"] * 0.999
    assert len(s["gpu_utilization"]) == 4
    t = runs["throughput_sqlite"]
    assert t["failed"] == 0 and t["rows_by_table"]["transcript"] == 24 * 50
    assert t["rows_by_table"]["auditAnswer"] == 24 * 30
    assert out["checks"]


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
