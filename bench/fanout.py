"""Event fan-out: a real cofid runs a batch while many gRPC WatchEvents subscribers read it.

`python -m bench.fanout --files N --subscribers 20 [--buffer 10000 --clients thread|process]
[--batched] [--runs N]`

What runs: serve_main in this process (the whole daemon: App, engine, group-commit writer,
event bus, gRPC server on 127.0.0.1:0 with token auth), SQLite in a temporary directory,
the fake instant backends chosen by configuration ([backends] denoise/ivr/lid/stt/chat =
"fake", fake_latency_s = 0: one pseudo-GPU "cpu"). A directory of N empty placeholder
files call_NNNNNN.wav is started as a batch with StartBatch (denoise, ivr, lid, stt, llm1,
llm2; no CSV stages), file_start events on: about 12 events per file.

Decisions:

1. Subscribers: S threads, each with its own grpc channel (a local subchannel pool, so
   its own TCP connection) and a viewer token, each iterating its own WatchEvents stream
   live (no from_event_id). Every subscriber is open on the server (counted on the trio
   side) before StartBatch is sent, so each must see every matching event of the batch.
2. Filters cycle over four kinds, subscriber i taking kind i % 4: "all" (no filter),
   "all" again, "file_complete" (event_types) and "stt+llm" (stages stt, llm1, llm2): half
   the readers take the whole stream, half a filtered share, as a TUI and scripts would.
3. Dropped: after the task is completed, batchExecutionLog is read back; the ids above
   the bus's last id at subscribe time that match a subscriber's filter (EventFilter, the
   server's own matcher) are what it should get. Every subscriber is given until its last
   expected id arrives (or --drain-s without progress), then its stream is cancelled;
   dropped = expected ids not received, unexpected = received ids not expected.
4. Latency: an event's timestamp is set by the writer as it numbers the group, in the
   transaction that commits it (batchExecutionLog.timestamp = Event.timestamp); delivery
   latency = the subscriber's time.time() when its iterator returned the message minus
   that timestamp (the same clock). p50 / p99 / max over every delivered event of every
   subscriber.
5. Rates: a subscriber's events/s = its events / (its last receive - StartBatch sent);
   total = all events delivered / (the last receive of any - StartBatch sent).
6. --clients thread (the default) runs the subscriber threads in this process, as the
   test harness does: they share the GIL with the daemon, so on a small machine their
   grpc and protobuf work slows the engine. --clients process puts the same threads in
   one child process (python -m bench.fanout --child ...), which leaves the daemon's
   process to the daemon; batch_s shows the difference (and --subscribers 0 the engine
   alone). Either way the clients run on this machine's cores: on a 2-core machine the
   child's decoding (clients_cpu_s, its CPU from StartBatch to the batch's end, from
   /proc/<pid>/stat) takes CPU time the daemon would have had.
7. --batched: every subscriber asks for several events per message (WatchRequest.batched),
   as cofictl watch and the TUI do; without it, one event per message, as older clients.
8. slowdown: the same batch (same files, same configuration) first runs with no
   subscriber, in this process, before the measured run (after a warm-up run of 50
   files that pays for the first run's imports): slowdown = batch_s / alone_batch_s
   (--no-alone skips both).
9. --runs N: other jobs on a small machine make single runs noisy, so the pair (alone,
   then with the subscribers) is run N times after the one warm-up; the top level is the
   median run by slowdown (the lower middle one for even N), every run's figures and the
   1-minute load average before and after it are under "runs"; dropped_all_runs,
   fell_behind_all_runs and latency_ms_p99_worst cover all of them.
10. daemon_cpu_s: this process's CPU from StartBatch to the batch's end, every thread
    (with --clients thread, the subscribers' own decoding too); cpu_slowdown = daemon_cpu_s
    / the same of the batch alone: what the subscribers cost the daemon, whatever the
    machine's other work does to its wall time.

Prints one JSON object: per-subscriber and total events/s, dropped, fell_behind, latency
percentiles, the batch's wall time and event count.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import sqlalchemy as sa
import trio

from bench import workload as w
from bench.fair_load import process_cpu_s
from cofid.api.auth import bearer_metadata
from cofid.config import parse_config
from cofid.daemon import serve_main
from cofid.engine.bus import EventFilter
from cofid.store import tables as t
from cofid.store.event_log import event_from_row
from protos.cofi.v1 import cofi_pb2 as pb
from protos.cofi.v1 import cofi_pb2_grpc as pb_grpc

OP, VIEW = "bench-operator-token", "bench-viewer-token"
FILTERS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("all", {}),
    ("all", {}),
    ("file_complete", {"event_types": ["file_complete"]}),
    ("stt+llm", {"stages": ["stt", "llm1", "llm2"]}),
)
CHANNEL_OPTIONS = (("grpc.use_local_subchannel_pool", 1),)


def bench_config(tmp: Path, subscribers: int, buffer: int) -> dict[str, Any]:
    return {
        "database": {"url": f"sqlite:///{tmp / 'data' / 'cofi.db'}"},
        "paths": {"data": str(tmp / "data")},
        "grpc": {
            "listen": ["127.0.0.1:0"],
            "tokens": [{"name": "op", "role": "operator", "token": OP},
                       {"name": "view", "role": "viewer", "token": VIEW}],
            # Each open stream holds a pool thread; streams may hold all but the reserved
            # 16 (the default reserve, a quarter, would cap 100 streams at 87).
            "max_workers": subscribers + 32,
            "max_event_streams": max(32, subscribers),
            "reserved_workers": 16,
            "subscriber_buffer": buffer,
            "heartbeat_s": 1.0,
        },
        "backends": {"denoise": "fake", "ivr": "fake", "lid": "fake", "stt": "fake",
                     "chat": "fake", "fake_latency_s": 0.0},
        "pipelines": {"batch": {"denoise": True, "ivr": True, "callmetadata": False,
                                "trademetadata": False, "triaging": False, "llm1": True,
                                "llm2": True}},
        "stages": {"file_start_events": True},
        "service": {"log_level": "WARNING", "shutdown_deadline_s": 10.0},
    }


@dataclass
class Subscriber:
    index: int
    kind: str
    request: pb.WatchRequest
    address: str
    ids: list[int] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    first_recv: float | None = None
    last_recv: float | None = None
    notices: list[str] = field(default_factory=list)
    heartbeats: int = 0
    end: str = ""
    target: int | None = None  # the last id it should get; set once the batch is done
    done: threading.Event = field(default_factory=threading.Event)
    call: Any = None

    def read(self) -> None:
        channel = grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        stub = pb_grpc.CofiStub(channel)
        ids, lat = self.ids, self.latency
        try:
            self.call = stub.WatchEvents(self.request, metadata=bearer_metadata(VIEW))
            for m in self.call:
                now = time.time()
                kind = m.WhichOneof("msg")
                if kind in ("event", "events"):
                    for e in [m.event] if kind == "event" else m.events.events:
                        ids.append(e.id)
                        lat.append(now - (e.timestamp.seconds + e.timestamp.nanos * 1e-9))
                    if self.first_recv is None:
                        self.first_recv = now
                    self.last_recv = now
                    if self.target is not None and ids[-1] >= self.target:
                        self.done.set()
                elif kind == "heartbeat":
                    self.heartbeats += 1
                else:
                    self.notices.append(m.notice.code)
            self.end = "OK"
        except grpc.RpcError as e:
            self.end = e.code().name
        finally:
            self.done.set()
            channel.close()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000.0, 2)


def expected_ids(url: str, after: int, subs: list[Subscriber]) -> dict[int, set[int]]:
    """Per subscriber: the committed event ids above `after` its filter matches."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            tbl = t.batch_execution_log
            rows = [event_from_row(r) for r in c.execute(
                sa.select(tbl).where(tbl.c.id > after).order_by(tbl.c.id))]
    finally:
        engine.dispose()
    out = {}
    for s in subs:
        r = s.request
        flt = EventFilter(batch_id=r.batch_id, stages=frozenset(r.stages),
                          event_types=frozenset(r.event_types), errors_only=r.errors_only)
        out[s.index] = {e.id for e in rows if flt.matches(e)}
    return out


