"""Issue 15.8 and 14.7: cancels and resumes are visible in the tables, a reaudit stopped
mid-run resumes at the next start, and one task owns a call at a time — on a real daemon
(serve_main, fake GPUs), on SQLite and on MariaDB with the server zone at +05:30
(tests/conftest.py's zoned_db_url).

Each test asserts the rows of batchStatus and task and the exact sequence of the events
cofid.service.cancel and cofid.plans.reaudit write (stage 'pipeline' info events with
``cancelled``/``resumed``, stage 'reaudit' events of the task)."""

from __future__ import annotations

import json

import grpc
import sqlalchemy as sa
import trio

from cofid.store import tables as t
from cofid.testing.daemon import InProcessDaemon
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import (
    OP,
    VIEW,
    upload_messages,
    wav_bytes,
    write_batch_dir,
)
from tests.store.test_tables_contract import install_status_audit, status_history

C = grpc.StatusCode
NAMES = [f"c{i:02d}.wav" for i in range(12)]


def _meta(r) -> dict:
    return r.metadata if isinstance(r.metadata, dict) else json.loads(r.metadata or "{}")


async def pipeline_marks(h, bid: int) -> list[tuple]:
    """The batch's cancel/resume events: (status, errorMessage, metadata)."""

    def q(c):
        bel = t.batch_execution_log
        rows = c.execute(
            sa.select(bel)
            .where(bel.c.batchId == bid, bel.c.stage == "pipeline", bel.c.eventType == "info")
            .order_by(bel.c.id)
        )
        return [
            (r.status, r.errorMessage, _meta(r))
            for r in rows
            if "cancelled" in _meta(r) or "resumed" in _meta(r)
        ]

    return await h.query(q)


async def pipeline_walk(h, bid: int) -> list[tuple]:
    """The batch's walk events (pipeline info with batch_status), the cancel's left out."""

    def q(c):
        bel = t.batch_execution_log
        rows = c.execute(
            sa.select(bel)
            .where(bel.c.batchId == bid, bel.c.stage == "pipeline", bel.c.eventType == "info")
            .order_by(bel.c.id)
        )
        return [
            (r.status, r.errorMessage, _meta(r))
            for r in rows
            if "cancelled" not in _meta(r) and "resumed" not in _meta(r)
        ]

    return await h.query(q)


async def batch_status(h, bid: int) -> str:
    rows = await h.rows(t.batch_status, t.batch_status.c.id == bid)
    return rows[0].status


async def task_rows(h) -> list[tuple]:
    return [
        (r.kind, r.state, r.batchId, r.error)
        for r in await h.rows(t.task, order=t.task.c.createdAt)
    ]


async def wait_done_files(h, task_id: str, n: int, timeout: float = 20) -> pb.Task:
    """Until the task's first stage has finished at least `n` files."""
    with trio.fail_after(timeout):
        while True:
            task = await h.call("GetTask", pb.GetTaskRequest(task_id=task_id), VIEW)
            if task.stages and task.stages[0].done >= n:
                return task
            await trio.sleep(0.01)


async def lid_rows(h, bid: int) -> dict[str, int]:
    rows = await h.rows(t.lid_status, t.lid_status.c.batchId == bid)
    out: dict[str, int] = {}
    for r in rows:
        out[r.audioName] = out.get(r.audioName, 0) + 1
    return out


