"""UploadAudit and Reaudit over the control plane, checked against the seed's rows
(sections 2 and 3), on SQLite and on MariaDB."""

from __future__ import annotations

import grpc
import sqlalchemy as sa
import trio

from cofid.service.reservations import CallClaim, Claim
from cofid.store import tables as t
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import VIEW, seed_counts_query, upload_messages, wav_bytes

C = grpc.StatusCode


async def test_upload_reaches_completed_with_seed_rows(start_server, db_url):
    h = await start_server(db_url=db_url)
    files = {"u1.wav": wav_bytes(0.5), "u2 call.wav": wav_bytes(0.7, freq=500),
             "ग्राहक_3.wav": wav_bytes(0.3)}
    reply = await h.upload(files, chunk=1000)
    assert reply.status == "queued" and reply.batch_id > 0
    assert list(reply.stored_names) == list(files)
    stored = h.cfg.uploads_dir / reply.task_id
    assert sorted(p.name for p in stored.iterdir()) == sorted(files)
    task = await h.wait_task(reply.task_id)
    assert task.state == "completed" and task.kind == "upload"
    assert [s.stage for s in task.stages] == ["lid", "stt", "llm1", "llm2"]
    assert all(s.done == 3 for s in task.stages)
    bs = (await h.rows(t.batch_status, t.batch_status.c.id == reply.batch_id))[0]
    assert (bs.source, bs.status, bs.totalFiles, bs.dbInsertionStatus) == (
        "upload", "Completed", 3, "Complete")
    assert (bs.lidStatus, bs.sttStatus, bs.llm1Status, bs.llm2Status) == ("Complete",) * 4
    assert (bs.denoiseStatus, bs.ivrStatus, bs.triagingStatus) == ("Pending",) * 3
    fds = await h.rows(t.file_distribution, t.file_distribution.c.batchId == reply.batch_id)
    assert sorted(f.file for f in fds) == sorted(files)
    assert all((f.lidDone, f.sttDone, f.llm1Done, f.llm2Done, f.denoiseDone, f.ivrDone)
               == (1, 1, 1, 1, 0, 0) for f in fds)
    calls = await h.rows(t.call, t.call.c.batchId == reply.batch_id)
    assert {c.status for c in calls} == {"Complete"} and {c.lang for c in calls} == {"en"}
    n = await h.query(seed_counts_query(reply.batch_id))
    assert n["lid"] == 3 and n["transcript"] > 0 and n["conversation"] > 0 and n["answer"] > 0
    # two concurrent uploads get distinct batch numbers
    replies = []

    async def up(name):
        replies.append(await h.upload({name: wav_bytes()}))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(up, "c1.wav")
        nursery.start_soon(up, "c2.wav")
    numbers = await h.query(lambda c: [r.batchNumber for r in c.execute(
        sa.select(t.batch_status.c.batchNumber).where(
            t.batch_status.c.id.in_([r.batch_id for r in replies])))])
    assert len(set(numbers)) == 2 and bs.batchNumber not in numbers
    for r in replies:
        assert (await h.wait_task(r.task_id)).state == "completed"
    # the same name again: ALREADY_EXISTS unless replace
    code, msg = await _upload_code(h, {"u1.wav": wav_bytes()})
    assert code == C.ALREADY_EXISTS and "uploaded before: u1.wav" in msg
    again = await h.upload({"u1.wav": wav_bytes()}, replace=True)
    assert again.batch_id not in (reply.batch_id, *[r.batch_id for r in replies])
    assert (await h.wait_task(again.task_id)).state == "completed"


async def _upload_code(h, files=None, msgs=None, **kw):
    try:
        await h.call("UploadAudit", iter(msgs if msgs is not None
                                         else upload_messages(files, **kw)))
    except grpc.RpcError as e:
        return e.code(), e.details()
    return C.OK, ""


