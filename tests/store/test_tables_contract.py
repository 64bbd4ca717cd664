"""Issue 15, items 2, 6 and 7, proved on what the database itself saw written.

On SQLite and on MariaDB with the server zone at +05:30 (`zoned_db_url`):

- item 2: a trigger on `batchStatus` (installed by the test, after cofid created the
  schema) records every value `batchStatus.status` takes, in commit order, whatever cofid's
  events say: a batch walks Pending, then the seed's values in the seed's order, each once,
  and never a value the seed does not have (no 'callmetadataDone' / 'trademetadataDone');
  an upload walks the values of the stages it runs;
- item 6: every `stage_complete` of a partly failed batch, exactly (status, counts);
- item 7: the failure contract, row by row and event by event for the failed file.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cofid.service.app import open_app
from cofid.service.uploads import prepare_upload
from cofid.testing.batches import write_fixture_batch
from tests.store.test_tables_truth import SEED_WALK, config, rows, run_batch_dir

UPLOAD_WALK = ["dbInsertDone", "lidDone", "sttDone", "llm1Done", "llm2Done", "Completed"]
REASON = "call_06_corrupt.wav: cannot decode audio (not a WAV/FLAC/OGG/MP3 stream)"


def install_status_audit(url: str) -> None:
    """status_audit gets a row each time a batchStatus row is inserted or its status changes."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(sa.text(
                    "CREATE TABLE status_audit (n INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "batchId INT NOT NULL, status VARCHAR(64))"))
                conn.execute(sa.text(
                    "CREATE TRIGGER status_audit_ins AFTER INSERT ON batchStatus BEGIN "
                    "INSERT INTO status_audit (batchId, status) VALUES (NEW.id, NEW.status); END"))
                conn.execute(sa.text(
                    "CREATE TRIGGER status_audit_upd AFTER UPDATE ON batchStatus "
                    "WHEN NEW.status IS NOT OLD.status BEGIN "
                    "INSERT INTO status_audit (batchId, status) VALUES (NEW.id, NEW.status); END"))
            else:
                conn.execute(sa.text(
                    "CREATE TABLE status_audit (n INT AUTO_INCREMENT PRIMARY KEY, "
                    "batchId INT NOT NULL, status VARCHAR(64))"))
                conn.execute(sa.text(
                    "CREATE TRIGGER status_audit_ins AFTER INSERT ON batchStatus FOR EACH ROW "
                    "INSERT INTO status_audit (batchId, status) VALUES (NEW.id, NEW.status)"))
                conn.execute(sa.text(
                    "CREATE TRIGGER status_audit_upd AFTER UPDATE ON batchStatus FOR EACH ROW "
                    "BEGIN IF NOT (NEW.status <=> OLD.status) THEN "
                    "INSERT INTO status_audit (batchId, status) VALUES (NEW.id, NEW.status); "
                    "END IF; END"))
    finally:
        engine.dispose()


def status_history(url: str, batch_id: int) -> list[str]:
    return [r["status"] for r in rows(
        url, "SELECT status FROM status_audit WHERE batchId = :b ORDER BY n", b=batch_id)]


def walk_events(url: str, batch_id: int) -> list[str]:
    import json

    got = rows(url, "SELECT metadata FROM batchExecutionLog WHERE batchId = :b AND "
               "stage = 'pipeline' AND eventType = 'info' ORDER BY id", b=batch_id)
    metas = [m if isinstance(m, dict) else json.loads(m) for m in (r["metadata"] for r in got)]
    return [m["batch_status"] for m in metas]


async def test_batch_status_column_takes_the_seed_values_in_order_each_once(
    zoned_db_url, tmp_path
):
    exp = write_fixture_batch(tmp_path / "batch")
    async with open_app(config(zoned_db_url, tmp_path / "data")) as app:
        install_status_audit(zoned_db_url)
        batch_id = await app.prepare_batch(tmp_path / "batch")
        await app.run_batch(batch_id)
    assert exp["failed"]  # the fixture's corrupt call: a failed file does not stop the walk
    assert status_history(zoned_db_url, batch_id) == ["Pending", *SEED_WALK]
    assert walk_events(zoned_db_url, batch_id) == SEED_WALK  # the log tells the same walk


async def test_an_upload_takes_the_values_of_the_stages_it_runs(zoned_db_url, tmp_path):
    write_fixture_batch(tmp_path / "up")
    stored = sorted((tmp_path / "up").glob("*.wav"))
    async with open_app(config(zoned_db_url, tmp_path / "data")) as app:
        install_status_audit(zoned_db_url)
        batch_id = await prepare_upload(app, stored, 1, 1)
        await app.run_batch(batch_id)
    assert status_history(zoned_db_url, batch_id) == ["Pending", *UPLOAD_WALK]
    assert walk_events(zoned_db_url, batch_id) == UPLOAD_WALK
    [bs] = rows(zoned_db_url, "SELECT source, status, callmetadataStatus, trademetadataStatus, "
                "triagingStatus, denoiseStatus, ivrStatus FROM batchStatus WHERE id = :b",
                b=batch_id)
    assert bs["source"] == "upload" and bs["status"] == "Completed"


def _stage_completes(url: str, batch_id: int) -> dict[str, tuple[Any, ...]]:
    import json

    got = rows(url, "SELECT stage, status, totalFiles, processedFiles, metadata "
               "FROM batchExecutionLog WHERE batchId = :b AND eventType = 'stage_complete' "
               "ORDER BY id", b=batch_id)
    out: dict[str, tuple[Any, ...]] = {}
    for r in got:
        assert r["stage"] not in out, r  # once per stage
        meta = r["metadata"] if isinstance(r["metadata"], dict) else json.loads(r["metadata"])
        out[r["stage"]] = (r["status"], r["totalFiles"], r["processedFiles"], meta)
    return out