async def test_cancelled_batch_is_recorded_and_resumes_to_completed(
    start_server, tmp_path, zoned_db_url
):
    h = await start_server(zoned_db_url)
    install_status_audit(zoned_db_url)  # every value batchStatus.status takes, as committed
    h.fake.latency_s = 0.05
    d = write_batch_dir(tmp_path / "b", NAMES)
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    await wait_done_files(h, ref.task_id, 2)
    cancelled = await h.call("CancelTask", pb.CancelTaskRequest(task_id=ref.task_id))
    bid = cancelled.batch_id
    assert (cancelled.state, cancelled.error) == ("cancelled", "cancelled by request")
    assert await batch_status(h, bid) == "Cancelled"
    marks = await pipeline_marks(h, bid)
    assert len(marks) == 1
    status, error, meta = marks[0]
    assert (status, error) == ("failed", "cancelled by request")
    assert meta["task_id"] == ref.task_id and meta["cancelled"] is True
    assert meta["batch_status"] == "Cancelled"
    before = meta["status_before"]
    assert before not in ("Cancelled", "Completed")

    # Cancelling again changes nothing; a second event is not written.
    again = await h.call("CancelTask", pb.CancelTaskRequest(task_id=ref.task_id))
    assert again.state == "cancelled" and len(await pipeline_marks(h, bid)) == 1

    h.fake.latency_s = 0.0
    resumed = await h.call("ResumeTask", pb.ResumeTaskRequest(task_id=ref.task_id))
    assert resumed.batch_id == bid and resumed.task_id != ref.task_id
    task = await h.wait_task(resumed.task_id)
    assert task.state == "completed", task
    assert json.loads(task.request_json)["resumes"] == ref.task_id
    assert await batch_status(h, bid) == "Completed"
    marks = await pipeline_marks(h, bid)
    assert [(s, e) for s, e, _ in marks] == [
        ("failed", "cancelled by request"),
        ("processing", None),
    ]
    assert marks[1][2] == {"task_id": resumed.task_id, "resumed": True, "batch_status": before}
    assert await task_rows(h) == [
        ("batch", "cancelled", bid, "cancelled by request"),
        ("batch", "completed", bid, None),
    ]
    assert await lid_rows(h, bid) == {n: 1 for n in NAMES}  # every file once, none twice
    # The column itself: the walk up to `before`, Cancelled once, back to `before`, then on
    # to Completed; without the cancel's two steps, exactly the walk the log records.
    history = status_history(zoned_db_url, bid)
    assert history.count("Cancelled") == 1, history
    i = history.index("Cancelled")
    assert history[i - 1] == history[i + 1] == before, history
    walk = [m["batch_status"] for _, _, m in await pipeline_walk(h, bid)]
    assert history[:i] + history[i + 2:] == ["Pending", *walk], (history, walk)
    assert walk[-1] == "Completed" and walk.index(before) < len(walk) - 1
    # A task that is not cancelled cannot be resumed; nor can an unknown one.
    code, msg = await h.code_of("ResumeTask", pb.ResumeTaskRequest(task_id=resumed.task_id))
    assert (code, msg) == (
        C.FAILED_PRECONDITION,
        f"task {resumed.task_id} is completed; only a cancelled task can be resumed",
    )
    code, msg = await h.code_of("ResumeTask", pb.ResumeTaskRequest(task_id=ref.task_id))
    assert code == C.FAILED_PRECONDITION and "has a newer task" in msg
    code, _ = await h.code_of("ResumeTask", pb.ResumeTaskRequest(task_id="nope"))
    assert code == C.NOT_FOUND


async def test_cancelled_upload_resumes(start_server, tmp_path, zoned_db_url):
    h = await start_server(zoned_db_url)
    h.fake.latency_s = 0.05
    files = {f"u{i}.wav": wav_bytes(freq=300 + 20 * i) for i in range(8)}
    up = await h.call("UploadAudit", iter(upload_messages(files)), OP)
    await wait_done_files(h, up.task_id, 1)
    await h.call("CancelTask", pb.CancelTaskRequest(task_id=up.task_id))
    assert await batch_status(h, up.batch_id) == "Cancelled"
    h.fake.latency_s = 0.0
    resumed = await h.call("ResumeTask", pb.ResumeTaskRequest(task_id=up.task_id))
    task = await h.wait_task(resumed.task_id)
    assert (task.kind, task.state, task.batch_id) == ("upload", "completed", up.batch_id)
    assert await batch_status(h, up.batch_id) == "Completed"
    assert [(s, e) for s, e, _ in await pipeline_marks(h, up.batch_id)] == [
        ("failed", "cancelled by request"),
        ("processing", None),
    ]
    assert await lid_rows(h, up.batch_id) == {n: 1 for n in files}
    assert await task_rows(h) == [
        ("upload", "cancelled", up.batch_id, "cancelled by request"),
        ("upload", "completed", up.batch_id, None),
    ]


