"""ListTradeVerdicts, the verdict counts of GetBatch / ListBatches, and GetEvidence over a
real loopback server, on SQLite and MariaDB: exact replies, keyset paging, the verdict
filter, page tokens refused across filters and RPCs, every error code with its message,
and the evidence stream (header, chunks, manifest) against the stored rows and the
recording's bytes.

The verdict rows are written straight into the store (tests/api/verdict_rows.py) on an
uploaded batch, so these tests read exactly what they wrote whatever decides verdicts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import grpc
import sqlalchemy as sa
import trio
from google.protobuf.timestamp_pb2 import Timestamp

from cofid.store import tables as t
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import VIEW, wav_bytes
from tests.api.verdict_rows import DECIDED, ESC_REASON, EVIDENCE, TRADE_IDS, seed_verdicts

C = grpc.StatusCode
LV = pb.ListTradeVerdictsRequest
REFUSED = "page_token was not issued by this server for these filters"
P1 = wav_bytes(seconds=70.0)  # 1.1 MB: the recording crosses a 1 MiB chunk
P2 = wav_bytes(freq=520)


async def seeded(h) -> tuple[int, dict[str, int], dict[str, int]]:
    """An uploaded batch of p1.wav / p2.wav with the five verdicts; (batch id, trade id ->
    verdict id, audio name -> call id)."""
    up = await h.upload({"p1.wav": P1, "p2.wav": P2})
    assert (await h.wait_task(up.task_id)).state == "completed"
    ids = await h.app.db.write(lambda c: seed_verdicts(c, up.batch_id))
    calls = {r.audioName: r.id for r in await h.rows(t.call, t.call.c.batchId == up.batch_id)}
    return up.batch_id, ids, calls


def decided() -> Timestamp:
    ts = Timestamp()
    ts.FromJsonString(DECIDED.isoformat() + "Z")
    return ts


def field(name, booked, heard, agree, note=""):
    f = pb.VerdictField(field=name, agree=agree, note=note)
    if booked is not None:
        f.booked = booked
    if heard is not None:
        f.heard = heard
    return f


def expected(bid: int, calls: dict[str, int]) -> dict[str, pb.TradeVerdict]:
    ok = [
        field("symbol", "INFY", "INFY", True),
        field("side", "BUY", "BUY", True),
        field("quantity", "100", "100", True),
        field("price", "1500.5", "1500.5", True),
        field("order_type", None, "LIMIT", True, "no order type booked"),
    ]
    bad = list(ok)
    bad[2] = field("quantity", "1000", "100", False)
    segs = [pb.EvidenceSegment(start=e["start"], end=e["end"], text=e["text"]) for e in EVIDENCE]

    def v(tid, audio, verdict, reason, fields=(), evidence=()):
        return pb.TradeVerdict(
            batch_id=bid,
            trade_id=tid,
            audio_name=audio or "",
            call_id=calls.get(audio, 0),
            verdict=verdict,
            reason=reason,
            decided_at=decided(),
            fields=list(fields),
            evidence=list(evidence),
        )

    return {
        "T1": v("T1", "p1.wav", "confirmed", "read back and confirmed", ok, segs),
        "T2": v("T2", "p1.wav", "mismatch", ESC_REASON, bad, segs[:1]),
        "=T3": v("=T3", None, "no_call", '=HYPERLINK("http://x")'),
        "T4": v("T4", "p2.wav", "call_unusable", "the call failed stage stt"),
        "T5": v("T5", "p2.wav", "pending", "+LLM1 has not run"),
    }


async def pages(h, bid: int, size: int, verdicts=()) -> list[list[pb.TradeVerdict]]:
    req = LV(batch_id=bid, page_size=size, verdicts=verdicts)
    out = []
    while True:
        reply = await h.call("ListTradeVerdicts", req, VIEW)
        out.append(list(reply.verdicts))
        if not reply.next_page_token:
            return out
        req = LV(batch_id=bid, page_size=size, verdicts=verdicts, page_token=reply.next_page_token)


async def test_exact_replies_paging_and_filter(start_server, db_url):
    h = await start_server(db_url)
    bid, ids, calls = await seeded(h)
    want = expected(bid, calls)
    reply = await h.call("ListTradeVerdicts", LV(batch_id=bid), VIEW)
    assert list(reply.verdicts) == [want[tid] for tid in TRADE_IDS]
    assert reply.next_page_token == ""
    for size in (1, 2, 4, 5, 6):
        got = await pages(h, bid, size)
        assert [v for p in got for v in p] == [want[tid] for tid in TRADE_IDS], size
        assert all(len(p) == size for p in got[:-1]) and 0 < len(got[-1]) <= size
    # the filter: order and repeats do not matter; the order of the rows stays
    person = ["no_call", "mismatch", "call_unusable", "mismatch"]
    for size in (1, 2, 10):
        got = await pages(h, bid, size, person)
        assert [v.trade_id for p in got for v in p] == ["=T3", "T2", "T4"], size
    assert await pages(h, bid, 10, ["confirmed"]) == [[want["T1"]]]
    # another batch without verdicts lists nothing
    up = await h.upload({"q1.wav": wav_bytes(freq=610)})
    await h.wait_task(up.task_id)
    empty = await h.call("ListTradeVerdicts", LV(batch_id=up.batch_id), VIEW)
    assert list(empty.verdicts) == [] and empty.next_page_token == ""


async def test_paging_survives_recomputed_verdicts(start_server):
    """The pipeline replaces a recomputed verdict's row (a new row id): a page taken
    before and one after still show every trade once, each as it was when read."""
    h = await start_server()
    bid, ids, _calls = await seeded(h)
    tv = t.trade_verdict
    first = await h.call("ListTradeVerdicts", LV(batch_id=bid, page_size=2), VIEW)
    assert [v.trade_id for v in first.verdicts] == ["=T3", "T1"]

    def replace(c):
        for tid in ("T1", "T4"):  # one already listed, one still to come
            row = c.execute(sa.select(tv).where(tv.c.batchId == bid, tv.c.tradeId == tid)).one()
            c.execute(sa.delete(tv).where(tv.c.id == row.id))
            values = {k: v for k, v in row._mapping.items() if k != "id"}
            c.execute(sa.insert(tv).values({**values, "verdict": "mismatch"}))

    await h.app.db.write(replace)
    new_ids = {r.tradeId: r.id for r in await h.rows(tv, tv.c.batchId == bid)}
    assert new_ids["T1"] > max(ids.values()) and new_ids["T4"] > new_ids["T1"]
    rest = await h.call(
        "ListTradeVerdicts", LV(batch_id=bid, page_size=10, page_token=first.next_page_token), VIEW
    )
    assert [(v.trade_id, v.verdict) for v in rest.verdicts] == [
        ("T2", "mismatch"),
        ("T4", "mismatch"),
        ("T5", "pending"),
    ]


async def test_counts_on_batches(start_server, db_url):
    h = await start_server(db_url)
    bid, _ids, _calls = await seeded(h)
    counts = {"confirmed": 1, "mismatch": 1, "no_call": 1, "call_unusable": 1, "pending": 1}
    b = await h.call("GetBatch", pb.GetBatchRequest(batch_id=bid), VIEW)
    assert dict(b.summary.verdict_counts) == counts
    await h.app.db.write(
        lambda c: c.execute(
            sa.update(t.trade_verdict)
            .where(t.trade_verdict.c.tradeId == "T5")
            .values(verdict="mismatch")
        )
    )
    up = await h.upload({"q1.wav": wav_bytes(freq=610)})
    await h.wait_task(up.task_id)
    listed = await h.call("ListBatches", pb.ListBatchesRequest(), VIEW)
    by_id = {s.batch_id: dict(s.verdict_counts) for s in listed.batches}
    assert by_id == {
        up.batch_id: {},
        bid: {"confirmed": 1, "mismatch": 2, "no_call": 1, "call_unusable": 1},
    }
    b = await h.call("GetBatch", pb.GetBatchRequest(batch_id=up.batch_id), VIEW)
    assert dict(b.summary.verdict_counts) == {}


async def test_list_errors(start_server):
    h = await start_server()
    bid, _ids, _calls = await seeded(h)
    first = await h.call("ListTradeVerdicts", LV(batch_id=bid, page_size=2), VIEW)
    token = first.next_page_token
    calls_token = (
        await h.call("ListCalls", pb.ListCallsRequest(batch_id=bid, page_size=1), VIEW)
    ).next_page_token
    assert token and calls_token
    cases = [
        (LV(batch_id=0), C.INVALID_ARGUMENT, "batch_id must be > 0, got 0"),
        (LV(batch_id=-3), C.INVALID_ARGUMENT, "batch_id must be > 0, got -3"),
        (LV(batch_id=bid, page_size=-1), C.INVALID_ARGUMENT, "page_size must be ≥ 0, got -1"),
        (
            LV(batch_id=bid, verdicts=["mismatch", "wrong"]),
            C.INVALID_ARGUMENT,
            "unknown verdict 'wrong' (known: confirmed, mismatch, no_call, call_unusable, pending)",
        ),
        (LV(batch_id=999), C.NOT_FOUND, "no batch 999"),
        (LV(batch_id=bid, page_token=token, verdicts=["mismatch"]), C.INVALID_ARGUMENT, REFUSED),
        (LV(batch_id=bid + 1, page_token=token), C.INVALID_ARGUMENT, REFUSED),
        (LV(batch_id=bid, page_token=calls_token), C.INVALID_ARGUMENT, REFUSED),
        (LV(batch_id=bid, page_token="garbled!"), C.INVALID_ARGUMENT, REFUSED),
    ]
    for req, code, msg in cases:
        assert await h.code_of("ListTradeVerdicts", req, VIEW) == (code, msg), req
    # the token of a ListTradeVerdicts page is no ListCalls token either
    assert await h.code_of(
        "ListCalls", pb.ListCallsRequest(batch_id=bid, page_token=token), VIEW
    ) == (C.INVALID_ARGUMENT, REFUSED)


# ---- GetEvidence -------------------------------------------------------------------------


async def evidence(h, trade_id: str, batch_id: int = 0):
    """(header, {name: bytes}, chunk sizes) of a GetEvidence stream."""

    def run():
        return list(
            h.stub.GetEvidence(
                pb.GetEvidenceRequest(trade_id=trade_id, batch_id=batch_id),
                metadata=(("authorization", f"Bearer {VIEW}"),),
                timeout=30,
            )
        )

    msgs = await trio.to_thread.run_sync(run)
    assert msgs[0].WhichOneof("msg") == "header"
    header = msgs[0].header
    data: dict[int, bytearray] = {i: bytearray() for i in range(len(header.files))}
    sizes = []
    for m in msgs[1:]:
        assert m.WhichOneof("msg") == "data"
        assert m.data.offset == len(data[m.data.file_index])  # in order, no gap
        data[m.data.file_index] += m.data.data
        sizes.append(len(m.data.data))
    return header, {header.files[i].name: bytes(b) for i, b in data.items()}, sizes


async def evidence_code(h, trade_id: str, batch_id: int = 0):
    try:
        await evidence(h, trade_id, batch_id)
    except grpc.RpcError as e:
        return e.code(), e.details()
    return C.OK, ""


async def test_evidence_bundle(start_server, db_url):
    h = await start_server(db_url)
    bid, _ids, calls = await seeded(h)
    header, files, sizes = await evidence(h, "T2")
    names = [
        "recording/p1.wav",
        "transcript.json",
        "extracted_trades.json",
        "booked_trade.json",
        "verdict.json",
        "audit_answers.json",
        "manifest.json",
    ]
    assert [f.name for f in header.files] == names
    assert (header.batch_id, header.trade_id, header.audio_name, header.verdict) == (
        bid,
        "T2",
        "p1.wav",
        "mismatch",
    )
    assert max(sizes) == 1024 * 1024 and len(P1) > 1024 * 1024
    for f in header.files:
        assert len(files[f.name]) == f.size_bytes
        assert hashlib.sha256(files[f.name]).hexdigest() == f.sha256
    assert files["recording/p1.wav"] == P1
    manifest = json.loads(files["manifest.json"])
    assert manifest["format"] == "cofi-evidence/1"
    assert (
        manifest["batch_id"],
        manifest["trade_id"],
        manifest["audio_name"],
        manifest["verdict"],
    ) == (bid, "T2", "p1.wav", "mismatch")
    assert manifest["files"] == [
        {"name": f.name, "size_bytes": f.size_bytes, "sha256": f.sha256} for f in header.files[:-1]
    ]
    rec = manifest["recording"]
    assert rec["name"] == "recording/p1.wav"
    assert rec["sha256"] == hashlib.sha256(P1).hexdigest() and rec["size_bytes"] == len(P1)
    # The digest kept when the upload was taken in: of the bytes the client sent.
    assert rec["sha256_as_first_stored"] == hashlib.sha256(P1).hexdigest()
    assert rec["size_bytes_as_first_stored"] == len(P1)
    assert rec["matches_first_stored"] is True and rec["note"] == ""
    rd = t.recording_digest
    assert [
        (r.batchId, r.audioName, r.sha256, r.sizeBytes)
        for r in await h.rows(rd, rd.c.batchId == bid, order=rd.c.audioName)
    ] == [
        (bid, "p1.wav", hashlib.sha256(P1).hexdigest(), len(P1)),
        (bid, "p2.wav", hashlib.sha256(P2).hexdigest(), len(P2)),
    ]
    verdict = json.loads(files["verdict.json"])
    assert verdict == {
        "batch_id": bid,
        "trade_id": "T2",
        "audio_name": "p1.wav",
        "call_id": calls["p1.wav"],
        "verdict": "mismatch",
        "reason": ESC_REASON,
        "fields": verdict["fields"],
        "evidence": EVIDENCE[:1],
        "decided_at": "2026-01-05T04:30:00.123Z",
    }
    assert verdict["fields"]["quantity"] == {
        "booked": 1000.0,
        "heard": 100.0,
        "agree": False,
        "note": None,
    }
    booked = json.loads(files["booked_trade.json"])
    assert {
        k: booked[k]
        for k in ("trade_id", "symbol", "side", "quantity", "price", "trade_time", "audio_name")
    } == {
        "trade_id": "T2",
        "symbol": "INFY",
        "side": "BUY",
        "quantity": "1000",
        "price": "1500.5",
        "trade_time": "2026-01-05T04:01:00.000Z",
        "audio_name": "p1.wav",
    }
    # the documents hold exactly the call's rows
    call = await h.call("GetCall", pb.GetCallRequest(audio_name="p1.wav", batch_id=bid), VIEW)
    tr = json.loads(files["transcript.json"])
    assert [(s["index"], s["start"], s["end"], s["text"]) for s in tr["segments"]] == [
        (s.index, s.start, s.end, s.text) for s in call.transcript
    ] and call.transcript
    assert tr["call_id"] == calls["p1.wav"] and tr["ivr_trim_offset_s"] == 0.0
    ex = json.loads(files["extracted_trades.json"])
    assert [(x["trade_index"], x["symbol"] or "") for x in ex["trades"]] == [
        (x.trade_index, x.symbol) for x in call.extracted_trades
    ]
    aa = json.loads(files["audit_answers.json"])
    assert [(a["question_id"], a["answer"]) for a in aa["answers"]] == [
        (a.question_id, a.answer) for a in call.audit_answers
    ] and call.audit_answers
    # the same bundle by batch id; the documents are deterministic (manifest aside)
    header2, files2, _ = await evidence(h, "T2", bid)
    assert [f.sha256 for f in header2.files[:-1]] == [f.sha256 for f in header.files[:-1]]


async def test_evidence_says_when_the_recording_changed_since_intake(start_server, db_url):
    """A recording altered on disk after intake still bundles (as it is now), and the
    manifest says it no longer matches the digest kept when it was first stored."""
    h = await start_server(db_url)
    bid, _ids, _calls = await seeded(h)
    fd = t.file_distribution
    [row] = await h.rows(fd, fd.c.batchId == bid, fd.c.file == "p1.wav")
    altered = P1[:-4] + b"\x00\x01\x02\x03"
    assert len(altered) == len(P1) and altered != P1
    Path(row.filePath).write_bytes(altered)
    header, files, _ = await evidence(h, "T2", bid)
    assert files["recording/p1.wav"] == altered
    rec = json.loads(files["manifest.json"])["recording"]
    assert rec["sha256"] == hashlib.sha256(altered).hexdigest()
    assert rec["size_bytes"] == len(altered)
    assert rec["sha256_as_first_stored"] == hashlib.sha256(P1).hexdigest()
    assert rec["size_bytes_as_first_stored"] == len(P1)
    assert rec["matches_first_stored"] is False
    assert rec["note"].startswith("the recording on disk differs")
    # The kept digest is the first one still: nothing rewrote it.
    rd = t.recording_digest
    [kept] = await h.rows(rd, rd.c.batchId == bid, rd.c.audioName == "p1.wav",
                          order=rd.c.audioName)
    assert (kept.sha256, kept.sizeBytes) == (hashlib.sha256(P1).hexdigest(), len(P1))
    # A shorter file: the size differs as well.
    Path(row.filePath).write_bytes(P1[:1000])
    _header, files, _ = await evidence(h, "T2", bid)
    rec = json.loads(files["manifest.json"])["recording"]
    assert (rec["size_bytes"], rec["matches_first_stored"]) == (1000, False)
    # p2 was not touched: it still matches.
    _header, files, _ = await evidence(h, "T4", bid)
    rec = json.loads(files["manifest.json"])["recording"]
    assert rec["matches_first_stored"] is True
    assert rec["sha256_as_first_stored"] == hashlib.sha256(P2).hexdigest() == rec["sha256"]


async def test_evidence_refusals(start_server):
    h = await start_server()
    bid, _ids, _calls = await seeded(h)
    assert await evidence_code(h, "") == (C.INVALID_ARGUMENT, "trade_id is empty")
    assert await evidence_code(h, "x" * 65) == (
        C.INVALID_ARGUMENT,
        "trade_id is longer than 64 characters",
    )
    assert await evidence_code(h, "T1", -1) == (C.INVALID_ARGUMENT, "batch_id must be ≥ 0, got -1")
    assert await evidence_code(h, "T9") == (C.NOT_FOUND, "no verdict for trade 'T9'")
    assert await evidence_code(h, "T1", bid + 5) == (
        C.NOT_FOUND,
        f"no verdict for trade 'T1' in batch {bid + 5}",
    )
    assert await evidence_code(h, "=T3") == (
        C.FAILED_PRECONDITION,
        f"trade '=T3' (batch {bid}) is no_call: it maps to no call with a recording, so "
        'there is no evidence bundle (=HYPERLINK("http://x"))',
    )
    fd = (
        await h.rows(
            t.file_distribution,
            t.file_distribution.c.batchId == bid,
            t.file_distribution.c.file == "p1.wav",
        )
    )[0]
    Path(fd.filePath).unlink()
    assert await evidence_code(h, "T1") == (
        C.FAILED_PRECONDITION,
        f"the recording of trade 'T1', p1.wav (batch {bid}), is no longer on disk at "
        f"{fd.filePath}: no bundle without it",
    )
    # p2's recording is still there: its trades still bundle
    header, files, _ = await evidence(h, "T4")
    assert header.verdict == "call_unusable" and files["recording/p2.wav"] == P2


async def test_pipeline_verdicts_read_back(start_server, db_url, tmp_path):
    """A batch whose verdicts the pipeline decided: ListTradeVerdicts and the counts say
    exactly what tradeVerdict holds, and every trade with a recorded call bundles."""
    from tests.api.test_list_calls import fixture_batch

    h = await start_server(db_url)
    bid, _expected = await fixture_batch(h, tmp_path, extra_calls=2)
    tv = t.trade_verdict
    rows = sorted(await h.rows(tv, tv.c.batchId == bid), key=lambda r: r.tradeId.encode())
    assert rows  # the fixture books trades: mapped, unmapped, on a short call
    got = [v for p in await pages(h, bid, 3) for v in p]
    assert [(v.trade_id, v.verdict, v.audio_name, v.call_id, v.reason) for v in got] == [
        (r.tradeId, r.verdict, r.audioName or "", r.callId or 0, r.reason or "") for r in rows
    ]
    for v, r in zip(got, rows, strict=True):
        stored = r.fields if isinstance(r.fields, dict) else json.loads(r.fields or "null")
        assert [f.field for f in v.fields] == [
            n for n in ("symbol", "side", "quantity", "price", "order_type") if n in (stored or {})
        ]
        assert [f.agree for f in v.fields] == [stored[f.field]["agree"] for f in v.fields]
        evidence_rows = (
            r.evidence if isinstance(r.evidence, list) else json.loads(r.evidence or "[]")
        )
        assert [(s.start, s.end, s.text) for s in v.evidence] == [
            (e["start"], e["end"], e["text"]) for e in evidence_rows or []
        ]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    b = await h.call("GetBatch", pb.GetBatchRequest(batch_id=bid), VIEW)
    assert dict(b.summary.verdict_counts) == counts
    fd = t.file_distribution
    paths = {r.file: r.filePath for r in await h.rows(fd, fd.c.batchId == bid)}
    for r in rows:
        if r.audioName is None:
            assert (await evidence_code(h, r.tradeId))[0] == C.FAILED_PRECONDITION
            continue
        header, files, _ = await evidence(h, r.tradeId, bid)
        assert header.verdict == r.verdict and header.audio_name == r.audioName
        recording = Path(paths[r.audioName]).read_bytes()
        assert files[f"recording/{r.audioName}"] == recording
        manifest = json.loads(files["manifest.json"])
        assert manifest["recording"]["sha256"] == hashlib.sha256(recording).hexdigest()
        # A batch directory's recording: hashed at distribution, unchanged since.
        assert manifest["recording"]["sha256_as_first_stored"] == manifest["recording"]["sha256"]
        assert manifest["recording"]["matches_first_stored"] is True
