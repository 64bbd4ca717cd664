"""What a model's reply must satisfy beyond its JSON schema, and the shape stages read.

A schema-valid reply can still be unstorable: a grammar cannot say "each question id
once", and a number can be NaN, negative or wider than the store's Numeric(20, 6). These
checks run on every LLM reply after schema validation; a failure is the *model's* error
(worth a retry), never a storage error.

Rules:

1. LLM1 (`{"trades": [...]}`): at most `LLM1_MAX_TRADES` trades; quantity and price,
   when given, are finite, > 0 and below `MAX_AMOUNT`; symbol and trade_id at most
   `MAX_ID_CHARS` characters (the store's column widths).
2. LLM2 answers come keyed by question id (`{"answers": {"Q1": {"answer", "evidence"}}}`,
   the shape constrained decoding can only fill with each id once); the list form
   (`[{"question_id", "answer", "evidence"}]`) is accepted too. Either way every asked id
   is answered exactly once, no other id appears, and an answer is not blank.
3. `normalized_llm2` turns either form into the list stages consume, in question order.
4. Text the store keeps in a TEXT column (evidence, answers, a transcript segment) is at
   most `MAX_TEXT_CHARS` characters (MySQL's TEXT holds 65,535 bytes, 4 a character);
   side and order_type fit their columns (`MAX_SIDE_CHARS`, `MAX_ORDER_TYPE_CHARS`). An
   amount must also stay positive at the column's scale (`AMOUNT_SCALE` digits).
5. A transcription (`transcript_problems`): at most `MAX_SEGMENTS` segments and
   `MAX_TRANSCRIPT_CHARS` characters in all; each segment's start and end, when sent, are
   finite numbers >= 0 with end >= start; a duration, when sent, is finite and >= 0.
   (A reply's bytes are bounded where it is read: cofid.backends.remote_http.)

The widths mirror the store's columns; tests/security/test_hostile_values.py checks them
against cofid/store/tables.py so they cannot drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

LLM1_MAX_TRADES = 20
MAX_AMOUNT = 1e14  # Numeric(20, 6) holds 14 digits before the point
AMOUNT_SCALE = 6  # ... and 6 after it
MAX_ID_CHARS = 64
MAX_SIDE_CHARS = 8
MAX_ORDER_TYPE_CHARS = 16
MAX_TEXT_CHARS = 16_000
# What the LLM schemas let a model write into one free-text field (llm_schemas rule 3).
MAX_EVIDENCE_CHARS = 500
MAX_ANSWER_CHARS = 1000
# The longest LLM2 reply its schema admits, in characters (llm_schemas rule 5): every
# dialect's default max_tokens is 2048, and text runs at 3 or more characters per token,
# so a reply whose fields a model fills with words still closes before the token limit.
# It is a bound for text, not a guarantee: a degenerate loop ("-00-00-00…") runs near one
# character a token (measured: SmolLM2-135M on llama-server, 589 tokens for a 707-character
# reply, 500 of them one looping evidence string); such a reply is cut off, refused and retried with the refusal told to
# the model (retry_note). Measured: under llama-cpp-python SmolLM2 filled the earlier
# 10 × 1,500-character bounds and was cut off at 2048; at these bounds it was not.
LLM2_REPLY_CHARS = 6000
MIN_LLM2_FIELD_CHARS = 60  # below this an answer or its evidence is not worth a field
MAX_SEGMENTS = 10_000
MAX_TRANSCRIPT_CHARS = 500_000  # about 20 hours of speech; keeps GetCall under 4 MiB


def llm1_problems(data: Mapping[str, Any]) -> list[str]:
    """Why an LLM1 reply cannot be stored (rule 1); empty when it can."""
    trades = data.get("trades")
    if not isinstance(trades, list):
        return ["trades is not a list"]
    problems = []
    if len(trades) > LLM1_MAX_TRADES:
        problems.append(f"{len(trades)} trades, at most {LLM1_MAX_TRADES} allowed")
    for i, trade in enumerate(trades):
        if not isinstance(trade, Mapping):
            problems.append(f"trades[{i}] is not an object")
            continue
        for key in ("quantity", "price"):
            problem = _amount_problem(trade.get(key))
            if problem:
                problems.append(f"trades[{i}].{key} {problem}")
        for key, width in _TRADE_WIDTHS:
            value = trade.get(key)
            if isinstance(value, str) and len(value) > width:
                problems.append(f"trades[{i}].{key} is longer than {width} characters")
    return problems


_TRADE_WIDTHS = (
    ("symbol", MAX_ID_CHARS),
    ("trade_id", MAX_ID_CHARS),
    ("side", MAX_SIDE_CHARS),
    ("order_type", MAX_ORDER_TYPE_CHARS),
    ("evidence", MAX_TEXT_CHARS),
)


def _amount_problem(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"is not a number ({value!r})"
    if not math.isfinite(value):
        return "is not a finite number"
    if value <= 0:
        return f"is not positive ({value})"
    if value >= MAX_AMOUNT:
        return f"is too large ({value})"
    if round(value, AMOUNT_SCALE) <= 0:
        return f"rounds to 0 at {AMOUNT_SCALE} decimal places ({value})"
    return None


def _number_problem(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "is not a number"
    if not math.isfinite(value):
        return "is not a finite number"
    if value < 0:
        return f"is negative ({value})"
    return None


def transcript_problems(segments: Sequence[Mapping[str, Any]], duration: Any = None) -> list[str]:
    """Why a transcription cannot be stored (rule 5); empty when it can. Each segment is
    {"start", "end", "text"} as the server sent them (numbers already parsed from
    numeric strings, None when absent)."""
    problems = []
    if len(segments) > MAX_SEGMENTS:
        problems.append(f"{len(segments)} segments, at most {MAX_SEGMENTS} allowed")
        return problems  # one message, not ten thousand
    problem = _number_problem(duration)
    if problem:
        problems.append(f"duration {problem}")
    total = 0
    for i, segment in enumerate(segments):
        start, end, text = segment.get("start"), segment.get("end"), segment.get("text")
        for key, value in (("start", start), ("end", end)):
            problem = _number_problem(value)
            if problem:
                problems.append(f"segments[{i}].{key} {problem}")
        if _finite(start) and _finite(end) and end < start:
            problems.append(f"segments[{i}] ends ({end}) before it starts ({start})")
        if isinstance(text, str):
            total += len(text)
            if len(text) > MAX_TEXT_CHARS:
                problems.append(f"segments[{i}].text is longer than {MAX_TEXT_CHARS} characters")
        if len(problems) >= 10:
            problems.append("and maybe more")
            return problems
    if total > MAX_TRANSCRIPT_CHARS:
        problems.append(f"the text is {total} characters, at most {MAX_TRANSCRIPT_CHARS} allowed")
    return problems


def _finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def llm2_problems(data: Mapping[str, Any], question_ids: Sequence[str]) -> list[str]:
    """Why an LLM2 reply cannot be stored (rule 2); empty when it can."""
    try:
        answers = _answer_items(data)
    except ValueError as exc:
        return [str(exc)]
    asked = [str(qid) for qid in question_ids]
    problems = []
    seen: dict[str, int] = {}
    for qid, answer in answers:
        seen[qid] = seen.get(qid, 0) + 1
        if not isinstance(answer.get("answer"), str) or not answer["answer"].strip():
            problems.append(f"the answer to {qid!r} is blank")
        for key in ("answer", "evidence"):
            value = answer.get(key)
            if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
                problems.append(f"the {key} to {qid!r} is longer than {MAX_TEXT_CHARS} characters")
    twice = [qid for qid, n in seen.items() if n > 1]
    if twice:
        problems.append("question ids answered more than once: " + ", ".join(twice))
    if asked:
        missing = [qid for qid in asked if qid not in seen]
        unknown = [qid for qid in seen if qid not in asked]
        if missing:
            problems.append("questions not answered: " + ", ".join(missing))
        if unknown:
            problems.append("answers to questions not asked: " + ", ".join(unknown))
    return problems


def _answer_items(data: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    answers = data.get("answers")
    if isinstance(answers, Mapping):
        items = list(answers.items())
    elif isinstance(answers, list):
        items = [(a.get("question_id"), a) for a in answers if isinstance(a, Mapping)]
        if len(items) != len(answers):
            raise ValueError("an answer is not an object")
    else:
        raise ValueError("answers is neither an object nor a list")
    for qid, answer in items:
        if not isinstance(qid, str | int) or isinstance(qid, bool):
            raise ValueError(f"question id {qid!r} is not a string")
        if not isinstance(answer, Mapping):
            raise ValueError(f"the answer to {qid!r} is not an object")
    return [(str(qid) if isinstance(qid, int) else qid, a) for qid, a in items]


def normalized_llm2(data: Mapping[str, Any], question_ids: Sequence[str]) -> dict[str, Any]:
    """The reply with `answers` as [{question_id, answer, evidence}] in question order
    (rule 3). A list already is that shape and comes back as given."""
    answers = data.get("answers")
    if not isinstance(answers, Mapping):
        return dict(data)
    order = [qid for qid in question_ids if qid in answers]
    order += [qid for qid in answers if qid not in order]
    listed = [
        {
            "question_id": qid,
            "answer": answers[qid].get("answer"),
            "evidence": answers[qid].get("evidence"),
        }
        for qid in order
    ]
    return {**data, "answers": listed}


def keyed_llm2(answers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The list form keyed by question id: the reply shape of the LLM2 schema."""
    return {
        "answers": {
            str(a["question_id"]): {"answer": a["answer"], "evidence": a["evidence"]}
            for a in answers
        }
    }
