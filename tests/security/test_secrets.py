"""Tokens never leave the interceptor: not in logs (DEBUG included), not in events, not in
any table (batchExecutionLog, task requests, processing_logs ...), not in any file under
the data directory, not in an error message."""

from __future__ import annotations

import logging

import grpc
import sqlalchemy as sa
import trio

from cofid.backends.fake import FakeBackends
from cofid.store import tables as t
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import OP, VIEW, upload_messages, wav_bytes, write_batch_dir
from tests.security.conftest import C, metadata

WRONG = "wrong-secret-7f3a9c"
SECRETS = (OP, VIEW, WRONG)


async def test_tokens_absent_from_logs_events_rows_files_and_errors(start_server, tmp_path,
                                                                    caplog):
    caplog.set_level(logging.DEBUG)
    h = await start_server(fake=FakeBackends(fail_names={"b2.wav"}))  # error events too
    details: list[str] = []

    async def record(method, request, token):
        code, msg = await h.code_of(method, request, token)
        details.append(msg)
        return code

    # a batch and an upload by the operator, one file failing
    d = write_batch_dir(tmp_path / "b", ["b1.wav", "b2.wav", "b3.wav"])
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    up = await h.upload({"u1.wav": wav_bytes()})
    for task_id in (ref.task_id, up.task_id):
        assert (await h.wait_task(task_id)).state == "completed"
    re = await h.call("Reaudit", pb.ReauditRequest(audio_names=["u1.wav"], stages=["stt"]))
    assert (await h.wait_task(re.task_id)).state == "completed"
    # refusals and errors of every kind
    for token in (None, WRONG, VIEW):
        assert await record("StartBatch", pb.StartBatchRequest(directory=str(d)), token) in (
            C.UNAUTHENTICATED, C.PERMISSION_DENIED)
        assert await record("GetTask", pb.GetTaskRequest(task_id="nope"), token) in (
            C.UNAUTHENTICATED, C.NOT_FOUND)
    for method, request in [
        ("StartBatch", pb.StartBatchRequest(directory=str(d))),  # ALREADY_EXISTS
        ("StartBatch", pb.StartBatchRequest(directory="relative")),
        ("Reaudit", pb.ReauditRequest(audio_names=["ghost.wav"], stages=["lid"])),
        ("GetCall", pb.GetCallRequest(audio_name="ghost.wav")),
        ("ListBatches", pb.ListBatchesRequest(page_token="garbage")),
        ("UploadAudit", iter(upload_messages({"bad.wav": b"RIFF not audio"}))),
        ("UploadAudit", iter(upload_messages({"u1.wav": wav_bytes()}))),  # uploaded before
    ]:
        assert await record(method, request, OP) != C.OK, method
    # events, replayed and live, for both roles
    stream: list[bytes] = []

    def watch(token):
        it = h.stub.WatchEvents(pb.WatchRequest(from_event_id=0), metadata=metadata(token),
                                timeout=30)
        try:
            for m in it:
                stream.append(m.SerializeToString())
                if m.WhichOneof("msg") == "heartbeat":
                    return
        finally:
            it.cancel()

    for token in (VIEW, OP):
        await trio.to_thread.run_sync(watch, token)
    assert len(stream) > 20

    async def every_row() -> str:
        def q(c):
            return [repr(tuple(r)) for table in t.metadata.sorted_tables
                    for r in c.execute(sa.select(table))]

        return "\n".join(await h.query(q))

    rows = await every_row()
    log_rows = await h.rows(t.batch_execution_log)
    assert len(log_rows) > 20
    failed = await h.rows(t.processing_logs, t.processing_logs.c.status == "failed")
    assert {r.file_name for r in failed} == {"b2.wav"}  # errors went through the same paths
    assert any(r.eventType == "error" for r in log_rows)
    logged = caplog.text + "\n".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert "refused" in logged
    files = b"".join(p.read_bytes() for p in h.cfg.data_dir.rglob("*") if p.is_file())
    for secret in SECRETS:
        assert secret not in logged
        assert secret not in rows
        assert all(secret not in m for m in details)
        assert all(secret.encode() not in m for m in stream)
        assert secret.encode() not in files
    assert any(m for m in details)  # the errors did carry messages


async def test_token_shaped_request_fields_are_not_echoed_by_refusals(start_server):
    """A refused call never reaches the handler, so even a request that carries a token
    (a client's mistake) is not echoed back or logged."""
    h = await start_server()

    def call():
        try:
            h.stub.GetCall(pb.GetCallRequest(audio_name=OP), metadata=metadata(WRONG),
                           timeout=10)
        except grpc.RpcError as e:
            return e.code(), e.details()

    code, msg = await trio.to_thread.run_sync(call)
    assert code == C.UNAUTHENTICATED and OP not in msg and WRONG not in msg
