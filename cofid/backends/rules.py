"""`rules`: a deterministic rule engine behind the chat interface.

It answers LLM1 (trade extraction) and LLM2 (audit questions) requests from the request's
structured `context`, never from the prompt text, with the trade grammar and keyword rules
of cofid.domain. It is the offline baseline (no small LLM runs on the CPU here) and the
test oracle: same input, same answer, every time.

How it answers:

- llm1: trade_grammar.extract_trades over the transcript, with the booked trades' symbols
  as known symbols. An extracted trade takes the trade_id of a booked trade with the same
  symbol and side, and the same quantity when both are known (an unused one first).
  At most LLM1_MAX_TRADES (the schema's maxItems) are reported, the first ones.
- llm2, one answer per question, in the question order:
  * trade_instrument / trade_side_quantity / trade_price: each extracted trade against the
    booked trades, e.g. "INFY — matches trade T1", "BUY 100 INFY — no matching trade";
    "Not discussed" when no extracted trade says it. Prices match within PRICE_TOLERANCE
    of the booked price; a market order matches any price.
  * keywords: "Yes" with the first sentence holding a keyword, else "No".
  * absence: "Yes" when no sentence holds a keyword, else "No" with that sentence.
  * confirmation: "Yes" when one of the CONFIRM_WINDOW sentences after a sentence that
    states a trade (itself stating none) holds a yes-word (the question's keywords, else
    DEFAULT_CONFIRM_WORDS) and no refusal ("no", "nahi", "cancel", ...).
  * readback: "Yes" when a later sentence restates an earlier one's side, quantity and
    symbol.
- Every reply is validated against the request's schema before it is returned (LLM2's
  in the schema's keyed-by-question-id shape; the stage gets the list form).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cofid.backends.base import ChatRequest, ChatResult, PermanentBackendError
from cofid.backends.json_schema import SchemaViolation, validate
from cofid.domain.llm_schemas import llm2_field_chars
from cofid.domain.questions import keyword_pattern
from cofid.domain.replies import (
    LLM1_MAX_TRADES,
    MAX_EVIDENCE_CHARS,
    keyed_llm2,
)
from cofid.domain.trade_grammar import (
    ExtractedTrade,
    canonical_symbol,
    extract_trades,
    split_sentences,
)

NOT_DISCUSSED = "Not discussed"
YES = "Yes"
NO = "No"
PRICE_TOLERANCE = 0.01  # spoken prices are rounded: 1% of the booked price still matches
CONFIRM_WINDOW = 3
DEFAULT_CONFIRM_WORDS = (
    "yes", "yeah", "yep", "confirm", "confirmed", "correct", "go ahead", "proceed",
    "haan", "haan ji", "ji haan", "ha ji", "theek hai", "thik hai", "sahi hai",
)
_REFUSAL = keyword_pattern(
    ("no", "not", "don't", "dont", "nahi", "nahin", "mat", "cancel", "ruko")
)


class RulesChat:
    """The deterministic rule engine: the offline baseline and test oracle for LLM1/LLM2."""

    name = "rules"

    async def complete(self, request: ChatRequest) -> ChatResult:
        context = request.context
        if request.purpose == "llm1":
            data = llm1_reply(context)
            summary = {"trades": len(data["trades"])}
        elif request.purpose == "llm2":
            listed = llm2_reply(context)
            summary = {"answers": len(listed["answers"])}
            # Checked in the schema's keyed shape, handed to the stage as the list.
            data = keyed_llm2(listed["answers"])
        else:
            raise PermanentBackendError(
                f"rules backend: purpose {request.purpose!r} is not one of 'llm1', 'llm2'"
            )
        try:
            validate(data, request.schema)
        except SchemaViolation as exc:
            # The same input gives the same reply: a retry cannot help.
            raise PermanentBackendError(
                f"rules backend: reply does not match schema {request.schema_name!r}: {exc}",
                details={"schema_name": request.schema_name},
            ) from exc
        if request.purpose == "llm2":
            data = listed
        return ChatResult(
            data=data,
            request={
                "backend": self.name,
                "purpose": request.purpose,
                "schema_name": request.schema_name,
                "segments": len(context.get("transcript") or ()),
                "trades": len(context.get("trades") or ()),
                "questions": len(context.get("questions") or ()),
            },
            response={"backend": self.name, "schema_name": request.schema_name, **summary},
        )


def llm1_reply(context: Mapping[str, Any]) -> dict[str, Any]:
    """The LLM1 reply ({"trades": [...]}) for a request context."""
    booked = _booked(context)
    known = _known_symbols(booked)
    used: set[int] = set()
    trades = []
    for t in extract_trades(transcript_text(context.get("transcript") or ()), known):
        item = t.to_dict()
        item["evidence"] = _evidence(t.evidence)
        index = _assign_booked(t, booked, used)
        if index is not None:
            used.add(index)
            item["trade_id"] = booked[index]["trade_id"]
        trades.append(item)
    # The schema's maxItems (cofid.domain.replies.LLM1_MAX_TRADES): the first ones are kept.
    return {"trades": trades[:LLM1_MAX_TRADES]}


def llm2_reply(context: Mapping[str, Any]) -> dict[str, Any]:
    """The LLM2 reply ({"answers": [...]}, one per question, in order) for a request context."""
    booked = _booked(context)
    known = _known_symbols(booked)
    text = transcript_text(context.get("transcript") or ())
    sentences = split_sentences(text)
    raw_extracted = context.get("extracted_trades")
    extracted = (
        [_as_extracted(t) for t in raw_extracted]
        if raw_extracted is not None
        else extract_trades(text, known)
    )
    questions = list(context.get("questions") or ())
    # The bounds the request's schema sets for this many questions (llm_schemas rule 5).
    answer_chars, evidence_chars = llm2_field_chars([str(q["id"]) for q in questions])
    answers = []
    for q in questions:
        answer, evidence = _answer(q, extracted, booked, sentences, known)
        answers.append(
            {"question_id": q["id"], "answer": _bounded(answer, answer_chars),
             "evidence": _evidence(evidence, evidence_chars)}
        )
    return {"answers": answers}


def transcript_text(segments: Sequence[Mapping[str, Any]]) -> str:
    """The transcript as text: segments joined by spaces, a line break where the speaker
    changes (a new speaker's turn starts a new sentence even without punctuation)."""
    parts: list[str] = []
    previous_speaker = None
    for seg in segments:
        text = " ".join(str(seg.get("text", "")).split())
        if not text:
            continue
        speaker = seg.get("speaker")
        if parts:
            parts.append("\n" if speaker != previous_speaker else " ")
        parts.append(text)
        previous_speaker = speaker
    return "".join(parts)


def _answer(
    q: Mapping[str, Any],
    extracted: list[ExtractedTrade],
    booked: list[dict[str, Any]],
    sentences: list[str],
    known: Mapping[str, str],
) -> tuple[str, str]:
    kind = q.get("kind")
    keywords = tuple(q.get("keywords") or ())
    if kind == "trade_instrument":
        return _trade_answer(extracted, booked, _instrument_label, _instrument_match)
    if kind == "trade_side_quantity":
        return _trade_answer(extracted, booked, _side_qty_label, _side_qty_match)
    if kind == "trade_price":
        return _trade_answer(extracted, booked, _price_label, _price_match)
    if kind in ("keywords", "absence"):
        pattern = keyword_pattern(keywords)
        hit = next((s for s in sentences if pattern and pattern.search(s)), None)
        if kind == "keywords":
            return (YES, hit) if hit else (NO, "")
        return (NO, hit) if hit else (YES, "")
    if kind == "confirmation":
        hit = _confirmation(sentences, keywords or DEFAULT_CONFIRM_WORDS, known)
        return (YES, hit) if hit else (NO, "")
    if kind == "readback":
        hit = _readback(sentences, known)
        return (YES, hit) if hit else (NO, "")
    raise PermanentBackendError(
        f"rules backend: question {q.get('id')!r} has unknown kind {kind!r}"
    )


def _trade_answer(
    extracted: list[ExtractedTrade],
    booked: list[dict[str, Any]],
    label: Callable[[ExtractedTrade], str | None],
    matches: Callable[[ExtractedTrade, Mapping[str, Any]], bool],
) -> tuple[str, str]:
    parts: list[str] = []
    evidence: list[str] = []
    for t in extracted:
        text = label(t)
        if text is None:
            continue
        hit = next((b for b in _prefer_id(booked, t.trade_id) if matches(t, b)), None)
        verdict = "no matching trade"
        if hit is not None:
            verdict = f"matches trade {hit['trade_id'] or hit['symbol']}"
        part = f"{text} — {verdict}"
        if part not in parts:
            parts.append(part)
        if t.evidence and t.evidence not in evidence:
            evidence.append(t.evidence)
    if not parts:
        return NOT_DISCUSSED, ""
    return "; ".join(parts), " | ".join(evidence)


def _instrument_label(t: ExtractedTrade) -> str | None:
    return t.symbol


def _instrument_match(t: ExtractedTrade, b: Mapping[str, Any]) -> bool:
    return t.symbol is not None and t.symbol == b["canonical"]


def _side_qty_label(t: ExtractedTrade) -> str | None:
    if t.side is None and t.quantity is None:
        return None
    words = [t.side or "side?", _number(t.quantity) if t.quantity is not None else "qty?"]
    if t.symbol:
        words.append(t.symbol)
    return " ".join(words)


def _side_qty_match(t: ExtractedTrade, b: Mapping[str, Any]) -> bool:
    return (
        (t.symbol is None or t.symbol == b["canonical"])
        and (t.side is None or t.side == b["side"])
        and (t.quantity is None or _same_number(t.quantity, b["quantity"]))
    )


def _price_label(t: ExtractedTrade) -> str | None:
    if t.price is None and t.order_type is None:
        return None
    words = [_number(t.price)] if t.price is not None else []
    words.append(t.order_type or "")
    if t.symbol:
        words.append(t.symbol)
    return " ".join(w for w in words if w)


def _price_match(t: ExtractedTrade, b: Mapping[str, Any]) -> bool:
    if t.symbol is not None and t.symbol != b["canonical"]:
        return False
    if t.side is not None and b["side"] is not None and t.side != b["side"]:
        return False
    if t.price is None:
        return t.order_type == "MARKET"
    booked = b["price"]
    return booked is not None and abs(t.price - booked) <= PRICE_TOLERANCE * abs(booked)


def _confirmation(
    sentences: list[str], words: Sequence[str], known: Mapping[str, str]
) -> str | None:
    affirm = keyword_pattern(words)
    if affirm is None:
        return None
    since_trade: int | None = None  # sentences since the last one that stated a trade
    for sentence in sentences:
        if extract_trades(sentence, known):
            # A sentence that states a trade is a (re)statement, not the client's reply,
            # even when it says "confirm": the reply must come after it.
            since_trade = 0
            continue
        if since_trade is None or since_trade >= CONFIRM_WINDOW:
            continue
        since_trade += 1
        if affirm.search(sentence) and not (_REFUSAL and _REFUSAL.search(sentence)):
            return sentence
    return None


def _readback(sentences: list[str], known: Mapping[str, str]) -> str | None:
    stated: set[tuple[Any, ...]] = set()
    for sentence in sentences:
        keys = {
            (t.symbol, t.side, t.quantity)
            for t in extract_trades(sentence, known)
            if t.symbol and t.side and t.quantity is not None
        }
        if keys & stated:
            return sentence
        stated |= keys
    return None


def _booked(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The booked trades with canonical symbol and side, for comparisons."""
    out = []
    for t in context.get("trades") or ():
        symbol = t.get("symbol")
        out.append(
            {
                "trade_id": t.get("trade_id"),
                "symbol": symbol,
                "canonical": canonical_symbol(str(symbol)) if symbol else None,
                "side": _side(t.get("side")),
                "quantity": _float(t.get("quantity")),
                "price": _float(t.get("price")),
            }
        )
    return out


def _known_symbols(booked: list[dict[str, Any]]) -> dict[str, str]:
    return {b["symbol"]: b["canonical"] for b in booked if b["symbol"] and b["canonical"]}


def _assign_booked(
    t: ExtractedTrade, booked: list[dict[str, Any]], used: set[int]
) -> int | None:
    candidates = [
        i
        for i, b in enumerate(booked)
        if t.symbol is not None
        and t.symbol == b["canonical"]
        and t.side == b["side"]
        and (t.quantity is None or b["quantity"] is None or _same_number(t.quantity, b["quantity"]))
    ]
    fresh = [i for i in candidates if i not in used]
    pool = fresh or candidates
    return pool[0] if pool else None


def _prefer_id(booked: list[dict[str, Any]], trade_id: str | None) -> list[dict[str, Any]]:
    if trade_id is None:
        return booked
    return sorted(booked, key=lambda b: b["trade_id"] != trade_id)


def _as_extracted(t: Mapping[str, Any]) -> ExtractedTrade:
    symbol = t.get("symbol")
    return ExtractedTrade(
        symbol=canonical_symbol(str(symbol)) if symbol else None,
        side=_side(t.get("side")),
        quantity=_float(t.get("quantity")),
        price=_float(t.get("price")),
        order_type=(str(t["order_type"]).upper() if t.get("order_type") else None),
        trade_id=t.get("trade_id"),
        evidence=str(t.get("evidence") or ""),
    )


def _side(value: Any) -> str | None:
    # Trade files spell sides "B"/"S", "Buy"/"Sell" or "BUY"/"SELL".
    text = str(value or "").strip().upper()
    if text.startswith("B"):
        return "BUY"
    if text.startswith("S"):
        return "SELL"
    return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _same_number(a: float, b: float | None) -> bool:
    return b is not None and abs(a - b) < 1e-6


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")


def _evidence(text: str | None, limit: int = MAX_EVIDENCE_CHARS) -> str:
    return _bounded(" ".join((text or "").split()), limit)


def _bounded(text: str, limit: int) -> str:
    """`text` within the schema's maxLength, cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
