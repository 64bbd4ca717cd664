"""Issue 15.10 on a real daemon (serve_main, fake GPUs), on SQLite and on MariaDB with the
server zone at +05:30 (tests/conftest.py's zoned_db_url): ListTasks (filters, keyset pages,
signed tokens), upload idempotency keys (exact task, batchStatus, fileDistribution and
call rows), reflection served as grpc.reflection.v1 too."""

from __future__ import annotations

import json
from datetime import timedelta

import grpc
import sqlalchemy as sa
import trio
from grpc_reflection.v1alpha import reflection_pb2

from cofid.api.validate import TOKEN_REFUSED
from cofid.store import tables as t
from cofid.store.writes import utcnow
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import (
    VIEW,
    upload_messages,
    wav_bytes,
    write_batch_dir,
)

C = grpc.StatusCode


async def _all_pages(h, size: int, **filters) -> list[pb.Task]:
    got, token, pages = [], "", 0
    while True:
        reply = await h.call(
            "ListTasks", pb.ListTasksRequest(page_size=size, page_token=token, **filters), VIEW
        )
        got.extend(reply.tasks)
        pages += 1
        token = reply.next_page_token
        if not token:
            return got
        assert pages < 50


async def test_list_tasks_filters_and_pages(start_server, tmp_path, zoned_db_url):
    h = await start_server(zoned_db_url)
    t0 = utcnow() - timedelta(seconds=1)
    ups = []
    for i in range(3):
        up = await h.upload({f"l{i}.wav": wav_bytes(freq=300 + 40 * i)})
        assert (await h.wait_task(up.task_id)).state == "completed"
        ups.append(up.task_id)
    ra = await h.call("Reaudit", pb.ReauditRequest(audio_names=["l0.wav"], stages=["llm2"]))
    assert (await h.wait_task(ra.task_id)).state == "completed"
    h.fake.latency_s = 0.05
    d = write_batch_dir(tmp_path / "b", [f"b{i}.wav" for i in range(10)])
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    with trio.fail_after(10):  # its batch rows exist (ListCalls pages them below)
        while not (await h.call("GetTask", pb.GetTaskRequest(task_id=ref.task_id))).batch_id:
            await trio.sleep(0.01)
    bid = (await h.call("CancelTask", pb.CancelTaskRequest(task_id=ref.task_id))).batch_id

    def newest_first(c):
        tk = t.task
        return [
            r.id for r in c.execute(sa.select(tk.c.id).order_by(tk.c.createdAt.desc(), tk.c.id))
        ]

    expected = await h.query(newest_first)
    assert sorted(expected) == sorted([*ups, ra.task_id, ref.task_id])
    tk = t.task
    rows = await h.query(lambda c: {r.id: tuple(r)[1:] for r in c.execute(sa.select(
        tk.c.id, tk.c.kind, tk.c.state, tk.c.batchId, tk.c.error, tk.c.createdAt))})
    assert {i: r[:4] for i, r in rows.items()} == {
        **{u: ("upload", "completed", rows[u][2], None) for u in ups},
        ra.task_id: ("reaudit", "completed", None, None),
        ref.task_id: ("batch", "cancelled", bid, "cancelled by request"),
    }
    assert len({rows[u][2] for u in ups}) == 3  # a batch per upload
    for size in (1, 2, 5, 0):
        assert [x.task_id for x in await _all_pages(h, size)] == expected, size
    listed = {x.task_id: x for x in await _all_pages(h, 2)}
    assert (listed[ref.task_id].kind, listed[ref.task_id].state, listed[ref.task_id].error) == (
        "batch",
        "cancelled",
        "cancelled by request",
    )
    assert [s.stage for s in listed[ra.task_id].stages] == ["llm2"]  # as GetTask shows it
    # One clock: each task's created_at is its row's, in UTC (the server's zone is +05:30).
    t1 = utcnow() + timedelta(seconds=1)
    for tid, task in listed.items():
        created = task.created_at.ToDatetime()
        assert created == rows[tid][4].replace(tzinfo=None), tid
        assert t0 <= created <= t1, (tid, created)
    assert [x.task_id for x in await _all_pages(h, 2, kinds=["upload"])] == [
        i for i in expected if i in ups
    ]
    assert [x.task_id for x in await _all_pages(h, 2, states=["cancelled"])] == [ref.task_id]
    assert [x.task_id for x in await _all_pages(h, 2, states=["completed"], kinds=["reaudit"])] == [
        ra.task_id
    ]

    first = await h.call("ListTasks", pb.ListTasksRequest(page_size=1), VIEW)
    token = first.next_page_token
    assert token
    for bad in (
        pb.ListTasksRequest(page_size=1, page_token=token, kinds=["upload"]),
        pb.ListTasksRequest(page_size=1, page_token=token[:-2] + "AA"),
        pb.ListTasksRequest(page_size=1, page_token="garbage"),
        pb.ListTasksRequest(page_size=1, page_token="x" * 10_000),
    ):
        assert await h.code_of("ListTasks", bad, VIEW) == (C.INVALID_ARGUMENT, TOKEN_REFUSED)
    # A ListCalls token is not a ListTasks token.
    calls = await h.call("ListCalls", pb.ListCallsRequest(batch_id=bid, page_size=1), VIEW)
    assert calls.next_page_token
    assert await h.code_of(
        "ListTasks", pb.ListTasksRequest(page_token=calls.next_page_token), VIEW
    ) == (C.INVALID_ARGUMENT, TOKEN_REFUSED)
    assert await h.code_of("ListTasks", pb.ListTasksRequest(states=["done"]), VIEW) == (
        C.INVALID_ARGUMENT,
        "unknown task state 'done' (known: queued, running, completed, failed, cancelled)",
    )
    assert await h.code_of("ListTasks", pb.ListTasksRequest(kinds=["x"]), VIEW) == (
        C.INVALID_ARGUMENT,
        "unknown task kind 'x' (known: batch, upload, reaudit)",
    )
    assert (await h.code_of("ListTasks", pb.ListTasksRequest(page_size=-1), VIEW))[0] == (
        C.INVALID_ARGUMENT
    )


