"""The prompt builders as they were before the rendering was cached and sped up (commit
8567db1), kept verbatim as the reference the new builders must equal byte for byte.

Only the module docstring is changed; everything below it is the old cofid/domain/prompts.py.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import string
from collections.abc import Mapping, Sequence
from typing import Any

from cofid.domain.llm_schemas import (  # re-exported: the schemas are part of the request
    LLM1_SCHEMA,
    LLM1_SCHEMA_NAME,
    LLM2_SCHEMA_NAME,
    llm2_schema,
)
from cofid.domain.ports import ChatRequest
from cofid.domain.questions import Question

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


def render_transcript(segments: Sequence[Any], max_chars: int = 24000) -> str:
    """Timestamped transcript lines, shortened to max_chars around the middle (rule 5)."""
    if max_chars < _MIN_TRANSCRIPT_CHARS:
        raise ValueError(
            f"render_transcript: max_chars={max_chars} is too small; use >= "
            f"{_MIN_TRANSCRIPT_CHARS}"
        )
    lines = [_segment_line(segment_dict(s)) for s in segments]
    full = "\n".join(lines)
    if len(full) <= max_chars:
        return full
    # Reserve room for the widest marker this transcript can need (characters ≥ lines).
    reserve = len(_marker_chars(len(full))) + 2
    budget = (max_chars - reserve) // 2
    head: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > budget:
            break
        head.append(line)
        used += len(line) + 1
    tail: list[str] = []
    used = 0
    for line in reversed(lines[len(head) :]):
        if used + len(line) + 1 > budget:
            break
        tail.append(line)
        used += len(line) + 1
    tail.reverse()
    if not head or not tail:
        # A single line longer than the budget: cut characters instead of whole lines.
        marker = _marker_chars(len(full) - 2 * budget)
        return full[:budget] + "\n" + marker + "\n" + full[len(full) - budget :]
    omitted = len(lines) - len(head) - len(tail)
    return "\n".join([*head, _marker(omitted), *tail])


def _marker(omitted: int) -> str:
    return f"[… {omitted} segments omitted …]"


def _marker_chars(omitted: int) -> str:
    return f"[… {omitted} characters omitted …]"


def _segment_line(seg: Mapping[str, Any]) -> str:
    speaker = seg.get("speaker")
    prefix = f"{speaker}: " if speaker else ""
    text = " ".join(str(seg.get("text", "")).split())
    return f"[{_clock(seg['start'])}–{_clock(seg['end'])}] {prefix}{text}"


def _clock(seconds: float) -> str:
    tenths = round(float(seconds) * 10)
    minutes, tenths = divmod(tenths, 600)
    return f"{minutes:02d}:{tenths // 10:02d}.{tenths % 10}"


def segment_dict(segment: Any) -> dict[str, Any]:
    """A transcript segment (a Mapping or a domain.ports.Segment) as a plain dict."""
    if isinstance(segment, Mapping):
        src = segment
    else:
        src = {k: getattr(segment, k, None) for k in ("start", "end", "text", "speaker")}
    for key in ("start", "end", "text"):
        if src.get(key) is None:
            raise ValueError(f"transcript segment {segment!r} lacks {key!r}")
    out: dict[str, Any] = {
        "start": float(src["start"]),
        "end": float(src["end"]),
        "text": str(src["text"]),
    }
    if src.get("speaker"):
        out["speaker"] = str(src["speaker"])
    return out


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


def build_llm1_request(
    *,
    templates: Mapping[str, str] | None,
    transcript: Sequence[Any],
    call_metadata: Mapping[str, Any] | None,
    trades: Sequence[Mapping[str, Any]],
) -> ChatRequest:
    context = _base_context(transcript, call_metadata, trades)
    values = _rendered(context)
    t = _templates(templates)
    return ChatRequest(
        purpose="llm1",
        system=t["llm1_system"].format_map(values),
        user=t["llm1_user"].format_map(values),
        schema_name=LLM1_SCHEMA_NAME,
        schema=LLM1_SCHEMA,
        context=context,
    )


def build_llm2_request(
    *,
    templates: Mapping[str, str] | None,
    transcript: Sequence[Any],
    call_metadata: Mapping[str, Any] | None,
    trades: Sequence[Mapping[str, Any]],
    extracted_trades: Sequence[Mapping[str, Any]],
    questions: Sequence[Question],
) -> ChatRequest:
    if not questions:
        raise ValueError("build_llm2_request: questions is empty; at least one is needed")
    schema = llm2_schema([q.id for q in questions])
    context = _base_context(transcript, call_metadata, trades)
    context["extracted_trades"] = [extracted_trade_dict(t) for t in extracted_trades]
    context["questions"] = [question_dict(q) for q in questions]
    values = _rendered(context)
    t = _templates(templates)
    return ChatRequest(
        purpose="llm2",
        system=t["llm2_system"].format_map(values),
        user=t["llm2_user"].format_map(values),
        schema_name=LLM2_SCHEMA_NAME,
        schema=schema,
        context=context,
    )


def _templates(templates: Mapping[str, str] | None) -> dict[str, str]:
    if not templates:
        return dict(DEFAULT_TEMPLATES)
    validate_templates(templates, "templates")
    return {**DEFAULT_TEMPLATES, **templates}


def _base_context(
    transcript: Sequence[Any],
    call_metadata: Mapping[str, Any] | None,
    trades: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    return {
        "transcript": [segment_dict(s) for s in transcript],
        "call_metadata": None if call_metadata is None else _jsonable(call_metadata),
        "trades": [trade_dict(t) for t in trades],
    }


def _rendered(context: Mapping[str, Any]) -> dict[str, str]:
    """Every placeholder's text; llm1 templates simply never ask for the llm2 ones."""
    metadata = context["call_metadata"]
    questions = context.get("questions", [])
    return {
        "transcript": render_transcript(context["transcript"]) or NONE_TEXT,
        "call_metadata": (
            "\n".join(f"{k}: {_scalar_text(v)}" for k, v in metadata.items())
            if metadata
            else NONE_TEXT
        ),
        "trades": _json_lines(context["trades"]),
        "extracted_trades": _json_lines(context.get("extracted_trades", [])),
        "questions": "\n".join(f"{q['id']}: {q['text']}" for q in questions) or NONE_TEXT,
    }


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
