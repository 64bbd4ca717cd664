"""Issue 15.8: a daemon SIGKILLed mid-reaudit resumes it, on SQLite and on MariaDB with the
server zone at +05:30 (tests/reliability/test_daemon_crash.py kills reaudits on SQLite only).

The real daemon (`cofid serve` as a subprocess), one cofi-simworker GPU host with one slot
(time_scale 0.1: results commit one by one, so the kills land mid-run). The fixture batch
(19 calls) is dropped into the watched root and runs to the end; then a reaudit of every
call with stages stt and llm2, SIGKILLed twice mid-run and restarted each time. Asserted:

- the reply: the corrupt call (it never got a language) is left alone, with the reason;
- the task row: one reaudit task, resumed under the same id, completed, no error;
- the reaudit's events (batchId 0, stage 'reaudit'), exactly: started, the cleanup once,
  one `resumed` start per restart that found it running, one closing event with counts;
  their timestamps UTC, inside the run, whatever the server's zone;
- the result tables (cofid.store.dump, ids and timestamps aside) exactly as before the
  reaudit: the simworker answers by request, so a reaudit that re-ran exactly the chosen
  stages for every call gives the batch's rows back;
- the history: processing_logs success rows of the chosen stages only, llm2 once per
  transcribed call (its last stage: done is done), stt once or twice (a call whose stt
  had committed and llm2 had not when the daemon died runs both again);
- the seed's five queries (3. Call Processing Status): nothing Pending, nothing reset.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest

from cofid.store.writes import utcnow
from protos.cofi.v1 import cofi_pb2 as pb
from tests.reliability.daemon import SimWorkers, wait_for
from tests.reliability.test_daemon_crash import (
    HISTORY,
    Harness,
    assert_same,
    batch_done,
    dump,
    wait_results,
)
from tests.reliability.test_seed_queries_crash import configure, make_batch, outcome
from tests.store.test_seed_queries import run_seed_query

STAGES = ("stt", "llm2")
EXTRA_CALLS = 12  # 19 calls: ~35 reaudit results, one at a time
# The simworker's latencies × 0.1: STT ~50 ms, chat 150 ms. At 0.02 MariaDB's grouped
# commits brought the results in bursts of 7 to 20 between two polls, and a reaudit of
# this size could end before the second kill.
TIME_SCALE = 0.1
KILL_AFTER = 3  # results into each run
CORRUPT_REASON = "language never identified (lid has not run for it); choose lid too"


@pytest.fixture(scope="module")
def workers():
    w = SimWorkers(1, time_scale=TIME_SCALE, slots=1)
    yield w
    w.close()


def _as_dict(m) -> dict:
    return m if isinstance(m, dict) else json.loads(m or "{}")


def test_reaudit_killed_twice_resumes_under_its_task(zoned_db_url, workers, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    names = make_batch(root, EXTRA_CALLS)
    status = {name: outcome(name) for name in names}
    transcribed = sorted(n for n in names if status[n] == "Complete")
    corrupt = next(n for n in names if status[n] == "Failed")
    h = Harness(tmp_path / "d", zoned_db_url, workers.urls, root)
    configure(h)
    try:
        h.start()
        wait_for(lambda: batch_done(h), 60, "the batch to complete", step=0.05)
        [bid] = [r.id for r in h.probe.rows("SELECT id FROM batchStatus")]
        before_dump = dump(h.url)
        first_event = h.event_id()
        t0 = utcnow() - timedelta(seconds=1)
        reply = h.rpc("Reaudit", pb.ReauditRequest(audio_names=names, stages=list(STAGES)))
        tid = reply.task_id
        assert [(a.audio_name, a.batch_id, a.reason) for a in reply.left_alone] == [
            (corrupt, bid, CORRUPT_REASON)
        ]
        assert reply.matched_calls == len(names)
        # Kill KILL_AFTER results into the run, and KILL_AFTER results into the restarted
        # one (polled from the moment the process starts: the resumed run is under way
        # before the daemon says it serves).
        for _ in range(2):
            wait_results(h, h.results_since(first_event) + KILL_AFTER, first_event)
            state = h.probe.scalar("SELECT state FROM task WHERE id = :t", t=tid)
            assert state == "running", "the reaudit ended before the kill"
            h.kill(results=h.results_since(first_event))
            serving = h.daemon.serving_count()
            h.start(wait=False)
        h.daemon.wait_serving(serving)
        task = h.wait_task(tid, timeout=60)
        assert (task.state, task.error) == ("completed", ""), task
        assert h.daemon.stop() == 0
        t1 = utcnow() + timedelta(seconds=1)
        assert len(h.kills) == 2, h.kills
        tasks = [tuple(r) for r in h.probe.rows(
            "SELECT kind, state, batchId, error FROM task ORDER BY createdAt, id")]
        task_ids = [r.id for r in h.probe.rows(
            "SELECT id FROM task WHERE kind = 'reaudit'")]
        events = h.probe.rows(
            "SELECT timestamp, eventType, status, totalFiles, processedFiles, errorMessage, "
            "metadata FROM batchExecutionLog WHERE batchId = 0 AND stage = 'reaudit' "
            "ORDER BY id")
        after_dump = dump(h.url)
    finally:
        h.close()

    assert tasks == [("batch", "completed", bid, None), ("reaudit", "completed", None, None)]
    assert task_ids == [tid]  # resumed under the same task, never a second one

    mine = [(e, _as_dict(e.metadata)) for e in events]
    assert all(m.get("task_id") == tid for _, m in mine), mine
    shape = [
        (e.eventType, e.status, m.get("resumed", False), m.get("completed", False))
        for e, m in mine
    ]
    assert shape == [
        ("info", "processing", False, False),  # started
        ("info", "success", False, False),  # the cleanup: once, however many kills
        ("info", "processing", True, False),  # the first restart resumed it
        ("info", "processing", True, False),  # the second
        ("info", "success", False, True),  # the one closing event
    ], shape
    assert "transcripts_deleted" in mine[1][1]
    assert mine[-1][1] == {
        "task_id": tid,
        "completed": True,
        "failed_files": 0,
        "left_alone": 1,
    }
    for e, _ in mine:  # one clock: UTC, whatever the server's zone
        ts = datetime.fromisoformat(e.timestamp) if isinstance(e.timestamp, str) else e.timestamp
        assert t0 <= ts <= t1, (ts, t0, t1)

    # The result tables: exactly as the batch left them.
    results = [n for n in before_dump if n not in HISTORY]
    assert_same({n: before_dump[n] for n in results}, {n: after_dump[n] for n in results},
                f"kills: {h.kills}")
    # The history: the batch's rows, plus successes of the chosen stages only.
    extra: Counter = Counter()
    logs_before = list(before_dump["processing_logs"])
    for r in after_dump["processing_logs"]:
        if r in logs_before:
            logs_before.remove(r)
        else:
            extra[(r["file_name"], r["stage_name"], r["status"])] += 1
    assert logs_before == []  # nothing of the batch's history went
    assert {k[1:] for k in extra} <= {("stt", "success"), ("llm2", "success")}, extra
    for name in transcribed:
        assert extra[(name, "llm2", "success")] == 1, (name, extra)
        assert extra[(name, "stt", "success")] in (1, 2), (name, extra)
    assert {k[0] for k in extra} <= set(names) - {corrupt}

    # 3. Check Call Processing Status: nothing left Pending by the kills.
    got3 = {r["status"]: r["count"] for r in run_seed_query(zoned_db_url, 2, bid)}
    assert got3 == dict(Counter(status.values()))