async def test_upload_errors(start_server):
    h = await start_server(grpc_extra={"max_upload_files": 3, "max_file_bytes": 50_000,
                                       "max_upload_bytes": 60_000})
    good = wav_bytes(0.5)  # 8 kB
    hdr = upload_messages({"a.wav": good})[0]
    chunk = pb.UploadRequest(chunk=pb.UploadChunk(file_index=0, data=good, offset=0))
    cases = [
        ({"msgs": [chunk]}, C.INVALID_ARGUMENT, "the first message must be a header"),
        ({"msgs": [pb.UploadRequest(header=pb.UploadHeader())]}, C.INVALID_ARGUMENT,
         "lists no files"),
        ({"files": {"../x.wav": good}}, C.INVALID_ARGUMENT, "path separator"),
        ({"files": {"..x.wav": good}}, C.INVALID_ARGUMENT, "contains '..'"),
        ({"files": {".hidden.wav": good}}, C.INVALID_ARGUMENT, "hidden"),
        ({"files": {"a$b.wav": good}}, C.INVALID_ARGUMENT, "contains '$'"),
        ({"files": {"notes.txt": good}}, C.INVALID_ARGUMENT, "no audio extension"),
        ({"files": {"": good}}, C.INVALID_ARGUMENT, "empty file name"),
        ({"msgs": [hdr, hdr]}, C.INVALID_ARGUMENT, "a second header"),
        ({"msgs": [hdr, pb.UploadRequest(chunk=pb.UploadChunk(file_index=5, data=b"x"))]},
         C.INVALID_ARGUMENT, "unknown file_index 5"),
        ({"msgs": [hdr, pb.UploadRequest(chunk=pb.UploadChunk(file_index=0, data=b"x",
                                                              offset=9))]},
         C.INVALID_ARGUMENT, "offset 9 does not continue"),
        ({"msgs": [hdr]}, C.INVALID_ARGUMENT, "a.wav: received 0 bytes"),
        ({"files": {"a.wav": good}, "header_extra": {}, "sha": True}, C.OK, ""),
        ({"files": {f"f{i}.wav": good for i in range(4)}}, C.RESOURCE_EXHAUSTED,
         "4 files in one upload; the limit is 3"),
        ({"files": {"big.wav": wav_bytes(4.0)}}, C.RESOURCE_EXHAUSTED,
         "over the per-file limit of 50000"),
        ({"files": {f"m{i}.wav": wav_bytes(1.5) for i in range(3)}}, C.RESOURCE_EXHAUSTED,
         "over the limit of 60000"),
        ({"files": {"bad.wav": b"RIFF....not really a wav file"}}, C.INVALID_ARGUMENT,
         "bad.wav: not decodable audio"),
        ({"files": {"p.wav": good}, "header_extra": {"process_id": 42}}, C.INVALID_ARGUMENT,
         "no audit question set for process_id=42"),
    ]
    for kw, code, text in cases:
        got, msg = await _upload_code(h, **kw)
        assert got == code, (kw.get("files", "msgs"), got, msg)
        assert text in msg, (text, msg)
    # sha256 mismatch and malformed sha256
    m = upload_messages({"s.wav": good})
    m[0].header.files[0].sha256 = "0" * 64
    code, msg = await _upload_code(h, msgs=m)
    assert code == C.INVALID_ARGUMENT and "s.wav: sha256 mismatch" in msg
    m[0].header.files[0].sha256 = "xyz"
    code, msg = await _upload_code(h, msgs=m)
    assert code == C.INVALID_ARGUMENT and "sha256 is not 64 hex digits" in msg
    # size mismatch: more bytes than declared
    m = upload_messages({"z.wav": good})
    m[0].header.files[0].size_bytes = 100
    code, msg = await _upload_code(h, msgs=m)
    assert code == C.INVALID_ARGUMENT and "more bytes than size_bytes (100)" in msg
    # nothing of the failed uploads was kept: only the one good upload's directory
    assert len(list(h.cfg.uploads_dir.iterdir())) == 1


STAGE_SETS = [["lid"], ["stt"], ["llm1"], ["llm2"], ["stt", "llm2"], ["llm2", "lid", "stt", "llm1"]]


