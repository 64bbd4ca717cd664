"""The control plane over a real loopback server: batches, tasks, queries, auth, lifecycle."""

from __future__ import annotations

import grpc
import trio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import OP, VIEW, write_batch_dir

C = grpc.StatusCode


async def test_start_batch_runs_to_completed(start_server, tmp_path):
    h = await start_server()
    d = write_batch_dir(tmp_path / "b1", ["a1.wav", "a2.wav", "a3_short.wav"])
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    assert ref.state == "queued" and ref.task_id
    task = await h.wait_task(ref.task_id)
    assert task.state == "completed", task
    assert task.kind == "batch" and task.batch_id > 0
    assert [s.stage for s in task.stages] == ["ivr", "lid", "stt", "llm1", "llm2"]
    b = await h.call("GetBatch", pb.GetBatchRequest(batch_id=task.batch_id), VIEW)
    assert b.summary.status == "Completed" and b.summary.source == "batch"
    assert b.source_dir == str(d)
    assert dict(b.call_status_counts) == {"Complete": 2, "ShortCall": 1}


OPERATOR_RPCS = {
    "StartBatch": pb.StartBatchRequest(directory="/nonexistent-dir"),
    "Reaudit": pb.ReauditRequest(audio_names=["x.wav"], stages=["lid"]),
    "CancelTask": pb.CancelTaskRequest(task_id="nope"),
}
VIEWER_RPCS = {
    "GetTask": pb.GetTaskRequest(task_id="nope"),
    "ListBatches": pb.ListBatchesRequest(),
    "GetBatch": pb.GetBatchRequest(batch_id=999),
    "GetCall": pb.GetCallRequest(audio_name="x.wav"),
    "ListCalls": pb.ListCallsRequest(batch_id=999),
    "ListGpus": pb.ListGpusRequest(),
}


async def _code(h, method, request, token):
    if method == "UploadAudit":
        try:
            await h.upload({"a.wav": b"x"}, token=token)
        except grpc.RpcError as e:
            return e.code(), e.details()
        return C.OK, ""
    if method == "WatchEvents":
        def first():
            md = (("authorization", f"Bearer {token}"),) if token else None
            it = h.stub.WatchEvents(request, metadata=md, timeout=10)
            try:
                next(it)
            except grpc.RpcError as e:
                return e.code(), e.details()
            finally:
                it.cancel()
            return C.OK, ""

        return await trio.to_thread.run_sync(first)
    return await h.code_of(method, request, token)


