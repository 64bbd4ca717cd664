"""bench.triaging at a tiny size prints one JSON object with the figures the README quotes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_triaging_benchmark_tiny() -> None:
    p = subprocess.run([sys.executable, "-m", "bench.triaging", "--seeds", "1-2", "--trades",
                        "400"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1, p.stdout
    out = json.loads(lines[0])
    assert out["seeds"] == [1, 2] and out["trades"] > 600
    assert {"precision", "recall", "min_precision", "min_recall", "worst_seed", "classes",
            "skew", "rule"} <= set(out)
    assert {"gap", "no_end", "skew_edge", "after_end", "multi", "concurrent",
            "app_trade"} <= set(out["classes"])
    assert 0.9 < out["precision"] <= 1.0 and 0.9 < out["recall"] <= 1.0
    # Errors by case add up to the headline figures; ambiguous trades are counted, not dropped.
    errors = out["errors"]
    wrong = sum(errors["wrong_call_total"].values())
    no_call = sum(errors["no_call_total"].values())
    missed = sum(errors["missed_total"].values())
    negatives = [out["classes"][label] for label in ("app_trade", "never_called")]
    assert no_call == sum(c["false_positives"] for c in negatives)
    assert out["mapped"] - out["correct"] == wrong + no_call
    assert out["with_call"] - out["correct"] == wrong + missed
    assert set(errors["no_call"]) <= {"app_trade", "never_called"}
    for kind in ("wrong_call", "no_call", "missed"):
        for counts in errors[kind].values():
            assert set(counts) == {"decidable", "ambiguous"}
    assert out["ambiguous"]["trades"] >= errors["no_call_total"]["ambiguous"]
    assert 0 < out["ambiguous"]["trades"] < out["trades"]
    assert out["decidable"]["trades"] == out["trades"] - out["ambiguous"]["trades"]
    assert out["decidable"]["precision"] >= out["precision"]
    legacy = json.loads(subprocess.run(
        [sys.executable, "-m", "bench.triaging", "--seeds", "1-2", "--trades", "400", "--legacy"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True).stdout)
    assert legacy["rule"]["max_clock_skew_s"] == 0.0
    assert legacy["recall"] < out["recall"]
