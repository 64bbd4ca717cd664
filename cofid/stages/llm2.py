"""LLM2: answer the audit questions (pipeline rule 6), less the trade questions triaging
already settled as 'No trade data found' for a call without trades."""

from __future__ import annotations

from typing import Any

from cofid.backends.base import Backends, ChatResult
from cofid.domain.model import NO_TRADE_DATA_ANSWER, CallStatus, Stage
from cofid.domain.ops import WriteSet
from cofid.domain.pipeline import FileState
from cofid.domain.prompts import build_llm2_request
from cofid.domain.questions import TRADE_QUESTION_COUNT, Question, QuestionSet
from cofid.domain.retry_note import with_retry_note
from cofid.stages.base import (
    StageEnv,
    StageInputs,
    Summary,
    mark_done,
    register,
    set_call_status,
    summary_of,
)
from cofid.stages.llm_inputs import LlmContext, load_llm_context


class Llm2Stage:
    stage = Stage.LLM2

    def gate(self, env: StageEnv, f: FileState) -> WriteSet | None:
        return None

    async def load(self, f: FileState, inputs: StageInputs) -> LlmContext:
        return await load_llm_context(f, inputs, for_answers=True)

    async def call(
        self, env: StageEnv, f: FileState, backends: Backends, ctx: LlmContext
    ) -> ChatResult | None:
        questions = llm2_questions(ctx)
        if not questions:
            return None
        req = build_llm2_request(
            templates=env.templates,
            transcript=ctx.transcript,
            call_metadata=ctx.call_metadata,
            trades=ctx.trades,
            prepared=ctx.prepared(f),
            extracted_trades=ctx.extracted_trades,
            questions=questions,
        )
        return await backends.chat.complete(with_retry_note(req, f.model_refusal))

    def writes(
        self, f: FileState, result: ChatResult | None, ctx: LlmContext
    ) -> tuple[WriteSet, Summary]:
        """All of the call's answers: triaging's 'No trade data found' rows (when the call
        has no trade) and the model's, replacing whatever was there."""
        qs = ctx.question_set
        assert qs is not None
        order = {q.id: i + 1 for i, q in enumerate(qs.questions)}
        text = {q.id: q.text for q in qs.questions}
        rows = no_trade_answer_rows(f.call_id, qs) if ctx.no_trade_answers else []
        for a in (result.data.get("answers", []) if result is not None else []):
            rows.append(
                {
                    "call_id": f.call_id,
                    "question_id": a["question_id"],
                    "question_order": order[a["question_id"]],
                    "question": text[a["question_id"]],
                    "answer": a["answer"],
                    "evidence": a.get("evidence"),
                    "source": "llm2",
                }
            )
        ws = WriteSet()
        ws.replace("audit_answer", "call_id", f.call_id, *rows)
        set_call_status(ws, f, CallStatus.COMPLETE)
        mark_done(ws, f, Stage.LLM2)
        f.llm2_done = True
        f.call_status = CallStatus.COMPLETE
        f.carried.clear()  # the last stage: nothing further needs it
        return ws, summary_of(result)


def llm2_questions(ctx: LlmContext) -> tuple[Question, ...]:
    """The questions the model answers: all, less the trade questions that triaging
    already settled as 'No trade data found' for a call without trades."""
    qs = ctx.question_set.questions if ctx.question_set else ()
    return qs[TRADE_QUESTION_COUNT:] if ctx.no_trade_answers else qs


def no_trade_answer_rows(call_id: int, qs: QuestionSet) -> list[dict[str, Any]]:
    """audit_answer rows (field names) of the trade questions for a call without trades."""
    return [
        {
            "call_id": call_id,
            "question_id": q.id,
            "question_order": i + 1,
            "question": q.text,
            "answer": NO_TRADE_DATA_ANSWER,
            "evidence": None,
            "source": "triaging",
        }
        for i, q in enumerate(qs.questions[:TRADE_QUESTION_COUNT])
    ]


register(Llm2Stage())
