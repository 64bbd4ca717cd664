"""ListCalls over a real loopback server: keyset paging, status filters, full pages equal
to GetCall, the page-size and reply-size limits, a fixed number of queries per page,
every error code with its message, and auth."""

from __future__ import annotations

import re
from collections import Counter

import grpc
import sqlalchemy as sa

from cofid.api import queries
from cofid.store import tables as t
from cofid.testing.batches import write_fixture_batch
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import VIEW, write_batch_dir

C = grpc.StatusCode
LC = pb.ListCallsRequest
REFUSED = "page_token was not issued by this server for these filters"


async def fixture_batch(h, tmp_path, extra_calls: int = 6) -> tuple[int, dict]:
    expected = write_fixture_batch(tmp_path / "fx", extra_calls=extra_calls, first_stage="ivr")
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(tmp_path / "fx")))
    task = await h.wait_task(ref.task_id, timeout=60)
    assert task.state == "completed", task
    return task.batch_id, expected


async def call_ids(h, batch_id: int, *statuses: str) -> list[int]:
    c = t.call
    where = [c.c.batchId == batch_id] + ([c.c.status.in_(statuses)] if statuses else [])
    return [r.id for r in await h.rows(c, *where)]


async def all_pages(h, batch_id: int, size: int, *statuses: str, full: bool = False):
    req = LC(batch_id=batch_id, page_size=size, statuses=statuses, full=full)
    got = []
    while True:
        reply = await h.call("ListCalls", req, VIEW)
        got.append(list(reply.calls))
        if not reply.next_page_token:
            return got
        req = LC(batch_id=batch_id, page_size=size, statuses=statuses, full=full,
                 page_token=reply.next_page_token)


async def test_paging_has_no_gaps_or_duplicates(start_server, tmp_path):
    h = await start_server()
    bid, expected = await fixture_batch(h, tmp_path)
    # a second batch: its calls never appear in the first one's listing
    other = write_batch_dir(tmp_path / "other", ["o1.wav", "o2.wav"])
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(other)))
    await h.wait_task(ref.task_id)
    ids = await call_ids(h, bid)
    assert len(ids) == len(expected["files"]) >= 10
    for size in (1, 3, 4, len(ids), len(ids) + 5):
        got = await all_pages(h, bid, size)
        flat = [c.call_id for page in got for c in page]
        assert flat == ids, size  # call id order, every call once
        assert all(len(p) == size for p in got[:-1]) and 0 < len(got[-1]) <= size, size
        assert {c.batch_id for p in got for c in p} == {bid}
    # scalar pages carry no lists; the scalar fields match the rows
    first = (await h.call("ListCalls", LC(batch_id=bid), VIEW))
    assert not first.next_page_token and len(first.calls) == len(ids)  # default size 100
    by_name = {c.audio_name: c for c in first.calls}
    assert set(by_name) == set(expected["files"])
    for name, want in expected["calls"].items():
        c = by_name[name]
        assert (c.status, c.lang, c.language_id) == (want["status"], want["lang"],
                                                      want["languageId"]), name
        assert c.failed_stage == (want["failed_stage"] or ""), name
        assert not (c.transcript or c.extracted_trades or c.mapped_trades or c.audit_answers)
    assert any(c.failed_stage for c in first.calls) and all(c.gpu_ip for c in first.calls)


async def test_full_pages_equal_get_call(start_server, tmp_path):
    h = await start_server()
    bid, _ = await fixture_batch(h, tmp_path)
    got = [c for page in await all_pages(h, bid, 4, full=True) for c in page]
    assert [c.call_id for c in got] == await call_ids(h, bid)
    for c in got:
        one = await h.call("GetCall", pb.GetCallRequest(audio_name=c.audio_name,
                                                        batch_id=bid), VIEW)
        assert c == one, c.audio_name
    assert any(c.transcript for c in got) and any(c.audit_answers for c in got)
    assert any(c.mapped_trades for c in got) and any(c.extracted_trades for c in got)


