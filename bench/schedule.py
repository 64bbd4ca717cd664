"""The real engine on simulated GPUs, in virtual time: how close is its schedule to ideal?

`python -m bench.schedule --files N --gpus G --slots S --seed K [--dump FILE]`
`python -m bench.schedule ... --seeds 1-50` (a range or a list, 1,5,9-12; --slow-gpus K)

What runs: open_app + prepare_batch + run_batch — the batch plan, the streaming engine,
the GPU pool, the stages and the group-commit writer, unchanged — under
trio.testing.MockClock(autojump_threshold=0), so hours of GPU time take seconds. Only the
backends are simulated: each GPU gets a FakeBackends whose every call first sleeps its
service time from bench.workload (fixed + per audio second × duration, GPU-seconds).

Decisions:

1. Files: the batch plan reads a directory, so N sparse placeholder files named
   call_NNNNNN.wav are created in a temporary directory; the fake backends map a name to
   its seeded duration (FakeBackends(script=...)). LID reports that duration, and the
   engine's STT gate turns calls under 5 s into ShortCall (no stt, llm1, llm2). The
   recordingDigest of a placeholder is the SHA-256 of its name and size, not of its
   bytes: reading 1,000 sparse files of zeros took ~90 % of a seed's wall time and is
   done in worker threads before the run, so it changes no figure.
2. Database: in-memory SQLite (`sqlite://`) with Database(inline=True), so no DB call runs
   in a thread: with a thread, MockClock would jump while it works and the makespan would
   mean nothing. file_start events are off (file_complete events stay on).
3. Plan: denoise and ivr on; callmetadata, trademetadata and triaging off (no CSVs).
4. GPU stage times are recorded by wrapping the engine's backend call (Engine._call) on
   the instance; a call's completion is the commit of its last file_complete event (its
   final status: Complete, or ShortCall from the STT gate), seen through app.bus.listeners.
5. Files are fed in distribution order, by latest start time and then shortest first, with
   file size as the proxy for duration (the placeholders are as large as 8 kHz recordings
   of their durations; cofid.plans.feed_order argues the rule). --order shortest names
   them shortest first, which changes nothing but ties.
6. The remote (OpenAI-compatible) backends send the audio with every request, so files
   have no GPU affinity (Backends.needs_affinity False): any free slot may take any file;
   --affinity keeps each file on the GPU it was distributed to, as a host-local disk would.

7. --slow-gpus K makes the first K GPUs --slowdown times slower (every call sleeps that
   much longer); the bound is then total work / the slots' summed speed (and the longest
   chain on a full-speed slot).
8. --down FROM-TO: GPU 0 dies FROM virtual seconds after the run starts (its calls in
   flight fail then) and refuses connections (an immediate BackendError, not its model's)
   until TO, then comes back. Its circuit breaker opens, probes after each
   cool-down, and closes when a probe lands after TO. The bound counts the lost capacity
   (total work + its slots' down time at its speed, over all slots), and `failed` says
   whether a file failed for good (a probe of the dead host must not use up a file's try).
9. --seeds runs one workload per seed, one after another in this process, and prints
   their runs with worst_ratio and median_ratio (and the worst mean completion over the
   barrier schedule's, bench.barrier with --assign rr, on the same workload).

Prints makespan_s, lower_bound_s (max of total work / slots and the longest single file's
chain), ratio, first/mean completion (all calls, and calls that reached Complete),
mean_vs_barrier, per-GPU utilization and wall_s, as one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import trio
import trio.testing

from bench import workload as w
from bench.barrier import simulate as simulate_barrier
from cofid.backends.base import AudioRef, BackendError, ChatRequest
from cofid.backends.fake import FakeBackends, FakeCall
from cofid.backends.health import CircuitBreaker
from cofid.config import parse_config
from cofid.domain.evidence_bundle import FileDigest
from cofid.engine.gpus import Gpu
from cofid.service import digests
from cofid.service.app import open_app


class SimBackends(FakeBackends):
    """FakeBackends whose calls take the cost model's service time (trio.sleep)."""

    def __init__(self, durations: dict[str, float], slowdown: float = 1.0) -> None:
        super().__init__(script=lambda name: FakeCall(duration_s=durations[name], segments=6))
        self.durations = durations
        self.slowdown = slowdown
        self.down: tuple[float, float] | None = None  # virtual times it refuses connections

    async def _work(self, stage: str, name: str | None) -> None:
        busy = self.slowdown * w.service_s(stage, self.durations[name] if name else 0.0)
        if self.down is not None:
            now, (start, end) = trio.current_time(), self.down
            if start <= now < end:
                await trio.sleep(0.001)
                raise BackendError("simulated host down: connection refused")
            if now < start < now + busy:  # the host dies under this call
                await trio.sleep(start - now)
                raise BackendError("simulated host down: connection reset")
        await trio.sleep(busy)

    async def denoise(self, audio: AudioRef, output: Path):
        await self._work("denoise", audio.name)
        return await super().denoise(audio, output)

    async def trim(self, audio: AudioRef, output: Path):
        await self._work("ivr", audio.name)
        return await super().trim(audio, output)

    async def identify(self, audio: AudioRef):
        await self._work("lid", audio.name)
        return await super().identify(audio)

    async def transcribe(self, audio: AudioRef, language: str):
        await self._work("stt", audio.name)
        return await super().transcribe(audio, language)

    async def complete(self, request: ChatRequest):
        await self._work(request.purpose, None)  # llm1 / llm2: no per-second cost
        return await super().complete(request)