async def test_auth_every_rpc(start_server):
    h = await start_server()
    all_rpcs = {**OPERATOR_RPCS, **VIEWER_RPCS, "UploadAudit": None,
                "WatchEvents": pb.WatchRequest()}
    for method, req in all_rpcs.items():
        code, msg = await _code(h, method, req, None)
        assert code == C.UNAUTHENTICATED, method
        assert "authorization" in msg
        code, msg = await _code(h, method, req, "wrong-token")
        assert (code, msg) == (C.UNAUTHENTICATED, "unknown token"), method
    for method in [*OPERATOR_RPCS, "UploadAudit"]:
        code, msg = await _code(h, method, OPERATOR_RPCS.get(method), VIEW)
        assert code == C.PERMISSION_DENIED, method
        assert msg == f"token 'view' has role viewer; {method} needs operator"
    for method, req in {**VIEWER_RPCS, "WatchEvents": pb.WatchRequest()}.items():
        for token in (VIEW, OP):
            code, _ = await _code(h, method, req, token)
            assert code in (C.OK, C.NOT_FOUND), (method, token, code)
    for method, req in OPERATOR_RPCS.items():
        code, _ = await _code(h, method, req, OP)
        assert code == C.NOT_FOUND, (method, code)
    code, msg = await _code(h, "UploadAudit", None, OP)
    assert code == C.INVALID_ARGUMENT  # reached the handler: b"x" is 1 byte of non-audio

    # health and reflection need no token
    def health_check():
        return health_pb2_grpc.HealthStub(h.channel).Check(
            health_pb2.HealthCheckRequest(service="cofi.v1.Cofi"), timeout=5)

    assert (await trio.to_thread.run_sync(health_check)).status == \
        health_pb2.HealthCheckResponse.SERVING

    def services():
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

        stub = reflection_pb2_grpc.ServerReflectionStub(h.channel)
        resp = next(stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
        return {s.name for s in resp.list_services_response.service}

    assert "cofi.v1.Cofi" in await trio.to_thread.run_sync(services)


async def test_start_batch_errors(start_server, tmp_path):
    h = await start_server()
    SB = pb.StartBatchRequest
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("x")
    bad_csv = write_batch_dir(tmp_path / "badcsv", ["c1.wav"])
    (bad_csv / "callMetadata.csv").write_text("nope,wrong\n1,2\n")
    cases = [
        (SB(directory=""), C.INVALID_ARGUMENT, "directory is empty"),
        (SB(directory="rel/dir"), C.INVALID_ARGUMENT, "is not absolute"),
        (SB(directory=str(tmp_path) + "/x/../empty"), C.INVALID_ARGUMENT, "not normalised"),
        (SB(directory=str(tmp_path / "missing")), C.NOT_FOUND, "no such directory"),
        (SB(directory=str(tmp_path / "afile")), C.NOT_FOUND, "not a directory"),
        (SB(directory=str(tmp_path / "empty")), C.FAILED_PRECONDITION, "no audio files"),
        (SB(directory=str(bad_csv)), C.FAILED_PRECONDITION, "callMetadata"),
        (SB(directory=str(bad_csv), process_id=0), C.INVALID_ARGUMENT, "process_id must be > 0"),
        (SB(directory=str(bad_csv), process_id=77), C.INVALID_ARGUMENT,
         "no audit question set for process_id=77"),
    ]
    for req, code, text in cases:
        got, msg = await h.code_of("StartBatch", req)
        assert got == code, (req, got, msg)
        assert text in msg, (text, msg)

    d = write_batch_dir(tmp_path / "ok", ["o1.wav"])
    ref = await h.call("StartBatch", SB(directory=str(d)))
    code, msg = await h.code_of("StartBatch", SB(directory=str(d)))
    assert code == C.ALREADY_EXISTS and str(d) in msg
    task = await h.wait_task(ref.task_id)
    code, msg = await h.code_of("StartBatch", SB(directory=str(d)))
    assert code == C.ALREADY_EXISTS
    assert f"already processed as batch_id {task.batch_id}" in msg
    # a finished task cannot be cancelled
    code, msg = await h.code_of("CancelTask", pb.CancelTaskRequest(task_id=ref.task_id))
    assert code == C.FAILED_PRECONDITION and "already completed" in msg
    assert await h.code_of("GetTask", pb.GetTaskRequest(task_id="")) == (
        C.INVALID_ARGUMENT, "task_id is empty")
    assert await h.code_of("GetTask", pb.GetTaskRequest(task_id="nope"), VIEW) == (
        C.NOT_FOUND, "no task nope")
    assert await h.code_of("CancelTask", pb.CancelTaskRequest(task_id="nope")) == (
        C.NOT_FOUND, "no task nope")


async def test_queries(start_server, tmp_path):
    h = await start_server()
    ids = []
    for i in range(3):
        d = write_batch_dir(tmp_path / f"q{i}", [f"q{i}_a.wav", f"q{i}_b.wav"])
        ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
        ids.append((await h.wait_task(ref.task_id)).batch_id)
    # ListBatches: newest first, paged with an opaque token
    r1 = await h.call("ListBatches", pb.ListBatchesRequest(page_size=2), VIEW)
    assert [b.batch_id for b in r1.batches] == ids[::-1][:2] and r1.next_page_token
    r2 = await h.call("ListBatches", pb.ListBatchesRequest(
        page_size=2, page_token=r1.next_page_token), VIEW)
    assert [b.batch_id for b in r2.batches] == [ids[0]] and not r2.next_page_token
    today = r1.batches[0].batch_date
    r = await h.call("ListBatches", pb.ListBatchesRequest(date_from=today, date_to=today), VIEW)
    assert len(r.batches) == 3
    r = await h.call("ListBatches", pb.ListBatchesRequest(date_to="2000-01-01"), VIEW)
    assert len(r.batches) == 0
    LB = pb.ListBatchesRequest
    for req, text in [
        (LB(date_from="2024-13-01"), "date_from '2024-13-01' is not a date"),
        (LB(date_to="yesterday"), "date_to 'yesterday' is not a date"),
        (LB(date_from="2024-02-02", date_to="2024-02-01"), "is after date_to"),
        (LB(page_size=-1), "page_size must be ≥ 0"),
        (LB(page_token="garbage"), "page_token was not issued"),
        (LB(page_size=3, page_token=r1.next_page_token), "page_token was not issued"),
    ]:
        code, msg = await h.code_of("ListBatches", req, VIEW)
        assert code == C.INVALID_ARGUMENT and text in msg, (req, msg)
    # GetBatch
    b = await h.call("GetBatch", pb.GetBatchRequest(batch_id=ids[0]), VIEW)
    stages = {s.stage: s for s in b.stages}
    assert [s.stage for s in b.stages][0] == "file_distribution" and len(b.stages) == 10
    assert stages["stt"].status == "Complete" and stages["stt"].done == 2
    assert stages["denoise"].status == "Complete" and stages["denoise"].total == 0
    assert stages["denoise"].disabled and not stages["stt"].disabled  # off, not finished
    assert dict(b.call_status_counts) == {"Complete": 2}
    assert await h.code_of("GetBatch", pb.GetBatchRequest(batch_id=9999), VIEW) == (
        C.NOT_FOUND, "no batch 9999")
    code, msg = await h.code_of("GetBatch", pb.GetBatchRequest(batch_id=0), VIEW)
    assert code == C.INVALID_ARGUMENT and "batch_id must be > 0" in msg
    # GetCall
    call = await h.call("GetCall", pb.GetCallRequest(audio_name="q1_a.wav"), VIEW)
    assert call.batch_id == ids[1] and call.status == "Complete" and call.lang == "en"
    assert call.transcript and call.audit_answers and call.gpu_ip in ("gpu-a", "gpu-b")
    assert [s.index for s in call.transcript] == list(range(len(call.transcript)))
    code, msg = await h.code_of("GetCall", pb.GetCallRequest(audio_name="q1_a.wav",
                                                             batch_id=ids[0]), VIEW)
    assert code == C.NOT_FOUND and f"no call 'q1_a.wav' in batch {ids[0]}" == msg
    code, msg = await h.code_of("GetCall", pb.GetCallRequest(audio_name=""), VIEW)
    assert (code, msg) == (C.INVALID_ARGUMENT, "audio_name is empty")
    # ListGpus
    gpus = await h.call("ListGpus", pb.ListGpusRequest(), VIEW)
    assert [g.name for g in gpus.gpus] == ["gpu-a", "gpu-b"]
    assert all(g.healthy and g.slots == 2 for g in gpus.gpus)
    assert sum(g.files_done for g in gpus.gpus) > 0


async def test_cancel_running_batch(start_server, tmp_path):
    from cofid.backends.fake import FakeBackends

    h = await start_server(fake=FakeBackends(latency_s=0.2))
    d = write_batch_dir(tmp_path / "slow", [f"s{i}.wav" for i in range(20)])
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    with trio.fail_after(10):
        while True:
            task = await h.call("GetTask", pb.GetTaskRequest(task_id=ref.task_id), VIEW)
            if task.state == "running" and task.stages and any(s.done for s in task.stages):
                break
            await trio.sleep(0.05)
    task = await h.call("CancelTask", pb.CancelTaskRequest(task_id=ref.task_id))
    assert task.state == "cancelled" and task.error == "cancelled by request"
    again = await h.call("CancelTask", pb.CancelTaskRequest(task_id=ref.task_id))
    assert again.state == "cancelled"
    b = await h.call("GetBatch", pb.GetBatchRequest(batch_id=task.batch_id), VIEW)
    assert b.summary.status != "Completed"


async def test_shutdown_drains_and_restart_resumes(start_server, tmp_path):
    from cofid.backends.fake import FakeBackends

    h = await start_server(fake=FakeBackends(latency_s=0.1))
    d = write_batch_dir(tmp_path / "resume", [f"r{i}.wav" for i in range(16)])
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    with trio.fail_after(10):
        while not h.app.runs:
            await trio.sleep(0.02)
    await trio.sleep(0.3)
    h.stop.set()
    with trio.fail_after(15):
        await h.finished.wait()
    # same data directory: the batch resumes and the task completes
    h2 = await start_server()
    task = await h2.wait_task(ref.task_id)
    assert task.state == "completed"
    b = await h2.call("GetBatch", pb.GetBatchRequest(batch_id=task.batch_id), VIEW)
    assert b.summary.status == "Completed" and dict(b.call_status_counts) == {"Complete": 16}


async def test_unix_socket_and_listen_refusal(start_server, tmp_path):
    from cofid.commands.serve import serve_command
    from tests.api.conftest import make_cfg

    sock = tmp_path / "s" / "cofid.sock"
    h = await start_server(grpc_extra={"listen": [f"unix:{sock}"], "auth": False})
    assert h.address == f"unix:{sock}"
    r = await h.call("ListGpus", pb.ListGpusRequest(), None)
    assert len(r.gpus) == 2
    cfg = make_cfg(tmp_path / "remote", grpc_extra={"listen": ["0.0.0.0:0"]})
    assert await trio.to_thread.run_sync(lambda: serve_command(cfg, watch=False)) == 2
    assert OP  # tokens unused here