async def test_status_filters(start_server, tmp_path):
    h = await start_server()
    bid, _ = await fixture_batch(h, tmp_path)
    counts = Counter(r.status for r in await h.rows(t.call, t.call.c.batchId == bid))
    assert len(counts) >= 2, counts
    for status in counts:
        got = await all_pages(h, bid, 2, status)
        assert [c.call_id for p in got for c in p] == await call_ids(h, bid, status), status
    two = sorted(counts)[:2]
    got = await all_pages(h, bid, 2, two[1], two[0], two[1])  # order and repeats ignored
    assert [c.call_id for p in got for c in p] == await call_ids(h, bid, *two)
    # a status no call has: an empty page, no token
    absent = next(s for s in ("TranscriptDone", "AuditDone", "Pending") if s not in counts)
    none = await h.call("ListCalls", LC(batch_id=bid, statuses=[absent]), VIEW)
    assert (list(none.calls), none.next_page_token) == ([], "")
    # the token is tied to the batch and the statuses, not to page_size or full
    r1 = await h.call("ListCalls", LC(batch_id=bid, page_size=2, statuses=two), VIEW)
    r2 = await h.call("ListCalls", LC(batch_id=bid, page_size=5, full=True,
                                      statuses=reversed(two), page_token=r1.next_page_token),
                      VIEW)
    assert r2.calls[0].call_id > r1.calls[-1].call_id
    for req in (LC(batch_id=bid, page_size=2, page_token=r1.next_page_token),
                LC(batch_id=bid, statuses=two[:1], page_token=r1.next_page_token)):
        assert await h.code_of("ListCalls", req, VIEW) == (C.INVALID_ARGUMENT, REFUSED)


async def test_errors(start_server, tmp_path):
    h = await start_server()
    bid, _ = await fixture_batch(h, tmp_path, extra_calls=0)
    other = write_batch_dir(tmp_path / "other", ["o1.wav", "o2.wav"])
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(other)))
    other_bid = (await h.wait_task(ref.task_id)).batch_id
    token = (await h.call("ListCalls", LC(batch_id=bid, page_size=1), VIEW)).next_page_token
    batches_token = (await h.call("ListBatches", pb.ListBatchesRequest(page_size=1),
                                  VIEW)).next_page_token
    assert token and batches_token
    known = "Pending, ShortCall, UnsupportedLanguage, TranscriptDone, AuditDone, Complete, Failed"
    cases = [
        (LC(batch_id=0), C.INVALID_ARGUMENT, "batch_id must be > 0, got 0"),
        (LC(batch_id=-3), C.INVALID_ARGUMENT, "batch_id must be > 0, got -3"),
        (LC(batch_id=bid, page_size=-1), C.INVALID_ARGUMENT, "page_size must be ≥ 0, got -1"),
        (LC(batch_id=bid, statuses=["Complete", "Done"]), C.INVALID_ARGUMENT,
         f"unknown call status 'Done' (known: {known})"),
        (LC(batch_id=bid, statuses=["complete"]), C.INVALID_ARGUMENT,
         f"unknown call status 'complete' (known: {known})"),
        (LC(batch_id=bid, page_token="garbage"), C.INVALID_ARGUMENT, REFUSED),
        (LC(batch_id=bid, page_token="!!not base64!!"), C.INVALID_ARGUMENT, REFUSED),
        (LC(batch_id=bid, page_token="e30"), C.INVALID_ARGUMENT, REFUSED),  # "{}"
        (LC(batch_id=bid, page_token=token[:-3]), C.INVALID_ARGUMENT, REFUSED),
        (LC(batch_id=bid, page_token=batches_token), C.INVALID_ARGUMENT, REFUSED),
        (LC(batch_id=other_bid, page_token=token), C.INVALID_ARGUMENT, REFUSED),
        (LC(batch_id=9999), C.NOT_FOUND, "no batch 9999"),
        (LC(batch_id=9999, full=True, statuses=["Complete"]), C.NOT_FOUND, "no batch 9999"),
    ]
    for req, code, msg in cases:
        assert await h.code_of("ListCalls", req, VIEW) == (code, msg), req
    # the ListBatches token is not taken by ListCalls' parser either way round
    code, msg = await h.code_of("ListBatches", pb.ListBatchesRequest(page_token=token), VIEW)
    assert code == C.INVALID_ARGUMENT and "page_token was not issued" in msg


