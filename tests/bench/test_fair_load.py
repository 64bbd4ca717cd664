"""The throughput benchmark's reference, the fair raw load: it replays every write of the
pipeline and ends with the pipeline's rows, and its end-state check would see a difference."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bench import fair_load as fl
from bench import throughput
from cofid.store import tables as t
from cofid.store.db import create_engine
from cofid.store.migrate import upgrade


@pytest.mark.parametrize("db", ["sqlite", "mariadb"])
def test_fair_load_ends_with_the_pipelines_rows(db):
    out = throughput.run(12, db, segments=5, answers=5, slots=2)
    assert out["failed"] == 0
    fair = out["fair_load"]
    end = fair["end_state"]
    assert end["equal"] is True and end["tables_differ"] == []
    # processing_logs is written by every stage: a stage-by-stage load numbers it in
    # another order; every other table is equal ids included.
    assert set(end["ids_differ"]) <= {"processing_logs"}
    assert end["rows_compared"] == out["rows"]
    # 12 files: one transaction per stage for the six file stages, plus the recorded
    # batch-level ones (distribution, the status walk, the question sync, ...).
    assert fair["transactions"] > 6
    assert out["ratio_to_fair_load"] > 0 and out["cpu_ratio_to_fair_load"] > 0
    if db == "mariadb":
        assert out["server_cpu_s"]["pipeline"] > 0


def test_compare_sees_a_changed_value_and_a_missing_row(tmp_path):
    a = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    b = create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    rows = [{"id": i, "questionId": f"Q{i}", "question": "Q?", "kind": "keywords",
             "processId": 1, "categoryMappingId": 1, "questionOrder": i} for i in (1, 2)]
    for e in (a, b):
        upgrade(e)
        with e.begin() as conn:
            conn.execute(sa.insert(t.audit_question), rows)
    assert fl.compare(a, b)["equal"] is True
    with b.begin() as conn:
        conn.execute(sa.update(t.audit_question).where(t.audit_question.c.id == 2)
                     .values(questionOrder=7))
    r = fl.compare(a, b)
    assert r["equal"] is False and r["tables_differ"] == ["auditQuestion"]
    with b.begin() as conn:
        conn.execute(sa.delete(t.audit_question).where(t.audit_question.c.id == 2))
        conn.execute(sa.insert(t.audit_question), [rows[1]])
    assert fl.compare(a, b)["equal"] is True
    with b.begin() as conn:
        conn.execute(sa.delete(t.audit_question).where(t.audit_question.c.id == 1))
    assert fl.compare(a, b)["tables_differ"] == ["auditQuestion"]
    a.dispose()
    b.dispose()
