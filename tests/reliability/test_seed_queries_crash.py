"""Issue 15: the seed's five monitoring queries, verbatim, on a crashed-and-resumed batch.

The real daemon (`cofid serve` as a subprocess, tests/reliability/daemon.py) on SQLite and
on MariaDB with the server zone at +05:30, the business zone Asia/Kolkata; one
cofi-simworker GPU host (one slot, time_scale 0.02). The batch is dropped into the watched root; the
daemon is SIGKILLed twice mid-run (when the committed file-stage results reach a quarter
and a half of those the file stages add, as tests/reliability/test_daemon_crash.py kills at
result counts; the margin leaves room for the instant simworker to overshoot), restarted,
and left to finish. Then the five queries (tests/store/test_seed_queries.py's
`run_seed_query`: the seed's text, a plain reader's connection) must give what the
README promises for a crash (invariant 1: exactly the rows of an uninterrupted run):

1. Batch Progress: the batch, found by CURDATE() in the reader's +05:30 session (the
   business day cofid wrote as batchDate), Completed, every enabled stage Complete.
2. File Distribution Status: every file's done flags, as an uninterrupted run leaves them.
3. Call Processing Status: nothing Pending; the corrupt call Failed (the failure contract).
4. Errors: the corrupt call's LID failure, once, however often its attempts were cut.
5. Stage Progress: results (file_complete, error) and stage_complete once per file-stage
   and per stage — stage_complete's status over the whole stage, across the restarts; the
   overall status walk's info events once each, in the seed's order; stage_start once per
   run that had work for the stage (cofid.store.dump: "a resumed run that finds the stage
   InProgress writes it again"); file_start once per attempt; stage_progress as posted.

The audio stages before LID stay off (the fake denoise / IVR write no audio a remote LID
could read: see write_config), so denoiseStatus / ivrStatus and the flags stay as an
uninterrupted run of this pipeline leaves them. The simworker has no manifest: every
recording is English, so the 3-second call is a ShortCall and the rest Complete.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cofid.plans.batch import business_day
from cofid.store.writes import utcnow
from cofid.testing.batches import to_toml, write_fixture_batch
from tests.reliability.daemon import Probe, SimWorkers, wait_for, wav_bytes
from tests.reliability.test_daemon_crash import Harness, batch_done, wait_results
from tests.store.test_seed_queries import ZONE, run_seed_query

EXTRA_CALLS = 3  # 10 calls
# The simworker's latencies × 0.02: LID 4 ms, STT ~10 ms, chat 30 ms. At time_scale 0 the
# results came in bursts of up to 16 on MariaDB between two polls, enough to run past the
# end of this small batch before the kill; 30 ms chat replies keep the kills mid-run.
TIME_SCALE = 0.02
FILE_STAGES = ("lid", "stt", "llm1", "llm2")
WALK = ["dbInsertDone", "lidDone", "triagingDone", "sttDone", "llm1Done", "llm2Done",
        "Completed"]


@pytest.fixture(scope="module")
def workers():
    w = SimWorkers(1, time_scale=TIME_SCALE, slots=1)
    yield w
    w.close()


def make_batch(root: Path, extra_calls: int = EXTRA_CALLS) -> list[str]:
    """The fixture batch with real audio (3 s for the short call, 6–9 s for the rest; the
    corrupt call stays undecodable), dropped into `root` with its marker."""
    staging = root / ".staging"
    exp = write_fixture_batch(staging, extra_calls=extra_calls)
    for i, name in enumerate(exp["files"]):
        if "corrupt" not in name:
            (staging / name).write_bytes(wav_bytes(3.0 if "short" in name else 6.0 + i % 4, i))
    staging.rename(root / "b1")
    (root / "b1" / ".ready").touch()
    return exp["files"]


def outcome(name: str) -> str:
    """The call's end status in this pipeline (the simworker hears English everywhere)."""
    if "corrupt" in name:
        return "Failed"  # at LID: the recording does not decode
    return "ShortCall" if "short" in name else "Complete"


def results_by_stage(probe: Probe, batch_id: int) -> Counter:
    return Counter({
        r.stage: r.n for r in probe.rows(
            "SELECT stage, COUNT(*) AS n FROM batchExecutionLog WHERE batchId = :b AND "
            "eventType IN ('file_complete', 'error') AND fileName IS NOT NULL "
            "GROUP BY stage", b=batch_id)})


