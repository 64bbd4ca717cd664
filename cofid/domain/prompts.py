"""What the LLM stages send: prompt templates, output schemas and the request builders.

LLM1 extracts the trades spoken in a call; LLM2 answers the audit questions. Both ask for
structured output: the reply must be one JSON object matching a strict JSON schema (the
`json_schema` response_format of OpenAI-compatible servers).

Rules:

1–2. The output schemas and their rules: cofid.domain.llm_schemas.
3. Templates are str.format_map strings over pre-rendered text. The placeholders are
   {transcript} {call_metadata} {trades} for llm1_* and, for llm2_*, also {questions}
   {extracted_trades}. Literal braces are written {{ and }}. Anything else — unknown keys,
   unknown placeholders, indexing, format specs, unbalanced braces — is refused up front.
4. A template mapping may override some keys; the rest come from DEFAULT_TEMPLATES.
5. The transcript renders one line per segment, "[mm:ss.s–mm:ss.s] text" (speaker first
   when known). Over max_chars it keeps whole lines from the head and the tail around a
   marker saying how many segments were left out; the result never exceeds max_chars
   (cofid.domain.transcript_render).
6. A request's `context` carries the raw inputs as plain JSON values (segments as
   {start, end, text[, speaker]}, trades as {trade_id, symbol, side, quantity, price,
   trade_time} with floats and ISO time strings) so a backend needs no prompt parsing.
7. `prepare_call` renders what LLM1 and LLM2 share (the transcript, the call metadata, the
   trades) once; a builder given a preparation of the very same input objects uses it,
   of any other it renders its own. Either way the request is the same, byte for byte.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cofid.domain.llm_schemas import (  # re-exported: the schemas are part of the request
    LLM1_SCHEMA,
    LLM1_SCHEMA_NAME,
    LLM2_SCHEMA_NAME,
    llm2_schema,
)
from cofid.domain.ports import ChatRequest
from cofid.domain.questions import Question
from cofid.domain.transcript_render import (
    RenderedTranscript,
    prepare_transcript,
    render_transcript,  # noqa: F401 - re-exported: the prompts' transcript
    segment_dict,  # noqa: F401 - re-exported
)

_LLM1_SYSTEM = """\
You extract stock and derivatives orders from the transcript of a recorded phone call \
between an Indian brokerage's dealer and a client. The call may be in English, Hindi or \
Hinglish (Hindi written in Latin script); the transcript comes from speech recognition and \
may misspell names and numbers.

Report every distinct order the client placed or confirmed in the call:
- symbol: the NSE symbol (e.g. INFY for Infosys, SBIN for State Bank); prefer the symbol \
of a booked trade when the call clearly refers to it; null when no instrument is named.
- side: "BUY" or "SELL" (kharid = buy, bech = sell); null when not said.
- quantity: the number of shares or lots as spoken, as a number; null when not said.
- price: the limit price in rupees as a number; null for market orders or when not said.
- order_type: "MARKET" or "LIMIT"; null when not said.
- trade_id: the trade_id of the booked trade this order corresponds to; null when none fits.
- evidence: the transcript sentence the order comes from, quoted exactly.

A read-back of the same order is not a new order. Do not guess: when the call contains no \
order, reply {{"trades": []}}. Reply with the JSON object only."""

_LLM1_USER = """\
Call metadata:
{call_metadata}

Trades booked for this call (from the trade file), one JSON object per line:
{trades}

Transcript:
{transcript}"""

_LLM2_SYSTEM = """\
You are a compliance auditor at an Indian brokerage. You read the transcript of a recorded \
trade-confirmation call between a dealer and a client (English, Hindi or Hinglish, from \
speech recognition) and answer audit questions about it.

Answer every question once, under its question_id \
({{"answers": {{"<question_id>": {{"answer": "...", "evidence": "..."}}}}}}):
- For the trade questions, state what was said (instrument; side and quantity; price and \
order type) and whether it matches a booked trade, e.g. "INFY — matches trade T1" or \
"BUY 100 — no matching trade"; answer "Not discussed" when the call does not say.
- For every other question answer "Yes" or "No".
- evidence: the transcript sentence that supports the answer, quoted exactly; an empty \
string when there is none.

Judge only from the transcript. Reply with the JSON object only."""

_LLM2_USER = """\
Questions (question_id: question):
{questions}

Call metadata:
{call_metadata}

Trades booked for this call (from the trade file), one JSON object per line:
{trades}

