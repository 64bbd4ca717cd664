"""The batch plan end to end, in process, on the fake backends: the exact table contents.

One fixture batch (cofid.testing.batches) runs through every stage on SQLite and on
MariaDB; each seed table is then compared row for row with what the seed's Steps 1–13
say it must hold. A second run of the same directory must change nothing.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from cofid.backends.fake import default_script
from cofid.config import parse_config
from cofid.domain.model import FILE_STAGES, NO_TRADE_DATA_ANSWER
from cofid.domain.questions import TRADE_QUESTION_COUNT, default_question_set
from cofid.service.app import open_app
from cofid.store import tables as t
from cofid.testing.batches import fake_config, write_fixture_batch
from cofid.testing.dbdump import diff_dumps, normalized_dump

QS = default_question_set()
AUDIO_STAGES = ("denoise", "ivr", "lid", "stt")  # the stages the fake fails for *_flaky*
BATCH_STEPS = ("file_distribution", "callmetadata", "trademetadata", "triaging")


async def run_dir(db_url: str, data_dir: Path, batch_dir: Path) -> int:
    cfg = parse_config(fake_config(db_url, data_dir))
    async with open_app(cfg) as app:
        batch_id = await app.prepare_batch(batch_dir)
        await app.run_batch(batch_id)
    return batch_id


def by(rows, *keys):
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


def drop(row: dict, *keys: str) -> dict:
    return {k: v for k, v in row.items() if k not in keys}


def raw_rows(url: str, table: sa.Table) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(table))]
    finally:
        engine.dispose()


async def test_batch_tables_are_exactly_the_seed_steps(db_url, tmp_path):
    batch_dir = tmp_path / "batch"
    exp = write_fixture_batch(batch_dir)
    await run_dir(db_url, tmp_path / "data", batch_dir)
    d = normalized_dump(db_url)
    calls = exp["calls"]
    names = exp["files"]
    bkey = f"{date.today().isoformat()}#1"

    def ck(name: str) -> str:
        return f"{bkey}/{name}"

    # batchStatus: Completed, every stage Complete, both CSV flags, the files counted.
    source_dir = str(batch_dir.resolve())
    assert d["batchStatus"] == [{
        "batchDate": date.today().isoformat(), "batchNumber": 1, "status": "Completed",
        "dbInsertionStatus": "Complete", "callmetadataStatus": 1, "trademetadataStatus": 1,
        "denoiseStatus": "Complete", "ivrStatus": "Complete", "lidStatus": "Complete",
        "triagingStatus": "Complete", "sttStatus": "Complete", "llm1Status": "Complete",
        "llm2Status": "Complete", "totalFiles": 7, "source": "batch", "sourceDir": source_dir,
        "sourceKey": hashlib.sha256(source_dir.encode()).hexdigest(), "processId": 1,
        "categoryMappingId": 1,
        "pipeline": {"callmetadata": True, "trademetadata": True, "denoise": True, "ivr": True,
                     "triaging": True, "llm1": True, "llm2": True},
    }]
    [bs_raw] = raw_rows(db_url, t.batch_status)
    assert bs_raw["completedAt"] is not None

    # fileDistribution: the done flags of each file; sttDone stays 0 for ShortCall and
    # UnsupportedLanguage; the corrupt file stops at its first stage with the reason.
    fd = by(d["fileDistribution"], "file")
    assert sorted(fd) == names
    for name in names:
        c = calls[name]
        corrupt = c["failed_stage"] is not None
        audio = 0 if corrupt else 1
        llm = int(c["llm_done"])
        assert fd[name] == {
            "batchId": bkey, "file": name, "gpuIp": "cpu",
            "denoiseDone": audio, "ivrDone": audio, "lidDone": audio,
            "sttDone": int(c["stt_done"]), "llm1Done": llm, "llm2Done": llm,
            "filePath": str((batch_dir / name).resolve()),
            "ivrTrimOffset": None if corrupt else default_script(name).ivr_offset_s,
            "failedStage": c["failed_stage"],
            "failureReason": (f"{name}: cannot decode audio (not a WAV/FLAC/OGG/MP3 stream)"
                              if corrupt else None),
        }, name
    assert fd["call_04_short.wav"]["sttDone"] == 0
    assert fd["call_05_fr.wav"]["sttDone"] == 0
    assert fd["call_06_corrupt.wav"]["failedStage"] == "denoise"

    # call: status, language and duration from LID (Step 8) and the STT gate (Step 10).
    assert by(d["call"], "audioName") == {
        name: {"batchId": bkey, "audioName": name, "status": calls[name]["status"],
               "lang": calls[name]["lang"], "languageId": calls[name]["languageId"],
               "audioDuration": round(calls[name]["audioDuration"], 4), "processId": 1,
               "categoryMappingId": 1}
        for name in names
    }
    statuses = Counter(r["status"] for r in d["call"])
    assert statuses == {"Complete": 4, "ShortCall": 1, "UnsupportedLanguage": 1, "Failed": 1}
    assert by(d["call"], "audioName")["call_03_hi_long.wav"]["lang"] == "hi"

    # callMetadata / tradeMetadata: the CSV rows; triaging fills tradeMetadata.audioName.
    assert by(d["callMetadata"], "audioName") == {
        n: {"batchId": bkey, "audioName": n, **row, "extra": None}
        for n, row in exp["call_metadata"].items()
    }
    assert by(d["tradeMetadata"], "tradeId") == {
        tid: {"batchId": bkey, "tradeId": tid, **row, "extra": None}
        for tid, row in exp["trade_metadata"].items()
    }
    assert by(d["tradeMetadata"], "tradeId")["T900"]["audioName"] is None
    assert by(d["tradeMetadata"], "tradeId")["T901"]["audioName"] is None

    # tradeAudioMapping: one row per mapped trade, with the call and the distance.
    assert d["tradeAudioMapping"] == sorted(
        ({"batchId": bkey, "tradeId": tid, "audioName": a, "callId": ck(a),
          "distanceSeconds": dist} for tid, (a, dist) in exp["mappings"].items()),
        key=lambda r: r["tradeId"],
    )

    # lidStatus: one row per file that reached LID (all but the corrupt one), with the
    # detector's own code beside the label ("fr" for the French call labelled other).
    assert by(d["lidStatus"], "audioName") == {
        n: {"batchId": bkey, "callId": ck(n), "audioName": n, "language": calls[n]["lang"],
            "confidence": 0.9, "audioDuration": round(calls[n]["audioDuration"], 4),
            "detectedLanguage": default_script(n).detected}
        for n in names if calls[n]["lid_row"]
    }

    # transcript: segments 0..n-1 for each transcribed call, in the call's language.
    segs: dict[str, list[int]] = {}
    for r in d["transcript"]:
        segs.setdefault(r["callId"], []).append(r["segmentIndex"])
        assert r["language"] == calls[r["callId"].split("/", 1)[1]]["lang"]
    assert {k: sorted(v) for k, v in segs.items()} == {
        ck(n): list(range(calls[n]["segments"])) for n in names if calls[n]["segments"]
    }
    assert len(d["transcript"]) == exp["transcript_rows"]

    # callConversation: the rules engine reads one INFY buy from each fake transcript.
    assert d["callConversation"] == sorted(
        ({"callId": ck(n), "tradeIndex": 0, "tradeId": None, "symbol": "INFY", "side": "BUY",
          "quantity": str(100 + (len(n) % 9) * 50), "price": None, "orderType": "MARKET",
          "evidence": f"I want to buy {100 + (len(n) % 9) * 50} shares of INFY at market price."}
         for n in names if calls[n]["llm_done"]),
        key=lambda r: r["callId"],
    )

    # auditAnswer: 'No trade data found' (source triaging) for the first three questions of
    # every call without a trade; one row per question for every call LLM2 audited.
    answers: dict[str, dict[str, dict]] = {}
    for r in d["auditAnswer"]:
        answers.setdefault(r["callId"].split("/", 1)[1], {})[r["questionId"]] = r
    expected_answered = {}
    for n in names:
        c = calls[n]
        if c["llm_done"]:
            expected_answered[n] = set(QS.ids)
        elif not c["trades"]:
            expected_answered[n] = set(QS.ids[:TRADE_QUESTION_COUNT])
    assert {n: set(a) for n, a in answers.items()} == expected_answered
    for n, a in answers.items():
        no_trade = not calls[n]["trades"]
        for i, q in enumerate(QS.questions):
            if q.id not in a:
                continue
            row = a[q.id]
            assert row["questionOrder"] == i + 1 and row["question"] == q.text
            if i < TRADE_QUESTION_COUNT and no_trade:
                assert (row["answer"], row["source"]) == (NO_TRADE_DATA_ANSWER, "triaging"), n
            else:
                assert row["source"] == "llm2" and row["answer"] != NO_TRADE_DATA_ANSWER, n
    assert "call_04_short.wav" not in answers  # short, with a trade: nothing to answer

    # processing_logs: a success row per file-stage that called a model (attempt 2 for the
    # flaky call's audio stages), the failed row with the reason; gated STT logs nothing.
    expected_logs = []
    for n in names:
        c = calls[n]
        if c["failed_stage"]:
            expected_logs.append((n, "denoise", "failed", 1,
                                  f"{n}: cannot decode audio (not a WAV/FLAC/OGG/MP3 stream)"))
            continue
        ran = ["denoise", "ivr", "lid"] + (["stt", "llm1", "llm2"] if c["stt_done"] else [])
        for s in ran:
            attempt = 2 if n in exp["flaky"] and s in AUDIO_STAGES else 1
            expected_logs.append((n, s, "success", attempt, None))
    got_logs = [(r["file_name"], r["stage_name"], r["status"], r["attempt"], r["error_message"])
                for r in d["processing_logs"]]
    assert sorted(got_logs) == sorted(expected_logs)
    assert {r["batch_id"] for r in d["processing_logs"]} == {bkey}
    # ...and one retry row per audio stage of the flaky call (not in the dump: see dbdump).
    retries = sorted((r["file_name"], r["stage_name"], r["attempt"])
                     for r in raw_rows(db_url, t.processing_logs) if r["status"] == "retry")
    assert retries == sorted(("call_07_flaky.wav", s, 1) for s in AUDIO_STAGES)

    # batchExecutionLog: a stage_complete per stage, a file_complete per file-stage result
    # (gated STT included), an error event for the failed file-stage.
    events = Counter((r["stage"], r["eventType"], r["status"], r["fileName"])
                     for r in d["batchExecutionLog"])
    expected_events: Counter = Counter()
    # stage_complete is 'partial' for denoise, where the corrupt file failed
    # (cofid.domain.events.stage_outcome); distribution reports each file (issue 15).
    for s in (*BATCH_STEPS, *(st.value for st in FILE_STAGES)):
        expected_events[(s, "stage_complete", "partial" if s == "denoise" else "success",
                         None)] += 1
    for n in names:
        c = calls[n]
        expected_events[("file_distribution", "file_complete", "success", n)] += 1
        if c["failed_stage"]:
            expected_events[("denoise", "error", "failed", n)] += 1
            continue
        for s in ["denoise", "ivr", "lid", "stt"] + (["llm1", "llm2"] if c["llm_done"] else []):
            expected_events[(s, "file_complete", "success", n)] += 1
    assert events == expected_events, (events - expected_events, expected_events - events)
    raw_events = raw_rows(db_url, t.batch_execution_log)
    starts = Counter(r["stage"] for r in raw_events if r["eventType"] == "stage_start")
    # Once per stage, uninterrupted; distribution's too (issue 15: Step 2 is visible).
    assert starts == Counter(["file_distribution", *(s.value for s in FILE_STAGES)])
    ids = [r["id"] for r in raw_events]
    # AUTO_INCREMENT, one group at a time: 1, 2, 3, ... when no other writer is there.
    assert sorted(ids) == list(range(1, len(ids) + 1))
    info = [r for r in raw_events if r["eventType"] == "info"]
    assert {(r["stage"], r["status"]) for r in info} == {("pipeline", "success")}
    # batchStatus.status walked the seed's values in the seed's order, one event each.
    walk = [r["metadata"]["batch_status"] for r in sorted(info, key=lambda r: r["id"])]
    assert walk == [
        "dbInsertDone", "denoiseDone", "ivrDone", "lidDone", "triagingDone", "sttDone",
        "llm1Done", "llm2Done", "Completed"], walk


async def test_running_the_same_directory_again_changes_nothing(db_url, tmp_path):
    batch_dir = tmp_path / "batch"
    write_fixture_batch(batch_dir)
    first = await run_dir(db_url, tmp_path / "data", batch_dir)
    before = normalized_dump(db_url)
    again = await run_dir(db_url, tmp_path / "data", batch_dir)
    after = normalized_dump(db_url)
    assert again == first
    # The results: every table but the event log is untouched.
    results = [n for n in before if n != "batchExecutionLog"]
    assert {n: after[n] for n in results} == {n: before[n] for n in results}, "\n".join(
        diff_dumps({n: before[n] for n in results}, {n: after[n] for n in results}))
    # The event log: a run that found nothing to do must not log stages completing again
    # (before f67c0f5 Engine._stage_finished wrote stage_complete for every stage again).
    assert after["batchExecutionLog"] == before["batchExecutionLog"], "\n".join(
        diff_dumps(before, after))