def starts_by_stage(probe: Probe, batch_id: int) -> Counter:
    return Counter({
        r.stage: r.n for r in probe.rows(
            "SELECT stage, COUNT(*) AS n FROM batchExecutionLog WHERE batchId = :b AND "
            "eventType = 'stage_start' GROUP BY stage", b=batch_id)})


def configure(h: Harness) -> None:
    """The business zone, a progress event for every file, and one slot on the GPU (one
    request at a time: results commit one by one, so a kill lands near its target)."""
    cfg = tomllib.loads(h.daemon.cfg.read_text())
    cfg["stages"].update({"default_zone": ZONE, "progress_every_s": 0.0})
    for gpu in cfg["gpus"]:
        gpu["slots"] = 1
    h.daemon.cfg.write_text(to_toml(cfg))


def test_the_five_monitoring_queries_on_a_crashed_and_resumed_batch(
    zoned_db_url, workers, tmp_path
):
    root = tmp_path / "root"
    root.mkdir()
    names = make_batch(root)
    n = len(names)
    status = {name: outcome(name) for name in names}
    complete = [x for x in names if status[x] == "Complete"]
    # The file-stage results of an uninterrupted run: one per file and stage reached.
    per_stage = {
        "file_distribution": n,
        "lid": n,  # the corrupt call's is its error
        "stt": n - 1,  # the ShortCall's is the gate's file_complete
        "llm1": len(complete),
        "llm2": len(complete),
    }
    total = sum(per_stage.values())
    h = Harness(tmp_path / "d", zoned_db_url, workers.urls, root)
    configure(h)
    before = utcnow() - timedelta(seconds=1)
    snapshots: list[dict] = []  # the database as each kill left it
    try:
        target = n + (total - n) // 4
        for _ in range(2):
            # Polled from the moment the process starts: the run is under way before the
            # daemon says it serves, and the simworker answers at once.
            h.start(wait=False)
            got = wait_results(h, target)
            assert h.daemon.kill(), "the daemon was not running"
            bid = h.probe.scalar("SELECT id FROM batchStatus", default=None)
            snap = {
                "results": h.probe.results(),
                "status": h.probe.batch_status(),
                "by_stage": results_by_stage(h.probe, bid),
                "starts": starts_by_stage(h.probe, bid),
            }
            # Killed mid-run: results still to come, the batch not finished.
            assert got <= snap["results"] < total, (snap, total)
            assert snap["status"] != "Completed", snap
            snapshots.append(snap)
            target = max(n + (total - n) // 2, snap["results"] + 1)
        h.start()
        wait_for(lambda: batch_done(h), 30, "the resumed batch to complete", step=0.05)
        assert h.daemon.stop() == 0
        after = utcnow() + timedelta(seconds=1)
        [bid] = [r.id for r in h.probe.rows("SELECT id FROM batchStatus")]
        tasks = h.probe.rows("SELECT kind, state, error FROM task ORDER BY createdAt, id")
        events = h.probe.rows(
            "SELECT stage, eventType, status, fileName, metadata FROM batchExecutionLog "
            "WHERE batchId = :b ORDER BY id", b=bid)
    finally:
        h.close()

    # The restarted daemons resumed the batch; every task it ran under ends completed
    # (the first is resumed while active; a later restart may make a new one).
    assert tasks and {(t.kind, t.state, t.error) for t in tasks} == {
        ("batch", "completed", None)}, tasks

    # 1. Check Batch Progress: today's batch in the business zone, finished.
    [progress] = run_seed_query(zoned_db_url, 0, bid)
    assert {**progress, "batchDate": str(progress["batchDate"])} == {
        "id": bid,
        "batchDate": str(business_day(ZONE, utcnow())),
        "batchNumber": 1,
        "status": "Completed",
        "dbInsertionStatus": "Complete",
        "denoiseStatus": "Pending",  # off in this pipeline: never started
        "ivrStatus": "Pending",
        "lidStatus": "Complete",
        "sttStatus": "Complete",
        "llm1Status": "Complete",
        "llm2Status": "Complete",
        "totalFiles": n,
    }

    # 2. Check File Distribution Status: each file's flags, as an uninterrupted run.
    got2 = run_seed_query(zoned_db_url, 1, bid)
    assert sorted(got2, key=lambda r: r["file"]) == [
        {
            "file": name,
            "denoiseDone": 0,
            "ivrDone": 0,
            "lidDone": int(status[name] != "Failed"),
            "sttDone": int(status[name] == "Complete"),
            "llm1Done": int(status[name] == "Complete"),
            "llm2Done": int(status[name] == "Complete"),
        }
        for name in sorted(names)
    ]

    # 3. Check Call Processing Status: no Pending call in the finished batch.
    got3 = {r["status"]: r["count"] for r in run_seed_query(zoned_db_url, 2, bid)}
    assert got3 == dict(Counter(status.values())) == {
        "Complete": n - 2, "ShortCall": 1, "Failed": 1}

    # 4. Check Errors: LID's failure of the corrupt call once, at a UTC time in the run.
    [err] = run_seed_query(zoned_db_url, 3, bid)
    assert (err["stage_name"], err["error_count"]) == ("lid", 1)
    last = err["last_error"]
    if isinstance(last, str):  # SQLite: the DATETIME's text
        last = datetime.fromisoformat(last)
    assert before <= last <= after, (before, last, after)

    # 5. Check Stage Progress.
    got5 = {
        (r["stage"], r["eventType"], r["status"]): r["count"]
        for r in run_seed_query(zoned_db_url, 4, bid)
    }
    # Results and stage completions: exactly an uninterrupted run's.
    exact = {k: v for k, v in got5.items() if k[1] in ("file_complete", "error",
                                                         "stage_complete", "info")}
    assert exact == {
        ("file_distribution", "file_complete", "success"): n,
        ("file_distribution", "stage_complete", "success"): 1,
        ("callmetadata", "stage_complete", "success"): 1,
        ("trademetadata", "stage_complete", "success"): 1,
        ("triaging", "stage_complete", "success"): 1,
        ("lid", "file_complete", "success"): n - 1,
        ("lid", "error", "failed"): 1,
        # partial: the corrupt call failed LID, in whichever run it was
        ("lid", "stage_complete", "partial"): 1,
        ("stt", "file_complete", "success"): n - 1,
        ("stt", "stage_complete", "success"): 1,
        ("llm1", "file_complete", "success"): len(complete),
        ("llm1", "stage_complete", "success"): 1,
        ("llm2", "file_complete", "success"): len(complete),
        ("llm2", "stage_complete", "success"): 1,
        ("pipeline", "info", "success"): len(WALK),
    }
    # The overall status walked the seed's values once each, in order, across the kills;
    # the last word says the batch completed with its one failed file.
    walk = [json.loads(m) if isinstance(m, str) else m
            for (s, e, _st, _f, m) in events if (s, e) == ("pipeline", "info")]
    assert [m["batch_status"] for m in walk] == WALK
    assert (walk[-1]["status"], walk[-1]["failed_files"]) == ("Completed", 1)
    # stage_start: the distribution's once (one transaction); a file stage's once per run
    # that had work for it — the first run that reached it, and each restart that found
    # results of it still to come.
    assert got5[("file_distribution", "stage_start", "processing")] == 1
    final = results_by_stage_from(events)
    assert final == per_stage
    last_snap = snapshots[-1]
    for stage in FILE_STAGES:
        still_to_do = per_stage[stage] - last_snap["by_stage"][stage]
        want = last_snap["starts"][stage] + (1 if still_to_do else 0)
        assert got5[(stage, "stage_start", "processing")] == want, (stage, snapshots)
        earlier = 0
        for snap in snapshots:  # each killed run wrote at most one
            assert snap["starts"][stage] - earlier in (0, 1), (stage, snapshots)
            earlier = snap["starts"][stage]
    # file_start once per attempt: at least one per result (a file in flight at a kill
    # started again); the distribution's once per file.
    assert got5[("file_distribution", "file_start", "processing")] == n
    for stage in FILE_STAGES:
        starts = got5[(stage, "file_start", "processing")]
        assert per_stage[stage] - (stage == "stt") <= starts, stage  # the gate: no request
        # stage_progress: posted after each result (progress_every_s = 0), so at most one
        # per result; a kill may drop the one of a result that had just committed.
        assert 1 <= got5[(stage, "stage_progress", "processing")] <= per_stage[stage], stage
    assert set(got5) == set(exact) | {
        (s, "stage_start", "processing") for s in ("file_distribution", *FILE_STAGES)} | {
        (s, "file_start", "processing") for s in ("file_distribution", *FILE_STAGES)} | {
        (s, "stage_progress", "processing") for s in FILE_STAGES}


def results_by_stage_from(events) -> dict[str, int]:
    c: Counter = Counter()
    for stage, etype, _status, file_name, _m in events:
        if etype in ("file_complete", "error") and file_name:
            c[stage] += 1
    return dict(c)


