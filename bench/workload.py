"""The seeded workload and the GPU cost model shared by bench.schedule and bench.barrier.

Durations (seconds of audio), drawn with random.Random(seed), one file after another:
with probability 0.10 a short call, uniform in [0.5, 4.9]; else lognormal with median
90 s and sigma 1.0, capped at 3 h. The same (n, seed) always gives the same list.

Service time of a stage = fixed + per_audio_second × duration GPU-seconds. Calls under
MIN_DURATION_S skip stt, llm1 and llm2 (the STT gate settles them as ShortCall).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

STAGES: tuple[str, ...] = ("denoise", "ivr", "lid", "stt", "llm1", "llm2")
COSTS: dict[str, tuple[float, float]] = {  # stage: (fixed s, s per audio second)
    "denoise": (0.05, 0.010),
    "ivr": (0.05, 0.005),
    "lid": (0.20, 0.0),
    "stt": (0.30, 0.030),
    "llm1": (1.50, 0.0),
    "llm2": (3.00, 0.0),
}
MIN_DURATION_S = 5.0
MEDIAN_S = 90.0
SIGMA = 1.0
CAP_S = 3 * 3600.0
SHORT_FRACTION = 0.10
SHORT_RANGE = (0.5, 4.9)


def durations(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < SHORT_FRACTION:
            out.append(round(rng.uniform(*SHORT_RANGE), 3))
        else:
            out.append(round(min(CAP_S, rng.lognormvariate(math.log(MEDIAN_S), SIGMA)), 3))
    return out


def ordered(durs: list[float], order: str) -> list[float]:
    """The workload in feed order: as drawn ("given"), or shortest chain first ("shortest",
    what feeding files by size would do; the engine feeds in distribution order)."""
    if order == "given":
        return list(durs)
    if order == "shortest":
        return sorted(durs, key=chain_s)
    raise ValueError(f"unknown order {order!r}")


def file_name(i: int) -> str:
    """The placeholder audio name of file i (sorted names keep the workload order)."""
    return f"call_{i:06d}.wav"


def placeholder_batch(directory: Path, files: int) -> Path:
    """A batch directory of `files` empty placeholder calls (file_name(i)): the instant
    fake backends never read them."""
    directory.mkdir()
    for i in range(files):
        (directory / file_name(i)).touch()
    return directory


def service_s(stage: str, duration_s: float) -> float:
    fixed, per_s = COSTS[stage]
    return fixed + per_s * duration_s


def stages_of(duration_s: float) -> tuple[str, ...]:
    return STAGES if duration_s >= MIN_DURATION_S else STAGES[:3]


def chain_s(duration_s: float) -> float:
    return sum(service_s(s, duration_s) for s in stages_of(duration_s))


def lower_bound_s(durs: list[float], total_slots: int) -> float:
    """No schedule beats total work / slots, nor the longest single file's chain."""
    total = sum(chain_s(d) for d in durs)
    return max(total / total_slots, max((chain_s(d) for d in durs), default=0.0))


def total_work_s(durs: list[float]) -> float:
    return sum(chain_s(d) for d in durs)


def fake_pipeline_config(db_url: str, data_dir, *, file_start_events: bool) -> dict:
    """The batch plan on the fake backends with the stages the cost model has (denoise,
    ivr, lid, stt, llm1, llm2) and no CSV stages, as schedule and throughput run it."""
    return {
        "database": {"url": db_url},
        "paths": {"data": str(data_dir)},
        "backends": {"denoise": "fake", "ivr": "fake", "lid": "fake", "stt": "fake",
                     "chat": "fake"},
        "pipelines": {"batch": {"denoise": True, "ivr": True, "callmetadata": False,
                                "trademetadata": False, "triaging": False, "llm1": True,
                                "llm2": True}},
        "stages": {"file_start_events": file_start_events},
        "service": {"log_level": "WARNING"},
    }
