"""LLM1: extract the trades the call talks about (pipeline rule 5)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cofid.backends.base import Backends, ChatResult
from cofid.domain.model import CallStatus, Stage
from cofid.domain.ops import WriteSet
from cofid.domain.pipeline import FileState
from cofid.domain.prompts import build_llm1_request
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


class Llm1Stage:
    stage = Stage.LLM1

    def gate(self, env: StageEnv, f: FileState) -> WriteSet | None:
        return None

    async def load(self, f: FileState, inputs: StageInputs) -> LlmContext:
        return await load_llm_context(f, inputs, for_answers=False)

    async def call(self, env: StageEnv, f: FileState, backends: Backends, ctx: LlmContext) -> ChatResult:
        req = build_llm1_request(
            templates=env.templates,
            transcript=ctx.transcript,
            call_metadata=ctx.call_metadata,
            trades=ctx.trades,
            prepared=ctx.prepared(f),
        )
        return await backends.chat.complete(with_retry_note(req, f.model_refusal))

    def writes(self, f: FileState, result: ChatResult, ctx: LlmContext) -> tuple[WriteSet, Summary]:
        ws = WriteSet()
        ws.replace(
            "call_conversation", "call_id", f.call_id,
            *(
                {
                    "call_id": f.call_id,
                    "trade_index": i,
                    "trade_id": tr.get("trade_id"),
                    "symbol": tr.get("symbol"),
                    "side": tr.get("side"),
                    "quantity": _money(tr.get("quantity")),
                    "price": _money(tr.get("price")),
                    "order_type": tr.get("order_type"),
                    "evidence": tr.get("evidence"),
                }
                for i, tr in enumerate(result.data.get("trades", []))
            ),
        )
        set_call_status(ws, f, CallStatus.AUDIT_DONE)
        mark_done(ws, f, Stage.LLM1)
        f.llm1_done = True
        f.call_status = CallStatus.AUDIT_DONE
        f.carried["extracted_trades"] = extracted_dicts(result)
        return ws, summary_of(result)


def extracted_dicts(r: ChatResult) -> list[dict[str, Any]]:
    """LLM1's trades as LLM2 reads them (the shape the store's reader returns)."""
    keys = ("trade_id", "symbol", "side", "quantity", "price", "order_type", "evidence")
    return [{k: tr.get(k) for k in keys} for tr in r.data.get("trades", [])]


def _money(v: Any) -> Decimal | None:
    return None if v is None else Decimal(str(v))


register(Llm1Stage())
