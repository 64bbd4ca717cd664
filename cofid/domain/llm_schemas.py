"""The LLM stages' output schemas (prompts.py's rules 1 and 2).

1. Schemas are strict: every property is required, optional values are nullable
   (["number", "null"]), and no object admits additional properties.
2. LLM2's schema keys the answers by question id: `answers` is an object whose properties
   are exactly the asked ids, all required, so a grammar-constrained server can only
   produce each id once (a list with an id enum cannot say "each once"). Backends hand
   stages the list form (cofid.domain.replies.normalized_llm2). LLM1's trades array has
   maxItems (replies.LLM1_MAX_TRADES) and its ids the store's width: a model looping in
   its grammar stops there.
3. Every string is bounded (evidence MAX_EVIDENCE_CHARS, an answer MAX_ANSWER_CHARS), so
   the longest reply the grammar admits is finite: a model that loops inside a string is
   made to close it instead of running on to max_tokens.
4. A nullable value is written so that grammar converters keep its constraint: an enum
   lists null among its values and has no "type"; a bounded nullable string is
   anyOf [a string with maxLength, null]. llama-cpp-python's converter (0.3.x) turns a
   "type" list into bare types and drops the enum and maxLength beside it — measured
   against its server, SmolLM2 answered side "BONUS_LIMIT" under ["string", "null"] + enum.
5. LLM2's bounds share a reply budget (replies.LLM2_REPLY_CHARS): each question's answer
   and evidence get an equal part of it (two thirds answer, one third evidence, within
   MAX_ANSWER_CHARS / MAX_EVIDENCE_CHARS and at least MIN_LLM2_FIELD_CHARS each), so the
   longest reply the grammar admits fits the token limit however many questions a set
   has, down to the floor (a set of over ~30 questions can exceed it: give such a set a
   larger max_tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cofid.domain.replies import (
    LLM1_MAX_TRADES,
    LLM2_REPLY_CHARS,
    MAX_ANSWER_CHARS,
    MAX_EVIDENCE_CHARS,
    MAX_ID_CHARS,
    MIN_LLM2_FIELD_CHARS,
)

LLM1_SCHEMA_NAME = "llm1_trades"


def _nullable_string(max_chars: int) -> dict[str, Any]:
    """A string of at most `max_chars`, or null (rule 4)."""
    return {"anyOf": [{"type": "string", "maxLength": max_chars}, {"type": "null"}]}


LLM2_SCHEMA_NAME = "llm2_answers"

LLM1_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["trades"],
    "properties": {
        "trades": {
            "type": "array",
            "maxItems": LLM1_MAX_TRADES,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "symbol", "side", "quantity", "price", "order_type", "trade_id", "evidence",
                ],
                "properties": {
                    "symbol": _nullable_string(MAX_ID_CHARS),
                    "side": {"enum": ["BUY", "SELL", None]},
                    "quantity": {"type": ["number", "null"]},
                    "price": {"type": ["number", "null"]},
                    "order_type": {"enum": ["MARKET", "LIMIT", None]},
                    "trade_id": _nullable_string(MAX_ID_CHARS),
                    "evidence": {"type": "string", "maxLength": MAX_EVIDENCE_CHARS},
                },
            },
        }
    },
}


# Per question, the reply spends `"<id>": {"answer": "", "evidence": ""}, ` besides the
# two strings' characters.
_LLM2_ITEM_OVERHEAD = 36


def llm2_field_chars(question_ids: Sequence[str]) -> tuple[int, int]:
    """(answer, evidence) maxLength for a set of these questions (rule 5)."""
    ids = list(question_ids)
    overhead = sum(len(q) + _LLM2_ITEM_OVERHEAD for q in ids) + len('{"answers": {}}')
    share = max(0, LLM2_REPLY_CHARS - overhead) // max(1, len(ids))
    answer = max(MIN_LLM2_FIELD_CHARS, min(MAX_ANSWER_CHARS, share * 2 // 3))
    evidence = max(MIN_LLM2_FIELD_CHARS, min(MAX_EVIDENCE_CHARS, share - share * 2 // 3))
    return answer, evidence


def llm2_schema(question_ids: Sequence[str]) -> dict[str, Any]:
    """The strict schema for answers to exactly these questions (rule 2)."""
    ids = list(question_ids)
    if not ids:
        raise ValueError("llm2_schema: question_ids is empty; at least one question is needed")
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"llm2_schema: question id {dup!r} appears twice; ids must be unique")
    answer_chars, evidence_chars = llm2_field_chars(ids)
    answer = {
        "type": "object",
        "additionalProperties": False,
        "required": ["answer", "evidence"],
        "properties": {
            "answer": {"type": "string", "maxLength": answer_chars},
            "evidence": {"type": "string", "maxLength": evidence_chars},
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["answers"],
        "properties": {
            "answers": {
                "type": "object",
                "additionalProperties": False,
                "required": ids,
                "properties": {qid: answer for qid in ids},
            }
        },
    }
