"""Which outcomes recompute a call's verdicts (cofid.engine.verdicts.verdicts_after): the
ones that change what the verdict reads, and none of a call this run knows has no trade
mapped to it. The exact verdict rows these produce are tests/engine/test_verdicts_pipeline.py's."""

from __future__ import annotations

import pytest

from cofid.domain.model import Stage
from cofid.domain.pipeline import FileState
from cofid.engine.verdicts import verdicts_after
from cofid.stages.base import StageEnv
from cofid.store.verdicts import VerdictRefresh

ENV = StageEnv(work_dir="/w", min_duration_s=5.0, allowed_languages=("en",), templates=None)


def _file(**carried) -> FileState:
    f = FileState(fd_id=1, call_id=2, batch_id=3, audio_name="a.wav", path="/b/a.wav")
    f.carried.update(carried)
    return f


@pytest.mark.parametrize(("stage", "outcome", "decides"), [
    (Stage.LLM1, "done", True),
    (Stage.LLM2, "done", False),
    (Stage.STT, "done", False),
    (Stage.DENOISE, "failed", True),
    (Stage.STT, "failed", True),
    (Stage.LLM1, "failed", True),
    (Stage.LLM2, "failed", False),
    (Stage.LID, "gated", True),
])
def test_the_outcomes_that_change_what_the_verdict_reads(stage, outcome, decides):
    step = verdicts_after(ENV, _file(), stage, outcome)
    assert (step is not None) is decides
    if decides:
        assert isinstance(step, VerdictRefresh)
        assert (step.batch_id, step.audio_names) == (3, ("a.wav",))
        assert step.rules is ENV.verdict_rules


@pytest.mark.parametrize(("stage", "outcome"), [
    (Stage.LLM1, "done"), (Stage.LLM1, "failed"), (Stage.LID, "gated"),
])
def test_a_call_known_to_have_no_mapped_trade_recomputes_nothing(stage, outcome):
    assert verdicts_after(ENV, _file(trades=[]), stage, outcome) is None


def test_a_call_with_mapped_trades_or_unread_ones_recomputes():
    trade = {"trade_id": "T1", "symbol": "INFY", "side": "BUY", "quantity": 100.0,
             "price": 1.0, "trade_time": "2026-01-01T10:00:00"}
    assert verdicts_after(ENV, _file(trades=[trade]), Stage.LLM1, "done") is not None
    # Not read in this run (a resumed file before LLM1, a gate at LID): it may have some.
    assert verdicts_after(ENV, _file(), Stage.LLM1, "done") is not None
    assert verdicts_after(ENV, _file(trades=None), Stage.LLM1, "done") is not None
