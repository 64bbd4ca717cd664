"""The status table and the stage registry against the store's map: every field name a
stage writes, and every field the table names, is a real seed column."""

from __future__ import annotations

from pathlib import Path

import pytest

from cofid.backends.base import ChatResult, DenoiseResult, IvrResult, LidResult, Segment, SttResult
from cofid.domain.model import FILE_STAGES, REAUDIT_STAGES, Stage
from cofid.domain.pipeline import (
    DONE_FLAG_FIELD,
    FLAG_STATUS_FIELD,
    STAGES,
    STATUS_FIELD,
    FileState,
)
from cofid.domain.questions import default_question_set
from cofid.stages.base import REGISTRY, stage_for
from cofid.stages.llm_inputs import LlmContext
from cofid.store import tables as t
from cofid.store.writes import to_seed_op

# The seed's column names of the stage table's fields, through the store's one map.
FLAG_COLUMN = {s: t.column_of("file_distribution", f).name for s, f in DONE_FLAG_FIELD.items()}
STATUS_COLUMN = {s: t.column_of("batch_status", f).name for s, f in STATUS_FIELD.items()}
FLAG_STATUS_COLUMN = {s: t.column_of("batch_status", f).name for s, f in FLAG_STATUS_FIELD.items()}


def test_the_table_names_real_columns_and_its_seed_views_match_the_map() -> None:
    for stage, row in STAGES.items():
        assert row.stage is stage
        col = t.column_of("batch_status", row.batch_status).name
        assert (FLAG_STATUS_COLUMN if row.batch_flag else STATUS_COLUMN)[stage] == col
        if row.done_flag is not None:
            assert FLAG_COLUMN[stage] == t.column_of("file_distribution", row.done_flag).name
        if row.reaudit_deletes is not None:
            assert t.column_of(row.reaudit_deletes, "call_id") is not None
    assert tuple(s for s, r in STAGES.items() if r.done_flag) == FILE_STAGES
    assert tuple(s for s, r in STAGES.items() if r.reaudit_status) == REAUDIT_STAGES


def test_the_registry_has_one_object_per_file_stage() -> None:
    assert sorted(REGISTRY) == sorted(FILE_STAGES)
    assert all(REGISTRY[s].stage is s for s in FILE_STAGES)
    with pytest.raises(ValueError, match="not a file stage"):
        stage_for(Stage.TRIAGING)


def _file() -> FileState:
    return FileState(fd_id=7, call_id=11, batch_id=3, audio_name="a.wav", path="/x/a.wav",
                     lang="en", duration_s=9.0)


QS = default_question_set()
CTX = LlmContext(transcript=[], call_metadata=None, trades=[], question_set=QS, no_trade_answers=True)
RESULTS = {
    Stage.DENOISE: DenoiseResult(output=Path("/w/a.flac")),
    Stage.IVR: IvrResult(output=Path("/w/a.flac"), trim_offset_s=1.5),
    Stage.LID: LidResult(language="en", confidence=0.9, duration_s=9.0),
    Stage.STT: SttResult(segments=(Segment(0.0, 1.0, "hello"),), language="en", duration_s=9.0),
    Stage.LLM1: ChatResult(data={"trades": [{"trade_id": "T1", "quantity": 5, "price": 1.25}]}),
    Stage.LLM2: ChatResult(data={"answers": [
        {"question_id": QS.questions[-1].id, "answer": "Yes", "evidence": "e"}]}),
}


@pytest.mark.parametrize("stage", FILE_STAGES, ids=str)
def test_every_write_set_uses_field_names_and_sets_the_done_flag(stage: Stage) -> None:
    f = _file()
    ctx = CTX if stage in (Stage.LLM1, Stage.LLM2) else None
    ws, _summary = stage_for(stage).writes(f, RESULTS[stage], ctx)
    seed_ops = [to_seed_op(op) for op in ws.ops]  # a seed or unknown name raises KeyError
    flag = FLAG_COLUMN[stage]
    assert any(getattr(op, "values", {}).get(flag) == 1 for op in seed_ops)
    assert f.done(stage)
    if STAGES[stage].output_status is not None:
        assert f.call_status == STAGES[stage].output_status
