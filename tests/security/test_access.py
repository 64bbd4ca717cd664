"""Every cofi.v1 RPC against the real servicer (serve_main, not a dummy) with no token,
a wrong token, a viewer token and an operator token.

Each RPC gets a request that succeeds for an operator (a fresh batch directory, a
decodable upload, a reaudit of an existing call, the cancellation of a running task, the
ids of real rows), so a refusal is the interceptor's doing, not a NOT_FOUND. A refused
call must change nothing: no task, no batch, no stored file, no cancelled task.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
import trio

from cofid.api.auth import METHOD_ROLES, MSG_MALFORMED, MSG_UNKNOWN, OPERATOR, VIEWER
from cofid.store import tables as t
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import OP, VIEW, upload_messages, wav_bytes, write_batch_dir
from tests.api.verdict_rows import TRADE_IDS, seed_verdicts
from tests.security.conftest import C, first_watch_message, metadata, wait_running

WRONG = "wrong-4b1d9e7c2a0f"
TOKENS = {"none": None, "wrong": WRONG, "viewer": VIEW, "operator": OP}
ROLE_OF = {m.rpartition("/")[2]: r for m, r in METHOD_ROLES.items()}
RPCS = sorted(ROLE_OF)


@dataclass
class World:
    """Rows the valid requests point at: a completed upload and a running batch."""

    batch_id: int
    done_task: str
    running_task: str
    fresh_dir: Path


async def make_world(h, tmp_path: Path) -> World:
    up = await h.upload({"p1.wav": wav_bytes(), "p2.wav": wav_bytes(freq=520)})
    assert (await h.wait_task(up.task_id)).state == "completed"
    await h.app.db.write(lambda c: seed_verdicts(c, up.batch_id))  # what the verdict RPCs read
    h.fake.latency_s = 0.2  # the next batch stays running while the matrix runs
    d = write_batch_dir(tmp_path / "running", [f"r{i}.wav" for i in range(24)])
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    await wait_running(h, ref.task_id)
    fresh = write_batch_dir(tmp_path / "fresh", ["n1.wav"])
    return World(up.batch_id, up.task_id, ref.task_id, fresh)


def valid_request(method: str, w: World):
    return {
        "StartBatch": lambda: pb.StartBatchRequest(directory=str(w.fresh_dir)),
        "UploadAudit": lambda: iter(upload_messages({"new.wav": wav_bytes(freq=610)})),
        "Reaudit": lambda: pb.ReauditRequest(audio_names=["p1.wav"], stages=["llm2"]),
        "CancelTask": lambda: pb.CancelTaskRequest(task_id=w.running_task),
        "GetTask": lambda: pb.GetTaskRequest(task_id=w.done_task),
        "ListBatches": lambda: pb.ListBatchesRequest(),
        "GetBatch": lambda: pb.GetBatchRequest(batch_id=w.batch_id),
        "GetCall": lambda: pb.GetCallRequest(audio_name="p1.wav"),
        "ListCalls": lambda: pb.ListCallsRequest(batch_id=w.batch_id, full=True),
        "ListGpus": lambda: pb.ListGpusRequest(),
        "WatchEvents": lambda: pb.WatchRequest(from_event_id=0),
        "ListTradeVerdicts": lambda: pb.ListTradeVerdictsRequest(batch_id=w.batch_id),
        "GetEvidence": lambda: pb.GetEvidenceRequest(trade_id="T1"),
        "ListTasks": lambda: pb.ListTasksRequest(),
        # The matrix runs in name order: CancelTask has cancelled this task by now.
        "ResumeTask": lambda: pb.ResumeTaskRequest(task_id=w.running_task),
    }[method]()


async def attempt(h, method: str, request, token: str | None):
    """(code, details, reply); for WatchEvents the reply is the first message."""
    if method in ("WatchEvents", "GetEvidence"):
        return await first_watch_message(h, request, token, method=method)
    fn = getattr(h.stub, method)
    try:
        reply = await trio.to_thread.run_sync(
            lambda: fn(request, metadata=metadata(token), timeout=30))
    except grpc.RpcError as e:
        return e.code(), e.details(), None
    return C.OK, "", reply


async def snapshot(h) -> dict:
    def q(c):
        return {
            "tasks": sorted((r.id, r.kind, r.state) for r in c.execute(sa.select(t.task))),
            "batches": c.execute(sa.select(sa.func.count()).select_from(t.batch_status))
            .scalar(),
            # the uploaded calls' answers (a Reaudit would replace them)
            "answers": sorted(c.execute(
                sa.select(t.audit_answer.c.id, t.audit_answer.c.answer)
                .join(t.call, t.call.c.id == t.audit_answer.c.callId)
                .where(t.call.c.audioName.in_(["p1.wav", "p2.wav"])))),
        }

    snap = await h.query(q)
    up = h.cfg.uploads_dir
    snap["uploads"] = sorted(p.name for p in up.iterdir()) if up.exists() else []
    return snap


def expected(token_kind: str, method: str) -> grpc.StatusCode:
    if token_kind in ("none", "wrong"):
        return C.UNAUTHENTICATED
    if token_kind == "viewer" and ROLE_OF[method] == OPERATOR:
        return C.PERMISSION_DENIED
    return C.OK


def test_the_matrix_covers_every_rpc():
    service = pb.DESCRIPTOR.services_by_name["Cofi"]
    assert set(RPCS) == {m.name for m in service.methods}
    assert {m for m in RPCS if ROLE_OF[m] == VIEWER} == {
        "GetTask", "ListBatches", "GetBatch", "GetCall", "ListCalls", "ListGpus", "WatchEvents",
        "ListTradeVerdicts", "GetEvidence", "ListTasks"}


@pytest.mark.parametrize("token_kind", ["none", "wrong", "viewer"])
async def test_refused_calls_change_nothing(start_server, tmp_path, token_kind):
    h = await start_server()
    w = await make_world(h, tmp_path)
    before = await snapshot(h)
    token = TOKENS[token_kind]
    for method in RPCS:
        code, details, reply = await attempt(h, method, valid_request(method, w), token)
        want = expected(token_kind, method)
        assert code == want, (token_kind, method, code, details)
        if token_kind == "none":
            assert details == MSG_MALFORMED
        elif token_kind == "wrong":
            assert details == MSG_UNKNOWN
        elif want == C.PERMISSION_DENIED:
            assert details == f"token 'view' has role viewer; {method} needs operator"
        else:
            assert reply is not None and reply.ByteSize() > 0, method
    assert await snapshot(h) == before  # the running batch was not cancelled, nothing new
    task = await h.call("GetTask", pb.GetTaskRequest(task_id=w.running_task), VIEW)
    assert task.state == "running"
    # the batch the refused calls ran beside still completes
    h.fake.latency_s = 0.0
    assert (await h.wait_task(w.running_task, timeout=30)).state == "completed"


async def test_operator_may_call_every_rpc(start_server, tmp_path):
    h = await start_server()
    w = await make_world(h, tmp_path)
    before = await snapshot(h)
    replies = {}
    for method in RPCS:
        code, details, reply = await attempt(h, method, valid_request(method, w), OP)
        assert code == C.OK, (method, code, details)
        replies[method] = reply
    assert replies["CancelTask"].state == "cancelled"
    assert replies["StartBatch"].task_id and replies["UploadAudit"].batch_id > 0
    assert replies["Reaudit"].matched_calls == 1
    assert replies["GetTask"].state == "completed"
    assert replies["GetBatch"].summary.batch_id == w.batch_id
    assert replies["GetCall"].audio_name == "p1.wav"
    assert [c.audio_name for c in replies["ListCalls"].calls] == ["p1.wav", "p2.wav"]
    assert [g.name for g in replies["ListGpus"].gpus] == ["gpu-a", "gpu-b"]
    assert replies["WatchEvents"].WhichOneof("msg") == "event"
    assert [v.trade_id for v in replies["ListTradeVerdicts"].verdicts] == TRADE_IDS
    assert replies["GetEvidence"].header.trade_id == "T1"
    listed = [t.task_id for t in replies["ListTasks"].tasks]
    assert w.done_task in listed and w.running_task in listed
    assert replies["ResumeTask"].batch_id == replies["CancelTask"].batch_id
    after = await snapshot(h)
    old = {i for i, _, _ in before["tasks"]}
    assert sorted(k for i, k, _ in after["tasks"] if i not in old) == [
        "batch", "batch", "reaudit", "upload"]
    assert len(after["uploads"]) == len(before["uploads"]) + 1
    h.fake.latency_s = 0.0
    for ref in (replies["StartBatch"].task_id, replies["UploadAudit"].task_id,
                replies["Reaudit"].task_id, replies["ResumeTask"].task_id):
        assert (await h.wait_task(ref)).state == "completed"


@pytest.mark.parametrize("md", [
    (("authorization", OP),),  # no scheme
    (("authorization", f"Basic {OP}"),),  # another scheme
    (("authorization", f"Bearer {OP}"), ("authorization", f"Bearer {OP}")),  # twice
    (("x-api-key", OP),),  # another header
    (("authorization", f"Bearer {OP}x"),),  # a prefix of a valid token is not valid
])
async def test_malformed_or_near_miss_credentials(start_server, tmp_path, md):
    h = await start_server()
    d = write_batch_dir(tmp_path / "m", ["m1.wav"])
    before = await snapshot(h)

    def call():
        try:
            h.stub.StartBatch(pb.StartBatchRequest(directory=str(d)), metadata=md, timeout=10)
        except grpc.RpcError as e:
            return e.code(), e.details()
        return C.OK, ""

    code, details = await trio.to_thread.run_sync(call)
    assert code == C.UNAUTHENTICATED
    assert details in (MSG_MALFORMED, MSG_UNKNOWN)
    assert await snapshot(h) == before