async def test_one_owner_per_call_cancel_reaudit_resume(
    start_server, tmp_path, zoned_db_url
):
    """Cancel a batch, reaudit one of its calls, resume the batch: refused while the
    reaudit holds the call (the message names the reaudit task); once it ended the batch
    resumes and no call ran LID twice for one owner. On SQLite and on MariaDB with the
    server zone at +05:30 (issue 15.10: the refusal names the task that holds the call)."""
    h = await start_server(zoned_db_url)
    h.fake.latency_s = 0.05
    d = write_batch_dir(tmp_path / "b", NAMES)
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    await wait_done_files(h, ref.task_id, 3)
    bid = (await h.call("CancelTask", pb.CancelTaskRequest(task_id=ref.task_id))).batch_id
    lid_before = await lid_rows(h, bid)
    target = NAMES[-1]  # the last in distribution order: not reached before the cancel
    assert target not in lid_before
    h.fake.latency_s = 0.3  # the reaudit stays running while the batch is tried
    ra = await h.call("Reaudit", pb.ReauditRequest(audio_names=[target], stages=["lid", "stt"]))
    held = f"calls are being processed by another task: {target} (reaudit task {ra.task_id})"
    assert await h.code_of("ResumeTask", pb.ResumeTaskRequest(task_id=ref.task_id)) == (
        C.FAILED_PRECONDITION,
        held,
    )
    assert await h.code_of("StartBatch", pb.StartBatchRequest(directory=str(d))) == (
        C.FAILED_PRECONDITION,
        held,
    )
    assert (await h.wait_task(ra.task_id)).state == "completed"
    h.fake.latency_s = 0.05
    resumed = await h.call("ResumeTask", pb.ResumeTaskRequest(task_id=ref.task_id))
    # And the other way round: from the moment the batch's task is accepted, a reaudit of
    # its calls is refused, naming the batch's task.
    code, msg = await h.code_of(
        "Reaudit", pb.ReauditRequest(audio_names=[NAMES[0]], stages=["llm2"])
    )
    assert (code, msg) == (
        C.FAILED_PRECONDITION,
        f"calls are being processed by another task: {NAMES[0]} "
        f"(batch task {resumed.task_id}, batch {bid})",
    )
    h.fake.latency_s = 0.0
    assert (await h.wait_task(resumed.task_id)).state == "completed"
    # LID ran once per file for the batch, plus once for the reaudited call: its resumed
    # batch run found lid and stt done and left it alone.
    assert await lid_rows(h, bid) == {n: 1 for n in NAMES}
    assert await batch_status(h, bid) == "Completed"
    assert await task_rows(h) == [
        ("batch", "cancelled", bid, "cancelled by request"),
        ("reaudit", "completed", None, None),
        ("batch", "completed", bid, None),
    ]


