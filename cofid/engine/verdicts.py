"""Which file-stage outcomes decide the trade verdicts of the file's call.

A call's trades get their verdict (cofid.domain.verdicts) from its status, the stage it
failed and LLM1's trades. So the engine recomputes them, in the transaction of the result
that changed one of these (the writer's `after` step, cofid.store.verdicts.recompute):
LLM1 done (confirmed / mismatch), a gate that settled the call (ShortCall,
UnsupportedLanguage), and a failure at a stage the verdict depends on (call_unusable).
Other outcomes leave the verdict as it was, so they cost no reads — nor does an outcome
of a call this run knows has no trade mapped to it (LLM1's context read its mapped
trades: none), since the recompute would find nothing to decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from cofid.domain.model import Stage
from cofid.domain.pipeline import FileState
from cofid.stages.base import StageEnv
from cofid.store import verdicts as verdict_rows
from cofid.store.writes import AfterStep

Outcome = Literal["done", "gated", "failed"]

# The stages whose failure leaves nothing to judge (cofid.domain.verdicts rule 3); a
# failed llm2 does not matter: the verdict reads only the transcript and LLM1.
_FAILURE_DECIDES = frozenset({Stage.DENOISE, Stage.IVR, Stage.LID, Stage.STT, Stage.LLM1})
_DONE_DECIDES = frozenset({Stage.LLM1})


def reaudit_resets(stages: Iterable[str]) -> bool:
    """Whether a reaudit of these stages re-makes what the verdicts read (the transcript,
    LLM1's trades, the call status): its calls' verdicts go pending until it ends. A
    reaudit of llm2 alone leaves them."""
    return any(Stage(s) in _FAILURE_DECIDES for s in stages)


def verdicts_after(env: StageEnv, f: FileState, stage: Stage, outcome: Outcome) -> AfterStep | None:
    """The step that recomputes the call's verdicts after this outcome, or None."""
    decides = (
        (outcome == "done" and stage in _DONE_DECIDES)
        or (outcome == "failed" and stage in _FAILURE_DECIDES)
        or outcome == "gated"
    )
    if not decides:
        return None
    if f.carried.get("trades") == []:
        # Trades are mapped to calls before the file stages run (the CSV steps and
        # triaging), so the mapped trades this run read are still all there are.
        return None
    return verdict_rows.VerdictRefresh(f.batch_id, (f.audio_name,), env.verdict_rules)