async def test_stage_complete_of_a_partly_failed_batch_exactly(zoned_db_url, tmp_path):
    batch_id, exp = await run_batch_dir(zoned_db_url, tmp_path)
    assert exp["failed"] == {"call_06_corrupt.wav": "denoise"}
    n = exp["total_files"]
    files = {"done": 4, "failed": 0, "skipped": 3}  # ShortCall, French (gated), the failed one
    assert _stage_completes(zoned_db_url, batch_id) == {
        "file_distribution": ("success", n, n,
                              {"done": n, "failed": 0, "skipped": 0, "gpus": {"cpu": n}}),
        "callmetadata": ("success", n, n, {"rows": n, "errors": 0}),
        "trademetadata": ("success", n, n, {"rows": 7, "errors": 0}),
        "triaging": ("success", n, n, {"trades": 7, "mapped": 5, "calls_with_trades": 4,
                                       "calls_without_trades": 3}),
        "denoise": ("partial", n, n, {"done": n - 1, "failed": 1, "skipped": 0}),
        "ivr": ("success", n, n, {"done": n - 1, "failed": 0, "skipped": 1}),
        "lid": ("success", n, n, {"done": n - 1, "failed": 0, "skipped": 1}),
        "stt": ("success", n, n, files),
        "llm1": ("success", n, n, files),
        "llm2": ("success", n, n, files),
    }


async def test_the_failure_contract_row_by_row(zoned_db_url, tmp_path):
    """The corrupt call fails denoise: call Failed, fileDistribution says where and why,
    one failed processing_logs row, its events end in one `error`; no later stage touched
    it; the batch is Completed and nothing of it is Pending."""
    batch_id, exp = await run_batch_dir(zoned_db_url, tmp_path)
    name = "call_06_corrupt.wav"
    assert exp["failed"] == {name: "denoise"}
    [call] = rows(zoned_db_url, "SELECT id, status, lang, languageId, audioDuration "
                  "FROM `call` WHERE audioName = :n", n=name)
    assert {k: v for k, v in call.items() if k != "id"} == {
        "status": "Failed", "lang": "unknown", "languageId": 0, "audioDuration": 0.0}
    [fd] = rows(zoned_db_url, "SELECT batchId, denoiseDone, ivrDone, lidDone, sttDone, llm1Done, "
                "llm2Done, failedStage, failureReason FROM fileDistribution WHERE file = :n", n=name)
    assert fd == {"batchId": batch_id, "denoiseDone": 0, "ivrDone": 0, "lidDone": 0,
                  "sttDone": 0, "llm1Done": 0, "llm2Done": 0, "failedStage": "denoise",
                  "failureReason": REASON}
    logs = rows(zoned_db_url, "SELECT batch_id, call_id, stage_name, status, attempt, "
                "error_message FROM processing_logs WHERE file_name = :n ORDER BY id", n=name)
    assert logs == [{"batch_id": batch_id, "call_id": call["id"], "stage_name": "denoise",
                     "status": "failed", "attempt": 1, "error_message": REASON}]
    events = rows(zoned_db_url, "SELECT batchId, stage, eventType, status, errorMessage "
                  "FROM batchExecutionLog WHERE fileName = :n ORDER BY id", n=name)
    assert [tuple(e.values()) for e in events] == [
        (batch_id, "file_distribution", "file_start", "processing", None),
        (batch_id, "file_distribution", "file_complete", "success", None),
        (batch_id, "denoise", "file_start", "processing", None),
        (batch_id, "denoise", "error", "failed", REASON),
    ]
    for table in ("lidStatus", "callConversation"):
        key = "audioName" if table == "lidStatus" else "callId"
        value: Any = name if key == "audioName" else call["id"]
        assert rows(zoned_db_url, f"SELECT * FROM {table} WHERE {key} = :v", v=value) == []
    assert rows(zoned_db_url, "SELECT * FROM transcript WHERE callId = :c", c=call["id"]) == []
    # Its only answers are triaging's 'No trade data found' (it has no trade).
    answers = rows(zoned_db_url, "SELECT questionOrder, answer, source FROM auditAnswer "
                   "WHERE callId = :c ORDER BY questionOrder", c=call["id"])
    assert answers == [{"questionOrder": i, "answer": "No trade data found",
                        "source": "triaging"} for i in (1, 2, 3)]
    [bs] = rows(zoned_db_url, "SELECT status, denoiseStatus FROM batchStatus WHERE id = :b",
                b=batch_id)
    assert bs == {"status": "Completed", "denoiseStatus": "Complete"}
    statuses = rows(zoned_db_url, "SELECT status, COUNT(*) AS n FROM `call` WHERE batchId = :b "
                    "GROUP BY status ORDER BY status", b=batch_id)
    assert statuses == [{"status": "Complete", "n": 4}, {"status": "Failed", "n": 1},
                        {"status": "ShortCall", "n": 1}, {"status": "UnsupportedLanguage", "n": 1}]
    # No other file failed: the flaky call's first attempts are 'retry' rows (not errors
    # to the seed's "Check Errors"), once per audio stage, then successes.
    others = rows(zoned_db_url, "SELECT file_name, stage_name, status FROM processing_logs "
                  "WHERE batch_id = :b AND file_name <> :n AND status <> 'success'",
                  b=batch_id, n=name)
    assert sorted(tuple(r.values()) for r in others) == [
        ("call_07_flaky.wav", s, "retry") for s in ("denoise", "ivr", "lid", "stt")]