def drain(subs: list[Subscriber], drain_s: float) -> None:
    """Wait for each subscriber's last expected id (while it makes progress); cancel it."""
    for s in subs:
        if not s.target or (s.ids and s.ids[-1] >= s.target):
            s.done.set()
    for s in subs:
        seen = -1
        while not s.done.wait(drain_s) and len(s.ids) != seen:
            seen = len(s.ids)
        if s.call is not None:
            s.call.cancel()


def make_subscribers(address: str, n: int, batched: bool = False) -> list[Subscriber]:
    return [Subscriber(i, FILTERS[i % len(FILTERS)][0],
                       pb.WatchRequest(batched=batched, **FILTERS[i % len(FILTERS)][1]),
                       address)
            for i in range(n)]


def start_readers(subs: list[Subscriber]) -> list[threading.Thread]:
    threads = [threading.Thread(target=s.read, name=f"sub{s.index}", daemon=True) for s in subs]
    for th in threads:
        th.start()
    return threads


STATE = ("ids", "latency", "first_recv", "last_recv", "notices", "heartbeats", "end")


def child_main(address: str, n: int, drain_s: float, batched: bool) -> int:
    """--clients process: the subscribers in this process; targets come on stdin, the
    received ids and latencies go to stdout as one JSON line."""
    subs = make_subscribers(address, n, batched)
    threads = start_readers(subs)
    line = sys.stdin.readline()
    targets = json.loads(line) if line.strip() else [None] * n
    for s, target in zip(subs, targets, strict=True):
        s.target = target
    drain(subs, drain_s)
    for th in threads:
        th.join(10)
    json.dump([{k: getattr(s, k) for k in STATE} for s in subs], sys.stdout)
    sys.stdout.write("\n")
    return 0


