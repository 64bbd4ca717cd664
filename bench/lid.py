"""Language identification quality: the embedded CPU engine on the labelled speech set.

`python -m bench.lid [--set full|small] [--model base|DIR] [--cpu-threads N] [--dir D]`

What runs: `cofid.testing.speech_set` is written to --dir (default .cache/speech_set; clips
already there are reused), then `CpuLid` with the thresholds of the default configuration
([backends.cpu] lid_*; override with --min-en-p / --min-hi-p / --min-en-logprob /
--confident-p / --weak-en-p / --weak-en-logprob) labels every clip, one at a time. The Hinglish text rule
(`cofid.domain.language.label_language` without probabilities) labels
`speech_set.HINGLISH_TEXTS`; no model is involved there.

Prints one JSON object: the machine (CPU model, cores, AVX flags), the model and its
SHA-256, the thresholds; for speech the confusion matrix (truth -> predicted over en / hi /
hinglish / other), per-class precision / recall / support, how many unsupported-language
clips came out other, a per-language row, the evidence range per class (p_en, p_hi, the
English decode's log-probability: what the thresholds are calibrated on) and the seconds
per clip; for text the confusion matrix and hinglish precision / recall. --clips writes
every clip's result too. --config FILE with `[backends] lid = "remote"` runs that remote
LID (the first [[gpus]] host) over the same clips and reports it under "remote".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import trio

from cofid.backends.base import AudioRef
from cofid.backends.cpu.whisper import WhisperEngine
from cofid.backends.cpu.whisper_lid import CpuLid, LidThresholds
from cofid.backends.cpu.whisper_model import resolve_model
from cofid.backends.factory import build_hosts
from cofid.config import Config, load_config
from cofid.domain.language import label_language
from cofid.domain.ports import LidBackend
from cofid.testing.quality import confusion_matrix, precision_recall
from cofid.testing.speech_set import (
    HINGLISH_TEXTS,
    SpeechClip,
    small_clips,
    speech_clips,
    write_speech_set,
)

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("en", "hi", "hinglish", "other")


def machine() -> dict[str, Any]:
    """The CPU the numbers come from (model name, cores, SIMD flags)."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = sorted(f for f in flags if f in ("avx2", "avx512f", "avx512_vnni", "avx512bw"))
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "simd": simd,
        "python": platform.python_version(),
    }


def _evidence_ranges(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[float] | None]]:
    """Per true class, [min, max] of each evidence value the LID reported."""
    out: dict[str, dict[str, list[float] | None]] = {}
    for label in LABELS:
        mine = [r["evidence"] for r in rows if r["label"] == label]
        ranges: dict[str, list[float] | None] = {}
        for key in ("p_en", "p_hi", "en_logprob"):
            values = [e[key] for e in mine if e.get(key) is not None]
            ranges[key] = [min(values), max(values)] if values else None
        out[label] = ranges
    return out


async def _label_clips(
    lid: LidBackend, directory: Path, clips: list[SpeechClip]
) -> list[dict[str, Any]]:
    """Run the LID on every clip, one at a time; one result row per clip."""
    rows = []
    for clip in clips:
        started = time.perf_counter()
        result = await lid.identify(AudioRef(directory / clip.name, clip.name))
        rows.append({
            "name": clip.name, "label": clip.label, "language": clip.language,
            "predicted": result.language, "confidence": round(result.confidence, 4),
            "detected": result.response.get("detected"), "method": result.response.get("method"),
            "evidence": result.response.get("evidence") or {},
            "seconds": round(time.perf_counter() - started, 2),
        })  # fmt: skip
    return rows


