"""Upload latency: one 60-second call through UploadAudit until its task is completed.

`python -m bench.upload_latency --runs 50 [--warmup 1 --poll-ms 5 --worker process]`

What runs: serve_main in this process (gRPC on 127.0.0.1:0, token auth, SQLite in a
temporary directory) whose one GPU host is a `cofi-simworker` with time_scale 0 (every
answer instant; by default its own process, as a GPU host is its own machine; --worker
inprocess serves it on cofid's trio loop instead). [[gpus]] names its url, [backends]
lid/stt/chat = "remote" (HTTP to the simworker: LID, STT with the audio, LLM1 and LLM2
chat completions with JSON schemas) and denoise/ivr = "off", which is the upload pipeline.

Decisions:

1. The audio: 60 s of 8 kHz mono 16-bit PCM (a quiet 440 Hz tone with noise), written
   once with numpy + soundfile; 960,044 bytes, so one 1 MiB chunk carries it. Every run
   uploads those bytes under a new name (call_NNN.wav): no replace, no name clash.
2. One run, timed on the client with time.perf_counter from before the sha256 and the
   header are built: UploadAudit (header with name, size and sha256, then 1 MiB chunks)
   returns "queued" — upload_s; then GetTask every --poll-ms until the task is final —
   total_s (the poll interval bounds its resolution). Runs are sequential, one call at a
   time, so the figure is latency, not throughput.
3. The first --warmup runs (default 1: first connections, imports, SQLite pages) are not
   in the percentiles; their times are reported apart.
4. p50 / p99 are nearest-rank over the measured runs (with 50 runs p99 is the slowest).

Prints one JSON object: p50/p99/mean/min/max of total_s and upload_s (milliseconds),
the states the tasks ended in, the simworker's request counts and wall_s.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import soundfile as sf
import trio

from cofid.api.auth import bearer_metadata
from cofid.config import parse_config
from cofid.daemon import serve_main
from protos.cofi.v1 import cofi_pb2 as pb
from protos.cofi.v1 import cofi_pb2_grpc as pb_grpc

OP = "bench-operator-token"
CHUNK = 1024 * 1024
RATE = 8000
SECONDS = 60.0


def call_wav(path: Path, seconds: float = SECONDS, rate: int = RATE) -> bytes:
    """Write the benchmark's call once; returns its bytes."""
    rng = np.random.default_rng(11)
    n = int(seconds * rate)
    x = 0.1 * np.sin(2 * np.pi * 440.0 * np.arange(n) / rate) + 0.02 * rng.standard_normal(n)
    sf.write(path, x.astype("float32"), rate, subtype="PCM_16")
    return path.read_bytes()


def bench_config(tmp: Path, worker_url: str, slots: int) -> dict[str, Any]:
    return {
        "database": {"url": f"sqlite:///{tmp / 'data' / 'cofi.db'}"},
        "paths": {"data": str(tmp / "data")},
        "grpc": {"listen": ["127.0.0.1:0"],
                 "tokens": [{"name": "op", "role": "operator", "token": OP}]},
        "gpus": [{"name": "gpu-0", "url": worker_url, "slots": slots}],
        "backends": {"lid": "remote", "stt": "remote", "chat": "remote", "denoise": "off",
                     "ivr": "off", "remote": {"timeout_s": 30.0, "connect_timeout_s": 5.0}},
        "service": {"log_level": "WARNING", "shutdown_deadline_s": 10.0},
    }


def messages(name: str, data: bytes):
    header = pb.UploadHeader(files=[pb.UploadFile(
        name=name, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())])
    yield pb.UploadRequest(header=header)
    for off in range(0, len(data), CHUNK):
        yield pb.UploadRequest(chunk=pb.UploadChunk(file_index=0, data=data[off:off + CHUNK],
                                                    offset=off))


def client(address: str, data: bytes, runs: int, poll_s: float) -> list[dict[str, Any]]:
    """Sequential uploads, in a worker thread of the trio run that serves cofid."""
    channel = grpc.insecure_channel(address)
    stub = pb_grpc.CofiStub(channel)
    md = bearer_metadata(OP)
    out = []
    try:
        for i in range(runs):
            t0 = time.perf_counter()
            reply = stub.UploadAudit(messages(f"call_{i:03d}.wav", data), metadata=md,
                                     timeout=60)
            t1 = time.perf_counter()
            polls = 0
            while True:
                task = stub.GetTask(pb.GetTaskRequest(task_id=reply.task_id), metadata=md,
                                    timeout=30)
                polls += 1
                if task.state not in ("queued", "running"):
                    break
                time.sleep(poll_s)
            t2 = time.perf_counter()
            out.append({"status": reply.status, "state": task.state, "upload_s": t1 - t0,
                        "total_s": t2 - t0, "polls": polls, "error": task.error})
    finally:
        channel.close()
    return out


