"""bench.verdicts at a small size: one JSON object, every class drawn, the target met."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str) -> dict:
    p = subprocess.run([sys.executable, "-m", "bench.verdicts", *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, check=True)
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1, p.stdout  # one JSON object, nothing else on stdout
    return json.loads(lines[0])


def test_verdicts_bench_small() -> None:
    out = run_bench("--trades", "300", "--seed", "3", "--errors", "2")
    assert out["benchmark"] == "verdicts" and out["seed"] == 3 and out["trades"] == 300
    assert sum(sum(c.values()) for c in out["confusion"].values()) == 300
    for label in ("mismatch", "confirmed"):
        r = out[label]
        assert r["tp"] > 0
        assert r["precision"] == round(r["tp"] / (r["tp"] + r["fp"]), 4)
        assert r["recall"] == round(r["tp"] / (r["tp"] + r["fn"]), 4)
    assert out["mismatch"]["precision"] >= 0.99 and out["mismatch"]["recall"] >= 0.99
    assert out["target_met"] is True
    assert {"quantity", "side", "symbol", "price_outside", "not_confirmed", "market", "lots",
            "alias"} <= set(out["by_class"])
    assert set(out["by_shape"]) >= {"speakers", "plain", "merged", "lower"}
    assert len(out["examples"]) <= 2


def test_verdicts_bench_is_seeded() -> None:
    a = run_bench("--trades", "60", "--seed", "11")
    b = run_bench("--trades", "60", "--seed", "11")
    for key in ("mismatch", "confirmed", "confusion", "by_class"):
        assert a[key] == b[key]