def bench_config(data_dir: Path, *, file_start_events: bool = False) -> dict[str, Any]:
    return w.fake_pipeline_config("sqlite://", data_dir, file_start_events=file_start_events)


def write_placeholders(directory: Path, durs: list[float]) -> None:
    """Sparse files as large as an 8 kHz 16-bit recording of each duration (no disk used):
    the engine distributes by file size, as it would real recordings."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, d in enumerate(durs):
        with open(directory / w.file_name(i), "wb") as f:
            f.truncate(44 + int(d * 16000))


def placeholder_digest(path: str | Path) -> FileDigest:
    """A placeholder's stand-in digest (decision 1): unique per name and size."""
    size = os.stat(path).st_size
    return FileDigest(size, hashlib.sha256(f"{Path(path).name}:{size}".encode()).hexdigest())


async def _run(durs: list[float], gpus: int, slots: int, tmp: Path, affinity: bool,
               speeds: list[float], down: tuple[float, float] | None) -> dict:
    with mock.patch.object(digests, "hash_file", placeholder_digest):
        return await _run_batch(durs, gpus, slots, tmp, affinity, speeds, down)


async def _run_batch(durs: list[float], gpus: int, slots: int, tmp: Path, affinity: bool,
                     speeds: list[float], down: tuple[float, float] | None) -> dict:
    names = {w.file_name(i): d for i, d in enumerate(durs)}
    batch_dir = tmp / "batch"
    write_placeholders(batch_dir, durs)
    gpu_list = []
    sims = []
    for g in range(gpus):
        sims.append(SimBackends(names, 1.0 / speeds[g]))
        b = sims[-1].backends()
        b.needs_affinity = affinity
        gpu_list.append(Gpu(f"gpu{g}", slots, b, CircuitBreaker(clock=trio.current_time)))
    cfg = parse_config(bench_config(tmp / "data"))
    spans: dict[str, dict[str, list]] = {n: {} for n in names}
    completion: dict[str, float] = {}
    status: dict[str, str] = {}
    busy = {g.name: 0.0 for g in gpu_list}
    async with open_app(cfg, gpus=gpu_list, inline_db=True) as app:
        batch_id = await app.prepare_batch(batch_dir)
        engine = app.engine
        call = engine._call

        async def timed_call(stage, f, gpu, ctx):
            start = trio.current_time()
            try:
                return await call(stage, f, gpu, ctx)
            finally:
                end = trio.current_time()
                busy[gpu.name] += end - start
                spans[f.audio_name][stage.stage.value] = [gpu.name, start, end]

        engine._call = timed_call  # instrumentation only: the engine is otherwise untouched

        def on_event(e) -> None:
            if e.event_type != "file_complete" or not e.file_name:
                return
            completion[e.file_name] = trio.current_time()
            if e.stage == "llm2":
                status[e.file_name] = "Complete"
            elif isinstance(e.response, dict) and "status" in e.response:
                status[e.file_name] = e.response["status"]

        app.bus.listeners.append(on_event)
        wall0 = time.perf_counter()
        t0 = trio.current_time()
        if down is not None:
            sims[0].down = (t0 + down[0], t0 + down[1])
        run = await app.run_batch(batch_id)
        makespan = trio.current_time() - t0
        run_wall = time.perf_counter() - wall0
        failed = sum(c.failed for c in run.counters.values())
        groups = app.writer.groups_committed
        items = app.writer.items_committed
    rel = {n: completion[n] - t0 for n in completion}
    for per in spans.values():
        for v in per.values():
            v[1] = round(v[1] - t0, 3)
            v[2] = round(v[2] - t0, 3)
    return {"makespan": makespan, "completion": rel, "status": status, "spans": spans,
            "busy": busy, "failed": failed, "run_wall": run_wall, "groups": groups,
            "items": items}


def parse_down(text: str) -> tuple[float, float]:
    """'600-1800' -> (600.0, 1800.0): when GPU 0 is down, in seconds after the run starts."""
    lo, sep, hi = text.partition("-")
    try:
        start, end = float(lo), float(hi)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--down wants FROM-TO seconds, not {text!r}") from None
    if not sep or not 0 <= start < end:
        raise argparse.ArgumentTypeError(f"--down wants 0 <= FROM < TO, not {text!r}")
    return start, end


