"""Audit questions: what LLM2 is asked about every call, and how a question set is configured.

A question set belongs to a (process_id, category_mapping_id) pair, the keys the seed's
auditAnswer rows carry. Each answer is stored under the question's stable `id`.

Rules:

1. A set has at least TRADE_QUESTION_COUNT questions, and its first three are the trade
   questions, in this order: instrument, side and quantity, price / order type. The llm2
   stage answers exactly these three with 'No trade data found' when a call has no trade.
2. Trade kinds appear only in those first three places.
3. Question ids are unique within a set, 1–64 characters of letters, digits, '_', '.', '-'.
4. "keywords" and "absence" questions carry at least one keyword. Keywords match
   case-insensitively on word boundaries: "record" matches "Record," but not "recorder".
   A "confirmation" question may carry keywords too: they replace the default words that
   count as the client's yes.
5. Config input is checked key by key; an error names where it came from, the key, the
   value and what is allowed. Unknown keys are errors, not silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

TRADE_KINDS: tuple[str, ...] = ("trade_instrument", "trade_side_quantity", "trade_price")
OTHER_KINDS: tuple[str, ...] = ("keywords", "absence", "confirmation", "readback")
KINDS: tuple[str, ...] = TRADE_KINDS + OTHER_KINDS
KEYWORD_KINDS: tuple[str, ...] = ("keywords", "absence")

TRADE_QUESTION_COUNT = 3

_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_QUESTION_KEYS = ("id", "text", "kind", "keywords")
_SET_KEYS = ("process_id", "category_mapping_id", "questions")


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    kind: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuestionSet:
    process_id: int
    category_mapping_id: int
    questions: tuple[Question, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(q.id for q in self.questions)


def keyword_pattern(keywords: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any keyword case-insensitively on word boundaries (rule 4).

    Spaces inside a keyword match any run of whitespace, so "being  recorded" still counts.
    Longer keywords are tried first so the match reports the most specific phrase.
    """
    words = sorted({k.strip() for k in keywords if k.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternatives = [r"\s+".join(re.escape(part) for part in w.split()) for w in words]
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def default_question_set(process_id: int = 1, category_mapping_id: int = 1) -> QuestionSet:
    """The shipped set for an Indian brokerage's trade-confirmation calls."""
    return QuestionSet(
        process_id=process_id,
        category_mapping_id=category_mapping_id,
        questions=_DEFAULT_QUESTIONS,
    )


_DEFAULT_QUESTIONS: tuple[Question, ...] = (
    Question(
        id="TRD_INSTRUMENT",
        text="Which instrument (scrip or contract) did the client trade?",
        kind="trade_instrument",
    ),
    Question(
        id="TRD_SIDE_QTY",
        text="Was the order a buy or a sell, and for what quantity?",
        kind="trade_side_quantity",
    ),
    Question(
        id="TRD_PRICE",
        text="At what price, and as which order type (market or limit), was the order placed?",
        kind="trade_price",
    ),
    Question(
        id="CMP_RECORDING_DISCLOSURE",
        text="Did the agent state that the call is recorded?",
        kind="keywords",
        keywords=(
            "record", "recorded", "recording", "being recorded", "call is recorded",
            "record ho rahi", "record ho raha", "record ki ja rahi", "recorded line",
        ),
    ),
    Question(
        id="CMP_AGENT_IDENTIFIED",
        text="Did the agent identify themselves and the brokerage?",
        kind="keywords",
        keywords=(
            "my name is", "calling from", "speaking from", "on behalf of",
            "mera naam", "main bol raha", "main bol rahi", "se bol raha", "se bol rahi",
        ),
    ),
    Question(
        id="CMP_CLIENT_IDENTIFIED",
        text=(
            "Did the agent verify the client's identity (name, client code or date of birth)?"
        ),
        kind="keywords",
        keywords=(
            "client code", "client id", "ucc", "date of birth", "dob", "your name",
            "full name", "registered mobile", "pan number", "aapka naam", "apna naam",
            "janam tithi", "client code bataiye",
        ),
    ),
    Question(
        id="CMP_ORDER_READBACK",
        text="Did the agent read the order back to the client (side, quantity, instrument)?",
        kind="readback",
    ),
    Question(
        id="CMP_CLIENT_CONFIRMATION",
        text="Did the client explicitly confirm the order after it was read back?",
        kind="confirmation",
        keywords=(
            "yes", "yeah", "yep", "confirm", "confirmed", "i confirm", "correct",
            "go ahead", "please proceed", "proceed", "haan", "haan ji", "ji haan", "ha ji",
            "theek hai", "thik hai", "sahi hai", "kar do", "kar dijiye",
        ),
    ),
    Question(
        id="CMP_NO_ASSURED_RETURNS",
        text="Did the agent avoid promising assured returns or guaranteed profit?",
        kind="absence",
        keywords=(
            "guaranteed", "guarantee", "assured return", "assured returns", "sure profit",
            "sure shot", "risk free", "risk-free", "no risk", "no loss", "fixed return",
            "fixed returns", "double your money", "pakka profit", "pakka munafa",
            "paisa double", "koi risk nahi", "nuksan nahi hoga",
        ),
    ),
    Question(
        id="CMP_RISK_DISCLOSURE",
        text="Did the agent mention that trading is subject to market risk?",
        kind="keywords",
        keywords=(
            "market risk", "market risks", "subject to market", "subject to risk",
            "risk involved", "risks involved", "risk disclosure", "can lose", "may lose",
            "jokhim", "bazaar jokhim", "nuksan ho sakta", "loss ho sakta",
        ),
    ),
)


def question_from_mapping(d: Mapping[str, Any], where: str) -> Question:
    """One question from config input (rules 3–5). `where` says where it came from."""
    if not isinstance(d, Mapping):
        raise ValueError(f"{where}: a question must be a table/object, got {d!r}")
    unknown = sorted(set(d) - set(_QUESTION_KEYS))
    if unknown:
        raise ValueError(
            f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(_QUESTION_KEYS)}"
        )
    qid = _required(d, "id", where)
    if not isinstance(qid, str) or not _ID_RE.fullmatch(qid):
        raise ValueError(
            f"{where}: id={qid!r} is not allowed; use 1-64 letters, digits, '_', '.', '-'"
        )
    text = _required(d, "text", where)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: text={text!r} is not allowed; use a non-empty string")
    kind = _required(d, "kind", where)
    if kind not in KINDS:
        raise ValueError(f"{where}: kind={kind!r} is not allowed; use one of {', '.join(KINDS)}")
    raw_keywords = d.get("keywords", ())
    if isinstance(raw_keywords, str) or not isinstance(raw_keywords, list | tuple):
        raise ValueError(
            f"{where}: keywords={raw_keywords!r} is not allowed; use a list of strings"
        )
    for k in raw_keywords:
        if not isinstance(k, str) or not k.strip():
            raise ValueError(
                f"{where}: keywords contains {k!r}; every keyword must be a non-empty string"
            )
    keywords = tuple(k.strip() for k in raw_keywords)
    if kind in KEYWORD_KINDS and not keywords:
        raise ValueError(
            f"{where}: keywords=[] is not allowed for kind={kind!r}; give at least one keyword"
        )
    return Question(id=qid, text=text.strip(), kind=kind, keywords=keywords)


def question_set_from_mapping(d: Mapping[str, Any], where: str) -> QuestionSet:
    """A question set from config input (rules 1–5)."""
    if not isinstance(d, Mapping):
        raise ValueError(f"{where}: a question set must be a table/object, got {d!r}")
    unknown = sorted(set(d) - set(_SET_KEYS))
    if unknown:
        raise ValueError(
            f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(_SET_KEYS)}"
        )
    process_id = _non_negative_int(d, "process_id", where)
    category_mapping_id = _non_negative_int(d, "category_mapping_id", where)
    raw = _required(d, "questions", where)
    if isinstance(raw, str | bytes) or not isinstance(raw, list | tuple) or not raw:
        raise ValueError(
            f"{where}: questions={raw!r} is not allowed; use a non-empty list of questions"
        )
    questions = tuple(
        question_from_mapping(item, f"{where}.questions[{i}]") for i, item in enumerate(raw)
    )
    seen: set[str] = set()
    for i, q in enumerate(questions):
        if q.id in seen:
            raise ValueError(
                f"{where}.questions[{i}]: id={q.id!r} is not allowed; ids must be unique"
            )
        seen.add(q.id)
    if len(questions) < TRADE_QUESTION_COUNT:
        raise ValueError(
            f"{where}: questions has {len(questions)} entries; the first "
            f"{TRADE_QUESTION_COUNT} must be the trade questions ({', '.join(TRADE_KINDS)})"
        )
    for i, q in enumerate(questions):
        expected = TRADE_KINDS[i] if i < TRADE_QUESTION_COUNT else None
        if expected is not None and q.kind != expected:
            raise ValueError(
                f"{where}.questions[{i}]: kind={q.kind!r} is not allowed here; question "
                f"{i + 1} must be kind={expected!r} (order: {', '.join(TRADE_KINDS)})"
            )
        if expected is None and q.kind in TRADE_KINDS:
            raise ValueError(
                f"{where}.questions[{i}]: kind={q.kind!r} is not allowed here; trade kinds "
                f"belong only to the first {TRADE_QUESTION_COUNT} questions; use one of "
                f"{', '.join(OTHER_KINDS)}"
            )
    return QuestionSet(
        process_id=process_id, category_mapping_id=category_mapping_id, questions=questions
    )


def _required(d: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise ValueError(f"{where}: missing required key {key!r}")
    return d[key]


def _non_negative_int(d: Mapping[str, Any], key: str, where: str) -> int:
    value = _required(d, key, where)
    # bool is an int subclass; `process_id = true` is a config mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: {key}={value!r} is not allowed; use an integer >= 0")
    return value
