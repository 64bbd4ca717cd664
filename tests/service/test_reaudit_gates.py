"""Issue 15.9: a reaudit keeps every rule a batch applies (cofid.domain.reaudit rules
10–12), on a real daemon (serve_main, fake GPUs), on SQLite and on MariaDB with the server
zone at +05:30 (tests/conftest.py's zoned_db_url).

The fixture batch (cofid.testing.batches) has a 2.5 s call with a trade (ShortCall), a
French call without a trade (UnsupportedLanguage, 'No trade data found' answers from
triaging) and an English call without a trade (Complete: triaging's answers and the
model's)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from cofid.domain.model import NO_TRADE_DATA_ANSWER
from cofid.store import tables as t
from cofid.testing.batches import write_fixture_batch
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import VIEW

SHORT, FRENCH, NO_TRADE = "call_04_short.wav", "call_05_fr.wav", "call_02_long.wav"
GATE = "the STT gate closed this call (no transcript); choose stt to pass it through the gate again"


async def _batch(h, tmp_path) -> int:
    d = tmp_path / "fixture"
    write_fixture_batch(d)
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    task = await h.wait_task(ref.task_id, timeout=60)
    assert task.state == "completed", task
    return task.batch_id


async def _state(h, bid: int) -> dict:
    """Per call: status, answers (question, answer, source), transcript rows."""

    def q(c):
        out = {}
        calls = c.execute(sa.select(t.call).where(t.call.c.batchId == bid)).all()
        for call in calls:
            aa = t.audit_answer
            answers = [
                tuple(r)
                for r in c.execute(
                    sa.select(aa.c.questionId, aa.c.answer, aa.c.source)
                    .where(aa.c.callId == call.id)
                    .order_by(aa.c.questionOrder)
                )
            ]
            segs = c.execute(
                sa.select(sa.func.count())
                .select_from(t.transcript)
                .where(t.transcript.c.callId == call.id)
            ).scalar()
            out[call.audioName] = {
                "id": call.id,
                "status": call.status,
                "answers": answers,
                "transcript": segs,
            }
        return out

    return await h.query(q)


async def _reaudit_events(h, task_id: str) -> list[tuple]:
    def q(c):
        bel = t.batch_execution_log
        rows = c.execute(
            sa.select(bel).where(bel.c.batchId == 0, bel.c.stage == "reaudit").order_by(bel.c.id)
        ).all()
        out = []
        for r in rows:
            meta = r.metadata if isinstance(r.metadata, dict) else json.loads(r.metadata)
            if meta.get("task_id") == task_id:
                out.append((r.eventType, r.status, meta))
        return out

    return await h.query(q)


async def test_llm2_reaudit_leaves_gated_calls_alone_and_keeps_no_trade_answers(
    start_server, tmp_path, zoned_db_url
):
    h = await start_server(zoned_db_url)
    bid = await _batch(h, tmp_path)
    before = await _state(h, bid)
    assert before[SHORT]["status"] == "ShortCall" and before[SHORT]["answers"] == []
    assert before[FRENCH]["status"] == "UnsupportedLanguage"
    no_trade = [(q, a, s) for q, a, s in before[FRENCH]["answers"]]
    assert [a for _, a, _ in no_trade] == [NO_TRADE_DATA_ANSWER] * 3
    assert {s for _, _, s in no_trade} == {"triaging"}
    assert before[NO_TRADE]["answers"][:3] == no_trade  # the same three questions
    chats = h.fake.calls.get("chat", 0)

    reply = await h.call(
        "Reaudit", pb.ReauditRequest(audio_names=[SHORT, FRENCH, NO_TRADE], stages=["llm2"])
    )
    assert reply.matched_calls == 3 and list(reply.unknown_audio_names) == []
    left = [(a.audio_name, a.batch_id, a.reason) for a in reply.left_alone]
    assert left == [
        (SHORT, bid, f"ShortCall: {GATE}"),
        (FRENCH, bid, f"UnsupportedLanguage: {GATE}"),
    ]
    task = await h.wait_task(reply.task_id)
    assert task.state == "completed", task
    assert [(a.audio_name, a.batch_id, a.reason) for a in task.left_alone] == left
    assert [(s.stage, s.total, s.done, s.failed, s.skipped) for s in task.stages] == [
        ("llm2", 1, 1, 0, 0)
    ]
    assert h.fake.calls.get("chat", 0) == chats + 1  # the English call only

    after = await _state(h, bid)
    assert after[SHORT] == before[SHORT]  # ShortCall, no answers made from no transcript
    assert after[FRENCH] == before[FRENCH]  # its 'No trade data found' answers kept
    assert after[NO_TRADE]["status"] == "Complete"
    assert after[NO_TRADE]["answers"] == before[NO_TRADE]["answers"]
    events = await _reaudit_events(h, reply.task_id)
    assert [(e, s) for e, s, _ in events] == [
        ("info", "processing"),
        ("info", "success"),
        ("info", "success"),
    ]
    assert events[0][2]["left_alone"] == [
        {"audio_name": n, "batch_id": b, "reason": r} for n, b, r in left
    ]
    assert events[0][2]["calls"] == 1
    assert events[1][2]["answers_deleted"] == len(before[NO_TRADE]["answers"]) - 3
    assert events[2][2] == {
        "task_id": reply.task_id,
        "completed": True,
        "failed_files": 0,
        "left_alone": 2,
    }


async def test_stt_reaudit_passes_gated_calls_through_the_gate_again(
    start_server, tmp_path, zoned_db_url
):
    h = await start_server(zoned_db_url)
    bid = await _batch(h, tmp_path)
    before = await _state(h, bid)
    stt, chats = h.fake.calls.get("stt", 0), h.fake.calls.get("chat", 0)
    reply = await h.call(
        "Reaudit", pb.ReauditRequest(audio_names=[SHORT, FRENCH], stages=["stt", "llm2"])
    )
    assert reply.matched_calls == 2 and list(reply.left_alone) == []
    task = await h.wait_task(reply.task_id)
    assert task.state == "completed", task
    # The gate closed both again: no transcription, no model answers.
    assert h.fake.calls.get("stt", 0) == stt and h.fake.calls.get("chat", 0) == chats
    assert [(s.stage, s.total, s.done, s.skipped) for s in task.stages] == [
        ("stt", 2, 0, 2),
        ("llm2", 2, 0, 2),
    ]
    after = await _state(h, bid)
    assert after == before  # statuses, triaging's answers and (no) transcripts as they were


async def test_reaudit_leaves_never_transcribed_calls_alone(
    start_server, tmp_path, zoned_db_url
):
    """The corrupt call failed its first stage: llm1/llm2 without stt have nothing to
    read; stt without lid has no language."""
    h = await start_server(zoned_db_url)
    bid = await _batch(h, tmp_path)
    corrupt = "call_06_corrupt.wav"
    reply = await h.call(
        "Reaudit", pb.ReauditRequest(audio_names=[corrupt], stages=["llm1", "llm2"])
    )
    assert [(a.audio_name, a.batch_id, a.reason) for a in reply.left_alone] == [
        (corrupt, bid, "never transcribed (stt has not run for it); choose stt too")
    ]
    assert (await h.wait_task(reply.task_id)).state == "completed"
    reply = await h.call("Reaudit", pb.ReauditRequest(audio_names=[corrupt], stages=["stt"]))
    assert [a.reason for a in reply.left_alone] == [
        "language never identified (lid has not run for it); choose lid too"
    ]
    task = await h.call("GetTask", pb.GetTaskRequest(task_id=reply.task_id), VIEW)
    assert [a.audio_name for a in task.left_alone] == [corrupt]
    assert (await h.wait_task(reply.task_id)).state == "completed"