def client(address: str, service, files_dir: Path, subscribers: int, drain_s: float,
           db_url: str, clients: str, batched: bool) -> dict[str, Any]:
    """The client side, in a worker thread of the trio run that serves cofid."""
    md = bearer_metadata(OP)
    subs = make_subscribers(address, subscribers, batched)
    proc = None
    threads: list[threading.Thread] = []
    if clients == "process":
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fanout", "--child", address, "--subscribers",
             str(subscribers), "--drain-s", str(drain_s), *(["--batched"] if batched else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=Path(__file__).resolve().parents[1])
    else:
        threads = start_readers(subs)
    deadline = time.monotonic() + 30
    while trio.from_thread.run_sync(lambda: len(service.events.subs)) < subscribers:
        if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
            raise SystemExit("subscribers did not connect within 30 s")
        time.sleep(0.01)
    after = trio.from_thread.run_sync(lambda: service.app.bus.last_id)
    channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    stub = pb_grpc.CofiStub(channel)
    t0, cpu0 = time.time(), time.process_time()
    child0 = process_cpu_s(proc.pid) if proc is not None else 0.0
    ref = stub.StartBatch(pb.StartBatchRequest(directory=str(files_dir)), metadata=md,
                          timeout=60)
    while True:
        task = stub.GetTask(pb.GetTaskRequest(task_id=ref.task_id), metadata=md, timeout=30)
        if task.state not in ("queued", "running"):
            break
        time.sleep(0.05)
    batch_s, daemon_cpu_s = time.time() - t0, time.process_time() - cpu0
    clients_cpu_s = process_cpu_s(proc.pid) - child0 if proc is not None else None
    channel.close()
    expected = expected_ids(db_url, after, subs)
    for s in subs:
        s.target = max(expected[s.index], default=0)
    if proc is not None:
        out, _ = proc.communicate(json.dumps([s.target for s in subs]) + "\n")
        for s, state in zip(subs, json.loads(out), strict=True):
            for k in STATE:
                setattr(s, k, state[k])
    else:
        drain(subs, drain_s)
        for th in threads:
            th.join(10)
    rows = {}
    engine = sa.create_engine(db_url)
    with engine.connect() as c:
        rows["events"] = c.execute(sa.select(sa.func.count()).select_from(
            t.batch_execution_log)).scalar()
        rows["calls_by_status"] = dict(c.execute(sa.select(t.call.c.status, sa.func.count())
                                                 .group_by(t.call.c.status)).all())
    engine.dispose()
    return {"t0": t0, "batch_s": batch_s, "daemon_cpu_s": daemon_cpu_s,
            "clients_cpu_s": clients_cpu_s, "task_state": task.state, "subs": subs,
            "expected": expected, "rows": rows, "failures": len(task.failures)}