def start_worker_process(slots: int) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen(
        [sys.executable, "-m", "cofid.simworker", "--listen", "127.0.0.1:0",
         "--time-scale", "0", "--slots", str(slots)],
        stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline() if p.stdout else ""
    if not line.startswith("listening on "):
        p.kill()
        raise SystemExit(f"cofi-simworker did not start: {line!r}")
    return p, "http://" + line.split()[-1]


async def _serve_and_run(tmp: Path, data: bytes, runs: int, poll_s: float, slots: int,
                         worker: str) -> dict[str, Any]:
    from cofid.simworker import SimConfig, serve_simworker

    proc = sim = None
    async with trio.open_nursery() as nursery:
        if worker == "inprocess":
            sim = await nursery.start(serve_simworker, SimConfig(time_scale=0.0, slots=slots))
            url = sim.url
        else:
            proc, url = start_worker_process(slots)
        cfg = parse_config(bench_config(tmp, url, slots))
        stop = trio.Event()

        async def runner(task_status=trio.TASK_STATUS_IGNORED):
            await serve_main(cfg, stop=stop, handle_signals=False, task_status=task_status)

        try:
            _service, _plane, bound = await nursery.start(runner)
            results = await trio.to_thread.run_sync(client, bound[0], data, runs, poll_s)
        finally:
            stop.set()
            if proc is not None:
                proc.terminate()
                proc.wait(10)
        if sim is not None:
            requests = dict(sim.requests)
            nursery.cancel_scope.cancel()
        else:
            requests = None
    return {"results": results, "requests": requests}


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(np.ceil(q * len(s))) - 1))]


def stats_ms(values: list[float]) -> dict[str, float | None]:
    def r(v):
        return None if v is None else round(v * 1000.0, 1)

    return {"p50": r(pct(values, 0.50)), "p99": r(pct(values, 0.99)),
            "mean": r(sum(values) / len(values)) if values else None,
            "min": r(min(values, default=None)), "max": r(max(values, default=None))}


def run(runs: int, *, warmup: int = 1, poll_ms: float = 5.0, slots: int = 2,
        worker: str = "process") -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    wall0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cofi-bench-") as tmp_s:
        tmp = Path(tmp_s)
        data = call_wav(tmp / "call.wav")
        r = trio.run(_serve_and_run, tmp, data, warmup + runs, poll_ms / 1000.0, slots, worker)
    res = r["results"]
    measured = res[warmup:]
    states: dict[str, int] = {}
    for x in res:
        states[x["state"]] = states.get(x["state"], 0) + 1
    info = sf.info(io.BytesIO(data))
    return {
        "benchmark": "upload_latency", "runs": runs, "warmup": warmup, "worker": worker,
        "audio": {"seconds": round(info.duration, 1), "rate": info.samplerate,
                  "channels": info.channels, "bytes": len(data),
                  "chunks": -(-len(data) // CHUNK)},
        "poll_ms": poll_ms, "gpu_slots": slots,
        "total_ms": stats_ms([x["total_s"] for x in measured]),
        "upload_ms": stats_ms([x["upload_s"] for x in measured]),
        "processing_ms": stats_ms([x["total_s"] - x["upload_s"] for x in measured]),
        "warmup_total_ms": [round(x["total_s"] * 1000.0, 1) for x in res[:warmup]],
        "states": states,
        "replies": sorted({x["status"] for x in res}),
        "errors": sorted({x["error"] for x in res if x["error"]}),
        "simworker_requests": r["requests"],
        "wall_s": round(time.perf_counter() - wall0, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.upload_latency",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=1, help="first runs left out of the stats")
    ap.add_argument("--poll-ms", type=float, default=5.0, help="GetTask polling interval")
    ap.add_argument("--slots", type=int, default=2, help="the GPU host's slots")
    ap.add_argument("--worker", choices=("process", "inprocess"), default="process",
                    help="the simworker in its own process or on cofid's trio loop")
    a = ap.parse_args(argv)
    out = run(a.runs, warmup=a.warmup, poll_ms=a.poll_ms, slots=a.slots, worker=a.worker)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