async def _rows(h) -> dict[str, list[tuple]]:
    """What an upload writes, row by row: its task, its batch, its files and calls."""

    def q(c):
        def rows(*cols, order):
            return [tuple(r) for r in c.execute(sa.select(*cols).order_by(*order))]

        tk, bs, fd, cl = t.task, t.batch_status, t.file_distribution, t.call
        return {
            "task": rows(tk.c.id, tk.c.kind, tk.c.batchId, order=[tk.c.id]),
            "batchStatus": rows(bs.c.id, bs.c.source, bs.c.totalFiles, order=[bs.c.id]),
            "fileDistribution": rows(fd.c.batchId, fd.c.file, order=[fd.c.file]),
            "call": rows(cl.c.batchId, cl.c.audioName, order=[cl.c.audioName]),
        }

    return await h.query(q)


def _one_upload(task_id: str, batch_id: int, names: list[str]) -> dict[str, list[tuple]]:
    return {
        "task": [(task_id, "upload", batch_id)],
        "batchStatus": [(batch_id, "upload", len(names))],
        "fileDistribution": [(batch_id, n) for n in sorted(names)],
        "call": [(batch_id, n) for n in sorted(names)],
    }


async def test_upload_retry_with_the_same_key_returns_the_first_reply(
    start_server, zoned_db_url
):
    h = await start_server(zoned_db_url)
    files = {"k1.wav": wav_bytes(), "k2.wav": wav_bytes(freq=500)}
    key = {"idempotency_key": "retry-7f3c:1"}
    first = await h.upload(files, header_extra=key)
    assert first.status == "queued" and first.batch_id > 0
    one = _one_upload(first.task_id, first.batch_id, list(files))
    assert await _rows(h) == one
    # The reply was lost; the client sends the same upload again, with or without replace.
    again = await h.upload(files, header_extra=key)
    assert again == first
    replaced = await h.upload(files, header_extra=key, replace=True)
    assert replaced == first
    assert await _rows(h) == one  # no second batch, no second task: the same rows
    task = await h.wait_task(first.task_id)
    assert task.state == "completed"
    assert json.loads(task.request_json)["idempotency_key"] == "retry-7f3c:1"
    assert await h.upload(files, header_extra=key) == first  # after it finished, too
    # The same key for another upload is refused; so is a malformed key.
    code, msg = await h.code_of(
        "UploadAudit", iter(upload_messages({"k3.wav": wav_bytes(freq=700)}, header_extra=key))
    )
    assert (code, msg) == (
        C.ALREADY_EXISTS,
        f"idempotency_key was used for a different upload (task {first.task_id}); use a new key",
    )
    for bad in ("has space", "x" * 129, "ü"):
        code, msg = await h.code_of(
            "UploadAudit",
            iter(upload_messages({"k4.wav": wav_bytes()}, header_extra={"idempotency_key": bad})),
        )
        assert code == C.INVALID_ARGUMENT and msg.startswith("idempotency_key must be"), bad
    # Without a key a repeat is still ALREADY_EXISTS, and replace makes a new batch.
    code, _ = await h.code_of("UploadAudit", iter(upload_messages(files)))
    assert code == C.ALREADY_EXISTS
    assert await _rows(h) == one


async def test_a_key_being_received_is_refused_until_its_upload_ended(
    start_server, zoned_db_url
):
    h = await start_server(zoned_db_url)
    release = trio.Event()
    data = wav_bytes()
    key = {"idempotency_key": "slow-upload"}
    msgs = upload_messages({"s1.wav": data}, header_extra=key, chunk=len(data) // 2 + 1)
    first_reply: list = []

    def slow():
        yield msgs[0]
        yield msgs[1]
        trio.from_thread.run(release.wait, trio_token=token)
        yield from msgs[2:]

    token = trio.lowlevel.current_trio_token()

    async def send_slow():
        first_reply.append(await h.call("UploadAudit", slow()))

    async with trio.open_nursery() as n:
        n.start_soon(send_slow)
        with trio.fail_after(10):
            while not h.service.uploading_tasks:
                await trio.sleep(0.01)
        code, msg = await h.code_of(
            "UploadAudit", iter(upload_messages({"s1.wav": data}, header_extra=key))
        )
        assert (code, msg) == (
            C.ALREADY_EXISTS,
            "an upload with this idempotency_key is being received right now; retry once it ended",
        )
        release.set()
    first = first_reply[0]
    assert await h.upload({"s1.wav": data}, header_extra=key) == first
    assert not h.service.uploading_tasks
    # The refused attempt and the retry wrote nothing: the first upload's rows only.
    assert await _rows(h) == _one_upload(first.task_id, first.batch_id, ["s1.wav"])


async def test_reflection_is_served_as_v1_and_v1alpha(start_server, zoned_db_url):
    h = await start_server(zoned_db_url)
    want = {
        "cofi.v1.Cofi",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    for package in ("v1", "v1alpha"):
        method = h.channel.stream_stream(
            f"/grpc.reflection.{package}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        reqs = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="cofi.v1.Cofi"),
        ]
        replies = await trio.to_thread.run_sync(
            lambda m=method, r=reqs: list(m(iter(r), timeout=10))
        )
        names = {s.name for s in replies[0].list_services_response.service}
        assert names == want, package
        files = replies[1].file_descriptor_response.file_descriptor_proto
        assert files and any(b"ListTasks" in f for f in files), package
