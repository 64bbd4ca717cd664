"""Issue 15, pure rules: the status walk, stage_complete's status, the distribution's events;
and the upload's Step 3 events, through the service on SQLite and MariaDB (+05:30)."""

from __future__ import annotations

import sqlalchemy as sa

from cofid.config import parse_config
from cofid.domain.events import stage_outcome
from cofid.domain.model import BatchState, Stage, StageStatus
from cofid.domain.pipeline import FLAG_STATUS_FIELD, status_walk
from cofid.plans import batch as bp
from cofid.service.app import open_app
from cofid.service.uploads import prepare_upload
from cofid.store import tables as t
from cofid.testing.batches import fake_config, write_fixture_batch

ALL = tuple(Stage)
C, P = StageStatus.COMPLETE, StageStatus.PENDING


def statuses(**complete: bool) -> dict[Stage, object]:
    out: dict[Stage, object] = {}
    for s in Stage:
        done = complete.get(s.value, False)
        out[s] = (1 if done else 0) if s in FLAG_STATUS_FIELD else (C if done else P)
    return out


def test_lid_completing_after_triaging_walks_lid_then_triaging():
    st = statuses(
        file_distribution=True,
        callmetadata=True,
        trademetadata=True,
        denoise=True,
        ivr=True,
        triaging=True,
    )
    assert status_walk("ivrDone", st, ALL, to_completed=False) == []
    st[Stage.LID] = C
    assert status_walk("ivrDone", st, ALL, to_completed=False) == [
        BatchState.LID_DONE,
        BatchState.TRIAGING_DONE,
    ]
    # A value already written is not written again.
    assert status_walk("lidDone", st, ALL, to_completed=False) == [BatchState.TRIAGING_DONE]


def test_the_csv_steps_have_no_value_and_llm2_done_precedes_completed():
    st = statuses(file_distribution=True, callmetadata=True, trademetadata=True)
    assert status_walk("Pending", st, ALL, to_completed=False) == [BatchState.DB_INSERT_DONE]
    st = statuses(**{s.value: True for s in Stage})
    walk = status_walk("Pending", st, ALL, to_completed=True)
    assert [str(s) for s in walk] == [
        "dbInsertDone",
        "denoiseDone",
        "ivrDone",
        "lidDone",
        "triagingDone",
        "sttDone",
        "llm1Done",
        "llm2Done",
        "Completed",
    ]
    # Only the run's end writes Completed.
    assert status_walk("llm1Done", st, ALL, to_completed=False) == [BatchState.LLM2_DONE]
    assert status_walk("llm2Done", st, ALL, to_completed=True) == [BatchState.COMPLETED]
    assert status_walk("Completed", st, ALL, to_completed=True) == []


def test_disabled_stages_have_no_value_in_the_walk():
    upload = (Stage.FILE_DISTRIBUTION, Stage.LID, Stage.STT, Stage.LLM1, Stage.LLM2)
    st = statuses(**{s.value: True for s in upload})
    assert [str(s) for s in status_walk("Pending", st, upload, to_completed=True)] == [
        "dbInsertDone",
        "lidDone",
        "sttDone",
        "llm1Done",
        "llm2Done",
        "Completed",
    ]
    # A value the seed does not have (an older cofid wrote it) restarts the walk.
    assert status_walk("trademetadataDone", st, upload, to_completed=False)[0] == "dbInsertDone"


def test_stage_outcome():
    assert stage_outcome(5, 0) == "success"
    assert stage_outcome(0, 0) == "success"
    assert stage_outcome(4, 1) == "partial"
    assert stage_outcome(0, 3) == "failed"


def test_a_csv_with_one_refused_row_is_partial():
    from cofid.domain import csv_ingest

    parsed = csv_ingest.parse_call_metadata(
        b"audioName,clientCode,agentId,callStartTime,callEndTime\n"
        b"a.wav,C1,A1,2026-01-05T04:00:00,\nb.wav,C2,A1,not-a-time,\n",
        known_audio={"a.wav", "b.wav"},
    )
    ev = bp.csv_event(1, Stage.CALLMETADATA, parsed)
    assert (ev.event_type, ev.status, ev.metadata) == (
        "stage_complete",
        "partial",
        {"rows": 1, "errors": 1},
    )


def test_distribution_reports_each_file_and_a_file_gone_since(tmp_path):
    for name in ("a.wav", "b.wav"):
        (tmp_path / name).write_bytes(b"RIFF")
    bi = bp.BatchInput(
        tmp_path, [tmp_path / "a.wav", tmp_path / "gone.wav", tmp_path / "b.wav"], 1, 1
    )
    d = bp.distribution(7, bi, lambda: "g1")
    assert [f[0] for f in d.files] == ["a.wav", "b.wav"]
    assert d.refused == [("gone.wav", d.refused[0][1])] and "cannot be read" in d.refused[0][1]
    got = [(e.event_type, e.status, e.file_name) for e in d.events]
    assert got[0] == ("stage_start", "processing", None)
    assert got[-1] == ("stage_complete", "partial", None)
    assert sorted(got[1:-1]) == sorted(
        [
            ("file_start", "processing", "a.wav"),
            ("file_complete", "success", "a.wav"),
            ("file_start", "processing", "b.wav"),
            ("file_complete", "success", "b.wav"),
            ("file_start", "processing", "gone.wav"),
            ("error", "failed", "gone.wav"),
        ]
    )
    assert d.events[-1].metadata == {"done": 2, "failed": 1, "skipped": 0, "gpus": {"g1": 2}}
    quiet = bp.distribution(7, bi, lambda: "g1", file_start_events=False)
    assert "file_start" not in {e.event_type for e in quiet.events}
    everything_gone = bp.BatchInput(tmp_path, [tmp_path / "x.wav"], 1, 1)
    assert bp.distribution(7, everything_gone, lambda: "g1").events[-1].status == "failed"


async def test_an_upload_reports_its_distribution(zoned_db_url, tmp_path):
    exp = write_fixture_batch(tmp_path / "up")
    stored = sorted((tmp_path / "up").glob("*.wav"))
    cfg = parse_config(fake_config(zoned_db_url, tmp_path / "data"))
    async with open_app(cfg) as app:
        batch_id = await prepare_upload(app, stored, 1, 1)
    engine = sa.create_engine(zoned_db_url)
    tbl = t.batch_execution_log
    with engine.connect() as conn:
        got = [
            (r.stage, r.eventType, r.status, r.fileName)
            for r in conn.execute(
                sa.select(tbl).where(tbl.c.batchId == batch_id).order_by(tbl.c.id)
            )
        ]
        status = conn.execute(sa.select(t.batch_status.c.status)).scalar_one()
    engine.dispose()
    files = [r[3] for r in got if r[1] == "file_complete"]
    assert sorted(files) == sorted(exp["files"])
    assert got == [
        ("file_distribution", "stage_start", "processing", None),
        *[
            x
            for n in files
            for x in (
                ("file_distribution", "file_start", "processing", n),
                ("file_distribution", "file_complete", "success", n),
            )
        ],
        ("file_distribution", "stage_complete", "success", None),
        ("pipeline", "info", "success", None),  # batchStatus.status: dbInsertDone
    ]
    assert status == "dbInsertDone"