def parse_seeds(text: str) -> list[int]:
    """'1-50', '3,7,9-12' -> the seeds, in order."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def run(files: int, gpus: int, slots: int, seed: int, *, affinity: bool = False,
        order: str = "given", dump: str | None = None, slow_gpus: int = 0,
        slowdown: float = 2.0, down: tuple[float, float] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    durs = w.ordered(w.durations(files, seed), order)
    speeds = [1.0 / slowdown if g < slow_gpus else 1.0 for g in range(gpus)]
    with tempfile.TemporaryDirectory(prefix="cofi-bench-") as tmp:
        r = trio.run(_run, durs, gpus, slots, Path(tmp), affinity, speeds, down,
                     clock=trio.testing.MockClock(autojump_threshold=0))
    names = [w.file_name(i) for i in range(files)]
    comp = [r["completion"].get(n) for n in names]
    done = [c for c in comp if c is not None]
    full = [r["completion"][n] for n in names if r["status"].get(n) == "Complete"]
    mk = r["makespan"]
    # GPU 0's slots were lost while it was down (within the run): that work fell on the rest.
    lost = slots * speeds[0] * max(0.0, min(down[1], mk) - min(down[0], mk)) if down else 0.0
    bound = max((w.total_work_s(durs) + lost) / (slots * sum(speeds)),
                max((w.chain_s(d) for d in durs), default=0.0))
    barrier = simulate_barrier(durs, gpus, slots)["completion"]
    mean = sum(done) / len(done) if done else None
    statuses: dict[str, int] = {}
    for n in names:
        s = r["status"].get(n, "none")
        statuses[s] = statuses.get(s, 0) + 1
    out = {
        "benchmark": "schedule", "seed": seed, "files": files, "gpus": gpus, "slots": slots,
        "affinity": affinity, "order": order, "slow_gpus": slow_gpus,
        "slowdown": slowdown if slow_gpus else 1.0,
        "down": list(down) if down else None,
        "makespan_s": round(mk, 1),
        "lower_bound_s": round(bound, 1),
        "ratio": round(mk / bound, 4) if bound else None,
        "first_completion_s": round(min(done), 1) if done else None,
        "mean_completion_s": round(mean, 1) if mean is not None else None,
        # Against the seed's barrier schedule of the same workload at full speed.
        "mean_vs_barrier": round(mean / (sum(barrier) / len(barrier)), 4) if mean else None,
        "first_complete_s": round(min(full), 1) if full else None,
        "mean_complete_s": round(sum(full) / len(full), 1) if full else None,
        "gpu_utilization": [round(b / (slots * mk), 4) if mk else 0.0 for b in r["busy"].values()],
        "total_work_gpu_s": round(w.total_work_s(durs), 1),
        "statuses": statuses,
        "failed": r["failed"],
        "writer_groups": r["groups"],
        "writer_items": r["items"],
        "run_wall_s": round(r["run_wall"], 2),
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    if dump:
        with open(dump, "w", encoding="utf-8") as fh:
            json.dump({"summary": out, "files": [
                {"name": n, "duration_s": d, "status": r["status"].get(n),
                 "completion_s": None if c is None else round(c, 3), "stages": r["spans"][n]}
                for n, d, c in zip(names, durs, comp, strict=True)
            ]}, fh)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.schedule",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--gpus", type=int, default=4)
    ap.add_argument("--slots", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--affinity", action="store_true",
                    help="keep every file on the GPU it was distributed to")
    ap.add_argument("--order", choices=("given", "shortest"), default="given",
                    help="feed order: as drawn, or shortest chain first (by file name)")
    ap.add_argument("--dump", help="write the workload and every file's GPU and stage times here")
    ap.add_argument("--seeds", help="run every seed of a range or list (1-50, 3,7,9-12)")
    ap.add_argument("--slow-gpus", type=int, default=0, help="how many GPUs are slower")
    ap.add_argument("--slowdown", type=float, default=2.0, help="how much slower they are")
    ap.add_argument("--down", type=parse_down, metavar="FROM-TO",
                    help="GPU 0 refuses connections from FROM to TO virtual seconds into the run")
    a = ap.parse_args(argv)
    kw: dict[str, Any] = {"affinity": a.affinity, "order": a.order, "slow_gpus": a.slow_gpus,
                          "slowdown": a.slowdown, "down": a.down}
    if a.seeds:
        t0 = time.perf_counter()
        runs = [run(a.files, a.gpus, a.slots, seed, **kw) for seed in parse_seeds(a.seeds)]
        ratios = [x["ratio"] for x in runs]
        worst = max(runs, key=lambda x: x["ratio"])
        out = {"benchmark": "schedule", "files": a.files, "gpus": a.gpus, "slots": a.slots,
               "slow_gpus": a.slow_gpus, "down": a.down, "seeds": [x["seed"] for x in runs],
               "worst_ratio": worst["ratio"], "worst_seed": worst["seed"],
               "median_ratio": round(statistics.median(ratios), 4),
               "worst_mean_vs_barrier": max(x["mean_vs_barrier"] for x in runs),
               "failed": sum(x["failed"] for x in runs), "runs": runs,
               "wall_s": round(time.perf_counter() - t0, 2)}
    else:
        out = run(a.files, a.gpus, a.slots, a.seed, dump=a.dump, **kw)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