async def _serve_and_run(cfg, files_dir: Path, subscribers: int, drain_s: float,
                         clients: str, batched: bool):
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        async def runner(task_status=trio.TASK_STATUS_IGNORED):
            await serve_main(cfg, stop=stop, handle_signals=False, task_status=task_status)

        service, _plane, bound = await nursery.start(runner)
        try:
            return await trio.to_thread.run_sync(
                client, bound[0], service, files_dir, subscribers, drain_s, cfg.database_url,
                clients, batched)
        finally:
            stop.set()


def _one_run(files: int, subscribers: int, buffer: int, drain_s: float, clients: str,
             batched: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cofi-bench-") as tmp_s:
        tmp = Path(tmp_s)
        files_dir = w.placeholder_batch(tmp / "batch", files)
        cfg = parse_config(bench_config(tmp, subscribers, buffer))
        return trio.run(_serve_and_run, cfg, files_dir, subscribers, drain_s, clients, batched)


def run(files: int, subscribers: int, *, buffer: int = 10_000, drain_s: float = 5.0,
        clients: str = "thread", batched: bool = False, alone: bool = True,
        runs: int = 1) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    wall0 = time.perf_counter()
    if alone:  # after a small warm-up run: the first run in a process pays for imports
        _one_run(min(files, 50), 0, buffer, drain_s, clients, batched)
    trials = []
    for _ in range(runs):
        load0 = os.getloadavg()[0]
        alone_r = _one_run(files, 0, buffer, drain_s, clients, batched) if alone else None
        r = _one_run(files, subscribers, buffer, drain_s, clients, batched)
        trials.append(summarize(files, subscribers, buffer, clients, batched, r, alone_r)
                      | {"load_average": [round(load0, 2), round(os.getloadavg()[0], 2)]})
    key = "slowdown" if alone else "batch_s"
    out = sorted(trials, key=lambda x: x[key])[(len(trials) - 1) // 2]  # the median run
    out = dict(out)
    out["runs"] = [{k: x[k] for k in RUN_KEYS} for x in trials]
    out["dropped_all_runs"] = sum(x["dropped"] for x in trials)
    out["fell_behind_all_runs"] = sum(x["fell_behind"] for x in trials)
    out["latency_ms_p99_worst"] = max((x["latency_ms_p99"] or 0.0) for x in trials)
    out["wall_s"] = round(time.perf_counter() - wall0, 2)
    return out


RUN_KEYS = ("slowdown", "batch_s", "alone_batch_s", "cpu_slowdown", "daemon_cpu_s",
            "alone_daemon_cpu_s", "clients_cpu_s", "dropped", "unexpected", "fell_behind",
            "latency_ms_p50", "latency_ms_p99", "load_average")


def summarize(files: int, subscribers: int, buffer: int, clients: str, batched: bool,
              r: dict[str, Any], alone: dict[str, Any] | None) -> dict[str, Any]:
    t0 = r["t0"]
    alone_s = alone["batch_s"] if alone else None
    alone_cpu = alone["daemon_cpu_s"] if alone else None
    per = []
    all_lat: list[float] = []
    total = 0
    last_any = t0
    for s in r["subs"]:
        exp = r["expected"][s.index]
        got = set(s.ids)
        span = (s.last_recv - t0) if s.last_recv else None
        per.append({
            "filter": s.kind, "received": len(s.ids), "expected": len(exp),
            "dropped": len(exp - got), "unexpected": len(got - exp),
            "duplicates": len(s.ids) - len(got),
            "events_per_s": round(len(s.ids) / span, 1) if span else 0.0,
            "latency_ms_p50": ms(pct(s.latency, 0.50)),
            "latency_ms_p99": ms(pct(s.latency, 0.99)),
            "fell_behind": "fell_behind" in s.notices, "end": s.end,
        })
        all_lat.extend(s.latency)
        total += len(s.ids)
        if s.last_recv:
            last_any = max(last_any, s.last_recv)
    span = last_any - t0
    rates = [p["events_per_s"] for p in per]
    return {
        "benchmark": "fanout", "files": files, "subscribers": subscribers,
        "subscriber_buffer": buffer, "clients": clients, "batched": batched,
        "task_state": r["task_state"], "task_failures": r["failures"],
        "batch_s": round(r["batch_s"], 2),
        "alone_batch_s": round(alone_s, 2) if alone_s else None,
        "slowdown": round(r["batch_s"] / alone_s, 3) if alone_s else None,
        "daemon_cpu_s": round(r["daemon_cpu_s"], 2),
        "alone_daemon_cpu_s": round(alone_cpu, 2) if alone_cpu else None,
        "cpu_slowdown": round(r["daemon_cpu_s"] / alone_cpu, 3) if alone_cpu else None,
        "clients_cpu_s": round(r["clients_cpu_s"], 2) if r["clients_cpu_s"] is not None else None,
        "files_per_s": round(files / r["batch_s"], 1) if r["batch_s"] else None,
        "event_rows": r["rows"]["events"],
        "calls_by_status": r["rows"]["calls_by_status"],
        "events_delivered": total,
        "events_per_s_total": round(total / span, 1) if span > 0 else 0.0,
        "events_per_s_per_subscriber": {
            "min": min(rates, default=0.0), "max": max(rates, default=0.0),
            "mean": round(sum(rates) / len(rates), 1) if rates else 0.0},
        "dropped": sum(p["dropped"] for p in per),
        "unexpected": sum(p["unexpected"] for p in per),
        "fell_behind": sum(p["fell_behind"] for p in per),
        "latency_ms_p50": ms(pct(all_lat, 0.50)),
        "latency_ms_p99": ms(pct(all_lat, 0.99)),
        "latency_ms_max": ms(max(all_lat, default=None)),
        "per_subscriber": per,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fanout",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--subscribers", type=int, default=20)
    ap.add_argument("--buffer", type=int, default=10_000,
                    help="grpc.subscriber_buffer: events a subscriber may lag by")
    ap.add_argument("--drain-s", type=float, default=5.0,
                    help="after the batch, wait this long without progress for stragglers")
    ap.add_argument("--clients", choices=("thread", "process"), default="thread",
                    help="subscriber threads in this process, or in one child process")
    ap.add_argument("--batched", action="store_true",
                    help="several events per message (WatchRequest.batched)")
    ap.add_argument("--no-alone", action="store_true",
                    help="skip the run without subscribers (no slowdown then)")
    ap.add_argument("--runs", type=int, default=1,
                    help="measure N times (alone, then with the subscribers, each time); "
                         "the top level is the median run, every run under 'runs'")
    ap.add_argument("--child", metavar="ADDRESS", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child_main(a.child, a.subscribers, a.drain_s, a.batched)
    out = run(a.files, a.subscribers, buffer=a.buffer, drain_s=a.drain_s, clients=a.clients,
              batched=a.batched, alone=not a.no_alone, runs=max(1, a.runs))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