Orders extracted from the call, one JSON object per line:
{extracted_trades}

Transcript:
{transcript}"""

DEFAULT_TEMPLATES: Mapping[str, str] = {
    "llm1_system": _LLM1_SYSTEM,
    "llm1_user": _LLM1_USER,
    "llm2_system": _LLM2_SYSTEM,
    "llm2_user": _LLM2_USER,
}

_LLM1_FIELDS = frozenset({"transcript", "call_metadata", "trades"})
_LLM2_FIELDS = _LLM1_FIELDS | {"questions", "extracted_trades"}
_ALLOWED_FIELDS: Mapping[str, frozenset[str]] = {
    "llm1_system": _LLM1_FIELDS,
    "llm1_user": _LLM1_FIELDS,
    "llm2_system": _LLM2_FIELDS,
    "llm2_user": _LLM2_FIELDS,
}

_MIN_TRANSCRIPT_CHARS = 200
NONE_TEXT = "(none)"


def validate_templates(templates: Mapping[str, str], where: str) -> None:
    """Refuse a template mapping a render would trip over (rule 3)."""
    for key, template in templates.items():
        if key not in _ALLOWED_FIELDS:
            raise ValueError(
                f"{where}: unknown template key {key!r}; allowed keys: "
                f"{', '.join(_ALLOWED_FIELDS)}"
            )
        if not isinstance(template, str):
            raise ValueError(f"{where}.{key}: template must be a string, got {template!r}")
        allowed = _ALLOWED_FIELDS[key]
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ValueError(
                f"{where}.{key}: malformed template ({exc}); write literal braces as {{{{ }}}}"
            ) from None
        for _literal, field, spec, conversion in parsed:
            if field is None:
                continue
            if field not in allowed:
                raise ValueError(
                    f"{where}.{key}: unknown placeholder {{{field}}}; allowed: "
                    + ", ".join("{" + f + "}" for f in sorted(allowed))
                )
            if spec or conversion:
                raise ValueError(
                    f"{where}.{key}: placeholder {{{field}}} may not carry a format spec or "
                    f"conversion; write it as {{{field}}}"
                )


def trade_dict(trade: Mapping[str, Any]) -> dict[str, Any]:
    """A booked trade as the context and prompts carry it (rule 6)."""
    return {
        "trade_id": _text_or_none(trade.get("trade_id")),
        "symbol": _text_or_none(trade.get("symbol")),
        "side": _text_or_none(trade.get("side")),
        "quantity": _float_or_none(trade.get("quantity"), "quantity"),
        "price": _float_or_none(trade.get("price"), "price"),
        "trade_time": _time_or_none(trade.get("trade_time")),
    }


def extracted_trade_dict(trade: Mapping[str, Any]) -> dict[str, Any]:
    """An LLM1 trade (the LLM1 schema's item) with numbers as floats."""
    return {
        "symbol": _text_or_none(trade.get("symbol")),
        "side": _text_or_none(trade.get("side")),
        "quantity": _float_or_none(trade.get("quantity"), "quantity"),
        "price": _float_or_none(trade.get("price"), "price"),
        "order_type": _text_or_none(trade.get("order_type")),
        "trade_id": _text_or_none(trade.get("trade_id")),
        "evidence": str(trade.get("evidence") or ""),
    }


def question_dict(q: Question) -> dict[str, Any]:
    return {"id": q.id, "text": q.text, "kind": q.kind, "keywords": list(q.keywords)}


@dataclass(frozen=True)
class PreparedCall:
    """What LLM1's and LLM2's requests share, rendered once (rule 7): the inputs it was
    made from, the context's base entries and their placeholder texts. Read-only."""

    transcript: RenderedTranscript
    call_metadata: Mapping[str, Any] | None
    trades: Sequence[Mapping[str, Any]]
    context: Mapping[str, Any]
    values: Mapping[str, str]

    def made_from(
        self,
        transcript: Sequence[Any],
        call_metadata: Mapping[str, Any] | None,
        trades: Sequence[Mapping[str, Any]],
    ) -> bool:
        """Whether these are the very objects it was prepared from."""
        return (
            self.transcript.source is transcript
            and self.call_metadata is call_metadata
            and self.trades is trades
        )


def prepare_call(
    transcript: Sequence[Any],
    call_metadata: Mapping[str, Any] | None,
    trades: Sequence[Mapping[str, Any]],
) -> PreparedCall:
    rendered = prepare_transcript(transcript)
    metadata = None if call_metadata is None else _jsonable(call_metadata)
    trade_dicts = [trade_dict(t) for t in trades]
    values = {
        "transcript": rendered.text or NONE_TEXT,
        "call_metadata": (
            "\n".join(f"{k}: {_scalar_text(v)}" for k, v in metadata.items())
            if metadata
            else NONE_TEXT
        ),
        "trades": _json_lines(trade_dicts),
    }
    context = {"transcript": rendered.segments, "call_metadata": metadata, "trades": trade_dicts}
    return PreparedCall(rendered, call_metadata, trades, context, values)


def build_llm1_request(
    *,
    templates: Mapping[str, str] | None,
    transcript: Sequence[Any],
    call_metadata: Mapping[str, Any] | None,
    trades: Sequence[Mapping[str, Any]],
    prepared: PreparedCall | None = None,
) -> ChatRequest:
    p = _prepared(prepared, transcript, call_metadata, trades)
    values = {**p.values, "extracted_trades": NONE_TEXT, "questions": NONE_TEXT}
    t = _templates(templates)
    return ChatRequest(
        purpose="llm1",
        system=t["llm1_system"].format_map(values),
        user=t["llm1_user"].format_map(values),
        schema_name=LLM1_SCHEMA_NAME,
        schema=LLM1_SCHEMA,
        context=dict(p.context),
    )


def build_llm2_request(
    *,
    templates: Mapping[str, str] | None,
    transcript: Sequence[Any],
    call_metadata: Mapping[str, Any] | None,
    trades: Sequence[Mapping[str, Any]],
    extracted_trades: Sequence[Mapping[str, Any]],
    questions: Sequence[Question],
    prepared: PreparedCall | None = None,
) -> ChatRequest:
    if not questions:
        raise ValueError("build_llm2_request: questions is empty; at least one is needed")
    asked = _asked(tuple(questions))
    p = _prepared(prepared, transcript, call_metadata, trades)
    context = dict(p.context)
    context["extracted_trades"] = [extracted_trade_dict(t) for t in extracted_trades]
    context["questions"] = asked.dicts
    values = {
        **p.values,
        "extracted_trades": _json_lines(context["extracted_trades"]),
        "questions": asked.text,
    }
    t = _templates(templates)
    return ChatRequest(
        purpose="llm2",
        system=t["llm2_system"].format_map(values),
        user=t["llm2_user"].format_map(values),
        schema_name=LLM2_SCHEMA_NAME,
        schema=asked.schema,
        context=context,
    )


@dataclass(frozen=True)
class _Asked:
    """What an LLM2 request says of its questions: the schema, the context's question
    dicts and the prompt's question lines. Shared, read-only, by every request asking
    the same questions."""

    schema: dict[str, Any]
    dicts: list[dict[str, Any]]
    text: str


@functools.lru_cache(maxsize=64)
def _asked(questions: tuple[Question, ...]) -> _Asked:
    # Once per question set, not per call: a batch asks every call the same questions,
    # and building these for 30 questions took ~0.2 ms of every call's LLM2 request.
    return _Asked(
        schema=llm2_schema([q.id for q in questions]),
        dicts=[question_dict(q) for q in questions],
        text="\n".join(f"{q.id}: {q.text}" for q in questions) or NONE_TEXT,
    )


def _prepared(
    prepared: PreparedCall | None,
    transcript: Sequence[Any],
    call_metadata: Mapping[str, Any] | None,
    trades: Sequence[Mapping[str, Any]],
) -> PreparedCall:
    if prepared is not None and prepared.made_from(transcript, call_metadata, trades):
        return prepared
    return prepare_call(transcript, call_metadata, trades)


def _templates(templates: Mapping[str, str] | None) -> Mapping[str, str]:
    if not templates:
        return DEFAULT_TEMPLATES
    validate_templates(templates, "templates")
    return {**DEFAULT_TEMPLATES, **templates}


def _json_lines(items: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(json.dumps(i, ensure_ascii=False) for i in items) or NONE_TEXT


def _scalar_text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "null" if value is None else str(value)


def _jsonable(value: Any) -> Any:
    """Plain JSON values: datetimes as ISO strings, Decimals as floats."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _float_or_none(value: Any, name: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"trade {name}={value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"trade {name}={value!r} is not a number") from None
    if not math.isfinite(number):
        # NaN and infinity have no JSON spelling; a strict server would refuse the prompt.
        raise ValueError(f"trade {name}={value!r} is not a finite number")
    return number


def _time_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return _text_or_none(value)