async def test_auth(start_server, tmp_path):
    h = await start_server()
    d = write_batch_dir(tmp_path / "a", ["a1.wav"])
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    bid = (await h.wait_task(ref.task_id)).batch_id
    for token in (VIEW, "op-secret-token"):
        reply = await h.call("ListCalls", LC(batch_id=bid, full=True), token)
        assert [c.audio_name for c in reply.calls] == ["a1.wav"]
    code, msg = await h.code_of("ListCalls", LC(batch_id=bid), None)
    assert code == C.UNAUTHENTICATED and "authorization" in msg
    assert await h.code_of("ListCalls", LC(batch_id=bid), "wrong-token") == (
        C.UNAUTHENTICATED, "unknown token")


async def test_page_size_default_and_clamp(start_server, tmp_path):
    h = await start_server()
    d = write_batch_dir(tmp_path / "s", ["s1.wav"])
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    bid = (await h.wait_task(ref.task_id)).batch_id

    def add(conn):  # 1,100 more call rows, directly (the pipeline would take minutes)
        conn.execute(sa.insert(t.call), [{"batchId": bid, "audioName": f"x{i:05d}.wav"}
                                         for i in range(1100)])

    await h.app.db.write(add)
    ids = await call_ids(h, bid)
    r = await h.call("ListCalls", LC(batch_id=bid), VIEW)
    assert [c.call_id for c in r.calls] == ids[:100] and r.next_page_token
    r = await h.call("ListCalls", LC(batch_id=bid, page_size=5000), VIEW)
    assert [c.call_id for c in r.calls] == ids[:1000] and r.next_page_token
    r = await h.call("ListCalls", LC(batch_id=bid, page_size=5000, full=True,
                                     page_token=r.next_page_token), VIEW)
    assert [c.call_id for c in r.calls] == ids[1000:] and not r.next_page_token
    assert {c.status for c in r.calls} == {"Pending"} and not r.calls[0].gpu_ip


async def test_reply_size_cap_shortens_pages(start_server, tmp_path, monkeypatch):
    h = await start_server()
    bid, _ = await fixture_batch(h, tmp_path)
    ids = await call_ids(h, bid)
    monkeypatch.setattr(queries, "MAX_PAGE_BYTES", 600)
    got = await all_pages(h, bid, 1000, full=True)
    assert [c.call_id for p in got for c in p] == ids  # no gap, no duplicate
    assert len(got) > 2 and all(p for p in got)  # shorter pages, never an empty one
    monkeypatch.setattr(queries, "MAX_PAGE_BYTES", 1)  # a page still holds one call
    got = await all_pages(h, bid, 1000, full=True)
    assert [len(p) for p in got] == [1] * len(ids)


async def test_one_query_per_table_per_page(start_server, tmp_path):
    h = await start_server()
    bid, _ = await fixture_batch(h, tmp_path)
    n_calls = len(await call_ids(h, bid))
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    tables = ["batchStatus", "call", "fileDistribution", "transcript", "callConversation",
              "tradeAudioMapping", "auditAnswer"]

    def per_table() -> Counter:
        out = Counter()
        for s in statements:
            m = re.search(r'\bFROM\s+"?(\w+)"?', s)
            if m and m.group(1) in tables:
                out[m.group(1)] += 1
        return out

    sa.event.listen(h.app.db.engine, "before_cursor_execute", record)
    try:
        for size, full in ((n_calls, True), (4, True), (4, False)):
            statements.clear()
            got = await all_pages(h, bid, size, full=full)
            n_pages = len(got)
            assert sum(map(len, got)) == n_calls
            want = {"batchStatus": n_pages, "call": n_pages, "fileDistribution": n_pages}
            if full:
                want |= {"transcript": n_pages, "callConversation": n_pages,
                         "tradeAudioMapping": n_pages, "auditAnswer": n_pages}
            assert per_table() == want, (size, full, statements)
    finally:
        sa.event.remove(h.app.db.engine, "before_cursor_execute", record)
