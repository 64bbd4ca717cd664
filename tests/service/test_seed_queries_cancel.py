"""Issue 15: the seed's five monitoring queries, verbatim, on a cancelled batch and on the
same batch resumed to the end — on SQLite and on MariaDB with the server zone at +05:30
(the business zone Asia/Kolkata, as tests/store/test_seed_queries.py sets it up)."""

from __future__ import annotations

import grpc
import trio

from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import VIEW, write_batch_dir
from tests.store.test_seed_queries import ZONE, run_seed_query

NAMES = [f"q{i:02d}.wav" for i in range(12)]
C = grpc.StatusCode


def _q(url: str, n: int, bid: int) -> list[dict]:
    return run_seed_query(url, n, bid)


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

    # 1. Check Batch Progress: today's batch, and it says Cancelled (not InProgress).
    [progress] = await trio.to_thread.run_sync(_q, url, 0, bid)
    assert (progress["id"], progress["status"], progress["totalFiles"]) == (
        bid,
        "Cancelled",
        len(NAMES),
    )
    assert progress["dbInsertionStatus"] == "Complete"
    # 3. Check Call Processing Status: the cancelled batch's work still to do is Pending.
    counts = {r["status"]: r["count"] for r in await trio.to_thread.run_sync(_q, url, 2, bid)}
    assert sum(counts.values()) == len(NAMES) and counts.get("Pending", 0) > 0
    assert set(counts) <= {"Pending", "TranscriptDone", "AuditDone", "Complete"}
    # 5. Check Stage Progress: the cancel is one failed pipeline info event.
    stages = {
        (r["stage"], r["eventType"], r["status"]): r["count"]
        for r in await trio.to_thread.run_sync(_q, url, 4, bid)
    }
    assert stages[("pipeline", "info", "failed")] == 1

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
