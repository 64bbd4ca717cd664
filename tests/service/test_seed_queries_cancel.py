"""Issue 15: the seed's five monitoring queries, verbatim, on a cancelled batch and on the
same batch resumed to the end; the cancelled batch's answers are checked against what
the other tables and the event log say, read apart — on SQLite and on MariaDB with the server zone at +05:30
(the business zone Asia/Kolkata, as tests/store/test_seed_queries.py sets it up)."""

from __future__ import annotations

from collections import Counter

import grpc
import sqlalchemy as sa
import trio

from cofid.plans.batch import business_day
from cofid.store.writes import utcnow
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import VIEW, write_batch_dir
from tests.store.test_seed_queries import ZONE, run_seed_query

NAMES = [f"q{i:02d}.wav" for i in range(12)]
C = grpc.StatusCode


STAGES = ("ivr", "lid", "stt", "llm1", "llm2")  # the API tests' batch pipeline (no denoise)


def _q(url: str, n: int, bid: int) -> list[dict]:
    return run_seed_query(url, n, bid)


def _truth(url: str, bid: int) -> dict:
    """What the other tables and the event log say, read apart from the five queries."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:

            def names(sql: str) -> set[str]:
                return set(c.execute(sa.text(sql), {"b": bid}).scalars())

            has = {
                "ivr": names(
                    "SELECT file_name FROM processing_logs WHERE batch_id = :b AND "
                    "stage_name = 'ivr' AND status = 'success'"
                ),
                "lid": names("SELECT audioName FROM lidStatus WHERE batchId = :b"),
                "stt": names(
                    "SELECT DISTINCT k.audioName FROM transcript x JOIN `call` k "
                    "ON k.id = x.callId WHERE k.batchId = :b"
                ),
                "llm1": names(
                    "SELECT DISTINCT k.audioName FROM callConversation x JOIN `call` k "
                    "ON k.id = x.callId WHERE k.batchId = :b"
                ),
                "llm2": names(
                    "SELECT DISTINCT k.audioName FROM auditAnswer x JOIN `call` k "
                    "ON k.id = x.callId WHERE k.batchId = :b AND x.source = 'llm2'"
                ),
            }
            events = {
                (st, et)
                for st, et in c.execute(
                    sa.text(
                        "SELECT stage, eventType FROM batchExecutionLog WHERE batchId = :b"
                    ),
                    {"b": bid},
                )
            }
            walk = list(
                c.execute(
                    sa.text(
                        "SELECT id FROM batchExecutionLog WHERE batchId = :b AND "
                        "stage = 'pipeline' AND eventType = 'info' AND status = 'success'"
                    ),
                    {"b": bid},
                ).scalars()
            )
    finally:
        engine.dispose()

    def stage_status(s: str) -> str:
        if (s, "stage_complete") in events:
            return "Complete"
        return "InProgress" if (s, "stage_start") in events else "Pending"

    return {
        "flags": {n: {f"{s}Done": int(n in has[s]) for s in STAGES} for n in NAMES},
        "stage_status": {s: stage_status(s) for s in STAGES},
        "walk": walk,
    }


def _status_of(flags: dict) -> str:
    """The seed's status machine: the latest stage done names the call's status."""
    if flags["llm2Done"]:
        return "Complete"
    if flags["llm1Done"]:
        return "AuditDone"
    return "TranscriptDone" if flags["sttDone"] else "Pending"


async def test_monitoring_queries_on_a_cancelled_then_resumed_batch(
    start_server, tmp_path, zoned_db_url
):
    h = await start_server(zoned_db_url, stages={"default_zone": ZONE})
    h.fake.latency_s = 0.05
    d = write_batch_dir(tmp_path / "b", NAMES)
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    with trio.fail_after(20):
        while True:
            task = await h.call("GetTask", pb.GetTaskRequest(task_id=ref.task_id), VIEW)
            if task.stages and task.stages[0].done >= 3:
                break
            await trio.sleep(0.01)
    bid = (await h.call("CancelTask", pb.CancelTaskRequest(task_id=ref.task_id))).batch_id
    url = zoned_db_url
    truth = await trio.to_thread.run_sync(_truth, url, bid)

    # 1. Check Batch Progress: today's batch, and it says Cancelled (not InProgress); each
    # stage's status is what the event log says of it (Complete once its stage_complete
    # is written, InProgress once started, else Pending).
    [progress] = await trio.to_thread.run_sync(_q, url, 0, bid)
    assert {**progress, "batchDate": str(progress["batchDate"])} == {
        "id": bid,
        "batchDate": str(business_day(ZONE, utcnow())),
        "batchNumber": 1,
        "status": "Cancelled",
        "dbInsertionStatus": "Complete",
        "denoiseStatus": "Pending",
        **{f"{s}Status": truth["stage_status"][s] for s in STAGES},
        "totalFiles": len(NAMES),
    }
    assert progress["ivrStatus"] in ("InProgress", "Complete")  # it was running
    # 2. Check File Distribution Status: each flag is set exactly when the stage's rows
    # for the file exist (lidStatus, transcript, callConversation, the model's answers).
    files = await trio.to_thread.run_sync(_q, url, 1, bid)
    assert sorted(files, key=lambda r: r["file"]) == [
        {"file": n, "denoiseDone": 0, **truth["flags"][n]} for n in NAMES
    ]
    done = {s: sum(f[f"{s}Done"] for f in files) for s in STAGES}
    assert done["ivr"] >= 3 and done["llm2"] < len(NAMES)  # cut mid-run
    # 3. Check Call Processing Status: each call's status is the one its flags give; the
    # cancelled batch's work still to do is Pending.
    counts = {r["status"]: r["count"] for r in await trio.to_thread.run_sync(_q, url, 2, bid)}
    assert counts == dict(Counter(_status_of(truth["flags"][n]) for n in NAMES))
    assert counts.get("Pending", 0) > 0
    # 4. Check Errors: a cancel is not an error.
    assert await trio.to_thread.run_sync(_q, url, 3, bid) == []
    # 5. Check Stage Progress: a file_complete per flag set, stage_complete for the
    # stages that completed, the walk up to the cancel, and the cancel as one failed
    # pipeline info event.
    stages = {
        (r["stage"], r["eventType"], r["status"]): r["count"]
        for r in await trio.to_thread.run_sync(_q, url, 4, bid)
    }
    for s in STAGES:
        assert stages.get((s, "file_complete", "success"), 0) == done[s], s
        complete = truth["stage_status"][s] == "Complete"
        assert stages.get((s, "stage_complete", "success"), 0) == int(complete), s
        assert stages.get((s, "stage_start", "processing"), 0) == int(
            truth["stage_status"][s] != "Pending"
        ), s
        assert stages.get((s, "file_start", "processing"), 0) >= done[s], s
    assert stages[("pipeline", "info", "failed")] == 1
    assert stages[("pipeline", "info", "success")] == len(truth["walk"])
    assert stages[("file_distribution", "file_complete", "success")] == len(NAMES)
    assert not [k for k in stages if k[2] == "failed" and k[0] != "pipeline"]

    h.fake.latency_s = 0.0
    resumed = await h.call("ResumeTask", pb.ResumeTaskRequest(task_id=ref.task_id))
    assert (await h.wait_task(resumed.task_id)).state == "completed"
    [progress] = await trio.to_thread.run_sync(_q, url, 0, bid)
    assert {k: progress[k] for k in ("id", "status", "lidStatus", "sttStatus", "llm2Status")} == {
        "id": bid,
        "status": "Completed",
        "lidStatus": "Complete",
        "sttStatus": "Complete",
        "llm2Status": "Complete",
    }
    # 2. Check File Distribution Status: every file through every stage, once.
    files = await trio.to_thread.run_sync(_q, url, 1, bid)
    assert sorted(r["file"] for r in files) == NAMES
    assert all(
        (r["lidDone"], r["sttDone"], r["llm1Done"], r["llm2Done"]) == (1, 1, 1, 1) for r in files
    )
    # 3. Nothing Pending once it finished; 4. no errors.
    counts = {r["status"]: r["count"] for r in await trio.to_thread.run_sync(_q, url, 2, bid)}
    assert counts == {"Complete": len(NAMES)}
    assert await trio.to_thread.run_sync(_q, url, 3, bid) == []
    stages = {
        (r["stage"], r["eventType"], r["status"]): r["count"]
        for r in await trio.to_thread.run_sync(_q, url, 4, bid)
    }
    assert stages[("pipeline", "info", "failed")] == 1  # the cancel, still there
    # every file's LID result exactly once across the two runs
    assert stages[("lid", "file_complete", "success")] == len(NAMES)