async def test_cancelled_reaudit_writes_its_closing_event_and_resumes(
    start_server, tmp_path, zoned_db_url
):
    h = await start_server(zoned_db_url)
    d = write_batch_dir(tmp_path / "b", NAMES)
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    bid = (await h.wait_task(ref.task_id)).batch_id
    h.fake.latency_s = 0.05
    ra = await h.call("Reaudit", pb.ReauditRequest(audio_names=NAMES, stages=["stt", "llm2"]))
    await wait_done_files(h, ra.task_id, 2)
    cancelled = await h.call("CancelTask", pb.CancelTaskRequest(task_id=ra.task_id))
    assert (cancelled.state, cancelled.error) == ("cancelled", "cancelled by request")
    done = cancelled.stages[-1].done + cancelled.stages[-1].failed + cancelled.stages[-1].skipped
    h.fake.latency_s = 0.0
    resumed = await h.call("ResumeTask", pb.ResumeTaskRequest(task_id=ra.task_id))
    assert resumed.batch_id == 0
    task = await h.wait_task(resumed.task_id)
    assert task.state == "completed", task
    assert json.loads(task.request_json) == {
        "audio_names": NAMES,
        "stages": ["stt", "llm2"],
        "resumes": ra.task_id,
    }
    events = await h.query(lambda c: _reaudit_events(c, ra.task_id))
    assert [(e["status"], e.get("cancelled", False)) for e in events] == [
        ("processing", False),
        ("success", False),
        ("failed", True),
    ]
    assert (events[-1]["total"], events[-1]["processed"], events[-1]["error"]) == (
        len(NAMES),
        done,
        "cancelled by request",
    )
    again = await h.query(lambda c: _reaudit_events(c, resumed.task_id))
    # The resumed task: no second cleanup, then its one closing event.
    assert [(e["status"], e.get("resumed", False), e.get("completed", False)) for e in again] == [
        ("processing", True, False),
        ("success", False, True),
    ]
    got = await h.query(lambda c: _rows(c, bid))
    assert {n: r["status"] for n, r in got.items()} == {n: "Complete" for n in NAMES}
    stt_runs = await h.query(lambda c: _stt_successes(c, bid))
    assert stt_runs == {n: 2 for n in NAMES}  # the batch's and the reaudit's, never a third


async def test_reaudit_stopped_mid_run_resumes_at_the_next_start(
    nursery, tmp_path, zoned_db_url
):
    """A daemon stopped mid-reaudit (its shutdown deadline cut the run: files were left
    unfinished) resumes the reaudit at the next start, under the same task: exactly the
    chosen stages, for the calls not yet done; one cleanup, one closing event."""
    from cofid.backends.fake import FakeBackends
    from tests.api.conftest import make_cfg

    cfg = make_cfg(tmp_path / "srv", zoned_db_url, service={"shutdown_deadline_s": 0.2})
    fake = FakeBackends()
    d = InProcessDaemon(cfg, fake, nursery)
    await d.start()
    svc = d.service
    batch_dir = write_batch_dir(tmp_path / "b", NAMES)
    ref = await svc.start_batch(str(batch_dir), None, None)

    async def wait_task(task_id: str) -> pb.Task:
        with trio.fail_after(30):
            while (view := await svc.get_task(task_id)).record.state in ("queued", "running"):
                await trio.sleep(0.02)
        return view

    bid = (await wait_task(ref.task_id)).record.batch_id
    fake.latency_s = 0.1
    accepted = await svc.reaudit(NAMES, ["stt", "llm2"])
    with trio.fail_after(20):
        while True:
            view = await svc.get_task(accepted.task_id)
            if view.stages and 2 <= view.stages[0]["done"] < len(NAMES) - 2:
                break
            await trio.sleep(0.01)
    await d.shutdown()
    rec = await _task(d, accepted.task_id, cfg)
    assert rec.state == "running" and rec.result["cleaned"] is True
    fake.latency_s = 0.0
    await d.start()
    view = await wait_task(accepted.task_id)
    assert (view.record.state, view.record.error) == ("completed", None)
    # stt ran again only for the calls not yet done at the stop.
    got = await d.app.db.read(lambda c: _rows(c, bid))
    assert {n: r["status"] for n, r in got.items()} == {n: "Complete" for n in NAMES}
    assert all(r["segments"] > 0 and r["answers"] > 0 for r in got.values())
    stt_runs = await d.app.db.read(lambda c: _stt_successes(c, bid))
    assert stt_runs == {n: 2 for n in NAMES}  # the batch's, the reaudit's: never a third
    events = await d.app.db.read(lambda c: _reaudit_events(c, accepted.task_id))
    assert [(e["status"], e.get("resumed", False), e.get("completed", False)) for e in events] == [
        ("processing", False, False),  # started
        ("success", False, False),  # cleaned: once
        ("processing", True, False),  # started again at the next start
        ("success", False, True),  # the one closing event
    ]
    await d.shutdown()