async def test_reaudit_each_stage_subset(start_server, db_url):
    h = await start_server(db_url=db_url)
    names = ["r1.wav", "r2.wav", "r3.wav"]
    up = await h.upload({n: wav_bytes() for n in names})
    assert (await h.wait_task(up.task_id)).state == "completed"
    bid = up.batch_id
    before = await h.query(seed_counts_query(bid))
    bs_before = (await h.rows(t.batch_status, t.batch_status.c.id == bid))[0]
    for stages in STAGE_SETS:
        fake_before = dict(h.fake.calls)
        # stamp the rows: a row re-inserted by the reaudit no longer carries the stamp
        await h.app.db.write(lambda c: (c.execute(sa.update(t.transcript).values(text="OLD")),
                                        c.execute(sa.update(t.audit_answer).values(answer="OLD"))))
        reply = await h.call("Reaudit", pb.ReauditRequest(
            audio_names=["r1.wav", "r2.wav", "ghost.wav"], stages=stages))
        assert list(reply.unknown_audio_names) == ["ghost.wav"] and reply.matched_calls == 2
        task = await h.wait_task(reply.task_id)
        assert task.state == "completed", (stages, task)
        order = [s for s in ("lid", "stt", "llm1", "llm2") if s in stages]
        assert [s.stage for s in task.stages] == order
        assert all(s.done == 2 for s in task.stages)
        # exactly the chosen stages ran, for the two calls
        ran = {k: h.fake.calls.get(k, 0) - fake_before.get(k, 0) for k in ("lid", "stt")}
        assert ran["lid"] == (2 if "lid" in stages else 0)
        assert ran["stt"] == (2 if "stt" in stages else 0)
        after = await h.query(seed_counts_query(bid))
        assert after["call"] == after["fd"] == 3
        assert after["lid"] == before["lid"] + (2 if "lid" in stages else 0)
        assert after["transcript"] == before["transcript"]
        assert after["answer"] == before["answer"]
        calls = {c.audioName: c for c in await h.rows(t.call, t.call.c.batchId == bid)}
        touched = {calls["r1.wav"].id, calls["r2.wav"].id}
        tr_calls = {r.callId for r in await h.rows(t.transcript, t.transcript.c.text != "OLD")}
        ans_calls = {r.callId for r in await h.rows(t.audit_answer,
                                                    t.audit_answer.c.answer != "OLD")}
        assert tr_calls == (touched if "stt" in stages else set()), stages
        assert ans_calls == (touched if "llm2" in stages else set()), stages
        assert {c.status for c in calls.values()} == {"Complete"} or "llm2" not in stages
        if "llm2" in stages:
            assert all(c.status == "Complete" for c in calls.values())
        else:  # the earliest reset status, moved on by the chosen stages only
            assert calls["r3.wav"].status == "Complete"
        fds = await h.rows(t.file_distribution, t.file_distribution.c.batchId == bid)
        assert all((f.lidDone, f.sttDone, f.llm1Done, f.llm2Done) == (1, 1, 1, 1) for f in fds)
        bs = (await h.rows(t.batch_status, t.batch_status.c.id == bid))[0]
        assert bs._mapping == bs_before._mapping  # batchStatus unchanged
        before = after
    # NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION
    code, msg = await h.code_of("Reaudit", pb.ReauditRequest(audio_names=["nope.wav"],
                                                             stages=["lid"]))
    assert code == C.NOT_FOUND and "nope.wav" in msg
    code, msg = await h.code_of("Reaudit", pb.ReauditRequest(audio_names=["r1.wav"],
                                                             stages=["ivr"]))
    assert code == C.INVALID_ARGUMENT and "ivr" in msg
    code, msg = await h.code_of("Reaudit", pb.ReauditRequest(audio_names=[], stages=["lid"]))
    assert code == C.INVALID_ARGUMENT
    held = CallClaim(Claim("t-1", "reaudit"), bid, "r1.wav")
    h.app.reservations.calls[calls["r1.wav"].id] = held
    code, msg = await h.code_of("Reaudit", pb.ReauditRequest(audio_names=["r1.wav"],
                                                             stages=["stt"]))
    assert code == C.FAILED_PRECONDITION
    assert msg == "calls are being processed by another task: r1.wav (reaudit task t-1)"
    del h.app.reservations.calls[calls["r1.wav"].id]
    g = await h.call("GetCall", pb.GetCallRequest(audio_name="r1.wav"), VIEW)
    assert g.status == "Complete" and g.transcript and g.audit_answers