def speech_report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Confusion matrix, per-class precision/recall and the per-language rows."""
    matrix = confusion_matrix(((r["label"], r["predicted"]) for r in rows), LABELS)
    per_language: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        per_language[r["language"]][r["predicted"]] += 1
    unsupported = [r for r in rows if r["label"] == "other"]
    return {
        "clips": len(rows),
        "confusion": matrix,
        "per_class": precision_recall(matrix),
        "unsupported_as_other": f"{sum(r['predicted'] == 'other' for r in unsupported)}/{len(unsupported)}",
        "per_language": {lang: dict(counts) for lang, counts in sorted(per_language.items())},
        "evidence_ranges": _evidence_ranges(rows),
        "seconds_per_clip": round(sum(r["seconds"] for r in rows) / max(1, len(rows)), 2),
    }


def text_report() -> dict[str, Any]:
    """The Hinglish text rule on `HINGLISH_TEXTS`: confusion and hinglish precision/recall."""
    pairs = [
        (label, label_language(detected, None, text)[0]) for detected, text, label in HINGLISH_TEXTS
    ]
    matrix = confusion_matrix(pairs, ("en", "hi", "hinglish"))
    return {"texts": len(pairs), "confusion": matrix, "per_class": precision_recall(matrix),
            "hinglish": precision_recall(matrix)["hinglish"]}  # fmt: skip


def _remote_report(
    config: Path, directory: Path, clips: list[SpeechClip], with_clips: bool
) -> dict[str, Any]:
    """The configured remote LID (first GPU host) on the same clips, reported alike."""
    cfg = load_config(config)
    if cfg.backends.lid != "remote" or not cfg.gpus:
        return {"error": f"{config}: [backends] lid is {cfg.backends.lid!r}, no remote host"}
    host = build_hosts(cfg, clock=time.monotonic)[0]
    rows = trio.run(_label_clips, host.backends.lid, directory, clips)
    out: dict[str, Any] = {"host": host.name, "speech": speech_report(rows)}
    if with_clips:
        out["clips"] = rows
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: run the benchmark, print one JSON object."""
    cpu = Config().backends.cpu
    ap = argparse.ArgumentParser(prog="python -m bench.lid", description=__doc__.split("\n")[0])
    ap.add_argument("--set", choices=("full", "small"), default="full")
    ap.add_argument("--model", default=cpu.whisper_model, help="'base' or a model directory")
    ap.add_argument("--cpu-threads", type=int, default=cpu.cpu_threads)
    ap.add_argument("--dir", type=Path, default=ROOT / ".cache" / "speech_set")
    ap.add_argument(
        "--model-cache",
        type=Path,
        default=Path(os.environ.get("COFI_MODEL_CACHE") or ROOT / ".cache" / "models"),
    )
    ap.add_argument("--confident-p", type=float, default=cpu.lid_confident_p)
    ap.add_argument("--min-en-p", type=float, default=cpu.lid_min_en_p)
    ap.add_argument("--min-hi-p", type=float, default=cpu.lid_min_hi_p)
    ap.add_argument("--min-en-logprob", type=float, default=cpu.lid_min_en_logprob)
    ap.add_argument("--weak-en-p", type=float, default=cpu.lid_weak_en_p)
    ap.add_argument("--weak-en-logprob", type=float, default=cpu.lid_weak_en_logprob)
    ap.add_argument("--clips", action="store_true", help="include every clip's result")
    ap.add_argument(
        "--config",
        type=Path,
        help="a cofid.toml whose [backends] lid = 'remote': its first GPU host's LID is "
        "measured on the same clips too (under 'remote')",
    )
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    clips = speech_clips() if a.set == "full" else small_clips()
    write_speech_set(a.dir, clips)
    engine = WhisperEngine(resolve_model(a.model, a.model_cache), cpu_threads=a.cpu_threads)
    thresholds = LidThresholds(
        a.confident_p, a.min_en_p, a.min_hi_p, a.min_en_logprob, a.weak_en_p, a.weak_en_logprob
    )
    rows = trio.run(_label_clips, CpuLid(engine, thresholds=thresholds), a.dir, clips)
    out: dict[str, Any] = {
        "benchmark": "lid", "machine": machine(), "set": a.set,
        "decoder": engine.describe(), "load_s": engine.load_seconds,
        "thresholds": dataclasses.asdict(thresholds),
        "speech": speech_report(rows), "text": text_report(),
        "wall_s": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    if a.config is not None:
        out["remote"] = _remote_report(a.config, a.dir, clips, a.clips)
    if a.clips:
        out["clips"] = rows
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