async def test_a_batch_task_killed_before_it_named_its_batch_resumes_with_it(
    nursery, tmp_path, zoned_db_url
):
    """The batch row commits, then the task row is given its id: a daemon killed between
    the two leaves a running task naming no batch. The restart gives it its batch (by
    its directory) and resumes it, instead of failing it and starting a second task."""
    from cofid.backends.fake import FakeBackends
    from cofid.store import tasks as task_store
    from cofid.store.db import Database
    from tests.api.conftest import make_cfg

    cfg = make_cfg(tmp_path / "srv", zoned_db_url, service={"shutdown_deadline_s": 0.2})
    fake = FakeBackends(latency_s=0.1)
    d = InProcessDaemon(cfg, fake, nursery)
    await d.start()
    ref = await d.service.start_batch(str(write_batch_dir(tmp_path / "b", NAMES)), None, None)
    with trio.fail_after(20):
        while not (view := await d.service.get_task(ref.task_id)).stages or not any(
            st["done"] for st in view.stages
        ):
            await trio.sleep(0.01)
    await d.shutdown()
    db = Database(cfg.database_url, pool_size=1)
    try:
        rec = await db.read(lambda c: task_store.get(c, ref.task_id))
        assert rec.state == "running" and rec.batch_id
        bid = rec.batch_id
        await db.write(lambda c: task_store.update(c, ref.task_id, {"batch_id": None}))
    finally:
        db.dispose()
    fake.latency_s = 0.0
    await d.start()
    with trio.fail_after(30):
        while (view := await d.service.get_task(ref.task_id)).record.state == "running":
            await trio.sleep(0.02)
    assert (view.record.state, view.record.batch_id, view.record.error) == (
        "completed",
        bid,
        None,
    )
    rows = await d.app.db.read(
        lambda c: [(r.kind, r.state, r.batchId) for r in c.execute(sa.select(t.task))]
    )
    assert rows == [("batch", "completed", bid)]  # no second task
    await d.shutdown()


async def _task(d: InProcessDaemon, task_id: str, cfg):
    from cofid.store import tasks as task_store
    from cofid.store.db import Database

    db = Database(cfg.database_url, pool_size=1)
    try:
        return await db.read(lambda c: task_store.get(c, task_id))
    finally:
        db.dispose()


def _rows(c, bid: int) -> dict:
    out = {}

    def n(table, call_id: int) -> int:
        return c.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.callId == call_id)
        ).scalar()

    for call in c.execute(sa.select(t.call).where(t.call.c.batchId == bid)):
        out[call.audioName] = {
            "status": call.status,
            "segments": n(t.transcript, call.id),
            "answers": n(t.audit_answer, call.id),
        }
    return out


def _stt_successes(c, bid: int) -> dict[str, int]:
    pl = t.processing_logs
    out: dict[str, int] = {}
    for r in c.execute(
        sa.select(pl).where(
            pl.c.batch_id == bid, pl.c.stage_name == "stt", pl.c.status == "success"
        )
    ):
        out[r.file_name] = out.get(r.file_name, 0) + 1
    return out


def _reaudit_events(c, task_id: str) -> list[dict]:
    bel = t.batch_execution_log
    out = []
    for r in c.execute(
        sa.select(bel).where(bel.c.batchId == 0, bel.c.stage == "reaudit").order_by(bel.c.id)
    ):
        meta = _meta(r)
        if meta.get("task_id") == task_id:
            out.append(
                {
                    "status": r.status,
                    "total": r.totalFiles,
                    "processed": r.processedFiles,
                    "error": r.errorMessage,
                    **meta,
                }
            )
    return out
