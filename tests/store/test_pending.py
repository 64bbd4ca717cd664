"""cofid.store.pending on SQLite and a real MariaDB: the SQL that answers "which files still
have work" says exactly what the domain's needs_stage says of each file, and the count of
the others (by failed stage) is its exact complement."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date

import pytest
import sqlalchemy as sa

from cofid.domain.model import FILE_STAGES, CallStatus, Stage
from cofid.domain.pipeline import needs_stage
from cofid.store import pending, repo
from cofid.store import tables as t
from cofid.store.db import create_engine
from cofid.store.migrate import upgrade

FLAGS = ("denoiseDone", "ivrDone", "lidDone", "sttDone", "llm1Done", "llm2Done")
STATUSES = ("Pending", "TranscriptDone", "AuditDone", "Complete", "ShortCall",
            "UnsupportedLanguage", "Failed")
PLANS = {
    "batch": FILE_STAGES,
    "upload_without_llm1": (Stage.LID, Stage.STT, Stage.LLM2),
    "no_llms": (Stage.DENOISE, Stage.IVR, Stage.LID, Stage.STT),
    "llm2_only": (Stage.LLM2,),
}


@pytest.fixture
def grid(db_url):
    """One batch whose files take every combination of the six done flags, each call
    status and failedStage None / 'stt' (896 files), plus a second batch that must not
    leak in; yields (url, batch id, the other batch's id)."""
    engine = create_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        ids = [repo.create_batch(conn, batch_date=date(2026, 11, 22), source="batch",
                                 source_dir=None, process_id=1, category_mapping_id=1,
                                 pipeline={}, batch_number=n) for n in (1, 2)]
        fds, calls = [], []
        combos = itertools.product(itertools.product((0, 1), repeat=6), STATUSES, (None, "stt"))
        for i, (flags, status, failed) in enumerate(combos):
            name = f"f{i:04d}.wav"
            fds.append({"batchId": ids[0], "file": name, "filePath": f"/x/{name}",
                        "failedStage": failed, **dict(zip(FLAGS, flags, strict=True))})
            calls.append({"batchId": ids[0], "audioName": name, "status": status})
        fds.append({"batchId": ids[1], "file": "other.wav", "filePath": "/x/other.wav",
                    "failedStage": None, **dict.fromkeys(FLAGS, 0)})
        calls.append({"batchId": ids[1], "audioName": "other.wav", "status": "Pending"})
        conn.execute(sa.insert(t.file_distribution), fds)
        conn.execute(sa.insert(t.call), calls)
    yield engine, ids[0]
    engine.dispose()


@pytest.mark.parametrize("plan", list(PLANS))
def test_pending_files_are_exactly_those_some_stage_needs(grid, plan):
    engine, bid = grid
    stages = PLANS[plan]
    with engine.connect() as conn:
        every = repo.load_files(conn, bid)
        got = pending.load_pending(conn, bid, stages)
        # Paged as the engine reads it: the same files, in fileDistribution order.
        paged, after = [], 0
        while page := pending.load_pending(conn, bid, stages, after_fd_id=after, limit=37):
            paged += page
            after = page[-1].fd_id
        counts = pending.finished_counts(conn, bid, stages)
    assert len(every) == 896
    wanted = [f for f in every if any(needs_stage(f, s, stages) for s in stages)]
    rest = [f for f in every if not any(needs_stage(f, s, stages) for s in stages)]
    assert [f.audio_name for f in got] == [f.audio_name for f in wanted]
    assert [f.fd_id for f in paged] == [f.fd_id for f in wanted]
    assert got == wanted  # every field as load_files reads it
    assert counts == dict(Counter(f.failed_stage for f in rest))
    assert sum(counts.values()) + len(got) == 896
    # Spot checks of the rule itself, independent of needs_stage.
    by_name = {f.audio_name: f for f in got}
    assert all(f.failed_stage is None for f in got)
    if plan == "batch":
        # All flags set: nothing left; Complete with llm2 unset: llm2 takes AuditDone only.
        assert not any(f.denoise_done and f.ivr_done and f.lid_done and f.stt_done
                       and f.llm1_done and f.llm2_done for f in got)
        assert all(f.call_status != CallStatus.COMPLETE or not f.lid_done
                   or not f.denoise_done or not f.ivr_done for f in got)
    if plan == "llm2_only":  # no llm1 in the plan: llm2 takes TranscriptDone too (rule 6)
        assert {f.call_status for f in got} == {CallStatus.AUDIT_DONE,
                                                CallStatus.TRANSCRIPT_DONE}
        assert not any(f.llm2_done for f in got)
    if plan == "upload_without_llm1":  # rule 6: llm2 takes TranscriptDone without llm1
        assert any(f.call_status == CallStatus.TRANSCRIPT_DONE and f.stt_done and f.lid_done
                   for f in by_name.values())


def test_no_stages_means_no_work(grid):
    engine, bid = grid
    with engine.connect() as conn:
        assert pending.load_pending(conn, bid, ()) == []
        assert pending.finished_counts(conn, bid, ()) == {None: 448, "stt": 448}
