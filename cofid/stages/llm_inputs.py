"""What the LLM stages read besides the FileState: carried over from this run's earlier
stages where they ran, read through the StageInputs port otherwise (a resumed file, a
reaudit of llm1/llm2) — and the prompt inputs LLM1 rendered, for LLM2 of the same file in
the same run (cofid.domain.prompts rule 7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cofid.domain.pipeline import FileState
from cofid.domain.prompts import PreparedCall, prepare_call
from cofid.domain.questions import QuestionSet
from cofid.stages.base import StageInputs


@dataclass
class LlmContext:
    transcript: list[dict[str, Any]]
    call_metadata: dict[str, Any] | None
    trades: list[dict[str, Any]]
    extracted_trades: list[dict[str, Any]] = field(default_factory=list)
    question_set: QuestionSet | None = None
    no_trade_answers: bool = False  # triaging ran and mapped no trade to this call

    def prepared(self, f: FileState) -> PreparedCall:
        """This context's transcript, metadata and trades rendered for the prompts: the
        rendering an earlier LLM stage of this run made of these very inputs (kept in
        f.carried, which a resume or a reaudit starts empty), else a new one, kept."""
        kept = f.carried.get(_PREPARED)
        if isinstance(kept, PreparedCall) and kept.made_from(
            self.transcript, self.call_metadata, self.trades
        ):
            return kept
        fresh = prepare_call(self.transcript, self.call_metadata, self.trades)
        f.carried[_PREPARED] = fresh
        return fresh


_PREPARED = "prepared_call"


async def load_llm_context(f: FileState, inputs: StageInputs, *, for_answers: bool) -> LlmContext:
    """LLM1's context; with `for_answers` also LLM2's (extracted trades, question set,
    whether triaging already answered the trade questions)."""
    carried = f.carried
    wanted: list[str] = []
    if "transcript" not in carried:
        wanted.append("transcript")
    if "call_metadata" not in carried:
        wanted += ["call_metadata", "trades"]
    if for_answers and "extracted_trades" not in carried:
        wanted.append("extracted_trades")
    if wanted:
        carried.update(await inputs.read(f, wanted))
    ctx = LlmContext(
        transcript=carried["transcript"],
        call_metadata=carried["call_metadata"],
        trades=carried["trades"],
    )
    if for_answers:
        ctx.extracted_trades = carried["extracted_trades"]
        ctx.question_set = inputs.question_set(f.process_id, f.category_mapping_id)
        ctx.no_trade_answers = not ctx.trades and await inputs.batch_triaged(f.batch_id)
    return ctx
