"""The verdict for one booked trade: does a recorded call show the client asked for it?

Pure: no I/O. The caller (the verdict stage, the lead's wiring) brings the booked trade,
the triaging outcome, the mapped call's state, its LLM1 trades and its transcript.

Rules, applied in this order; the first that fits decides:

1. pending: triaging has not run yet, so nobody knows which call (if any) the trade has.
2. no_call: triaging ran and mapped the trade to no call.
3. call_unusable: the mapped call has no call row (no recording in the batch); or it
   failed a stage the verdict depends on (denoise, ivr, lid, stt, llm1; a failed llm2
   does not matter, the verdict reads only the transcript and LLM1); or it is ShortCall or
   UnsupportedLanguage. The reason names the stage or the status.
4. pending: LLM1 has not run for the call (status Pending or TranscriptDone, or no LLM1
   output yet).
5. mismatch, "the call states no order": LLM1 found no trade in the call.
6. The best heard order: every LLM1 trade is compared with the booked trade field by
   field (verdict_fields F1–F5). The best has the most weight of agreeing fields (symbol
   16, side 8, quantity 4, price 2, order type 1: each outweighs all below it); ties go
   to one whose trade_id is the booked trade's,
   then to a confirmed one, then to the first. With several booked trades on one call
   (decide_call) each heard order backs at most one booked trade: pairs are taken best
   first; a booked trade left with none is judged against its best order anyway, and
   is a mismatch ("the order heard already backs trade X") when that order agrees.
7. mismatch: a field of the best order disagrees; the reason lists each such field,
   booked vs heard.
8. mismatch: every field agrees but the call does not confirm the order (verdict_confirm
   C2–C5): it is only mentioned, refused, cancelled, or no transcript sentence states it.
   Decision: a mention is not evidence that the client placed the order, so a person
   must look ("not confirmed: ...").
9. confirmed: every field agrees and the order is read back (or stated) and the client
   says yes: "yes", "haan", "ji haan", "theek hai", "confirm", ...
10. Evidence (C6): for confirmed and mismatch, the segments that state the best order and
    the reply, with their start and end seconds; none for the other verdicts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cofid.domain.model import CallStatus, Stage
from cofid.domain.trade_words import LIMIT, MARKET
from cofid.domain.verdict_confirm import CONFIRMED, Confirmation, confirmation, sentences_of
from cofid.domain.verdict_fields import (
    FieldCheck,
    HeardTrade,
    VerdictRules,
    check_order_type,
    check_price,
    check_quantity,
    check_side,
    check_symbol,
    heard_from_llm1,
    normalize_symbol,
)

V_CONFIRMED = "confirmed"
V_MISMATCH = "mismatch"
V_NO_CALL = "no_call"
V_CALL_UNUSABLE = "call_unusable"
V_PENDING = "pending"
VERDICTS = (V_CONFIRMED, V_MISMATCH, V_NO_CALL, V_CALL_UNUSABLE, V_PENDING)
NEEDS_A_PERSON = (V_MISMATCH, V_NO_CALL, V_CALL_UNUSABLE)

DEFAULT_RULES = VerdictRules()

# Stages whose failure leaves nothing to judge (rule 3).
_VERDICT_STAGES = frozenset({Stage.DENOISE, Stage.IVR, Stage.LID, Stage.STT, Stage.LLM1})
_UNUSABLE_STATUSES = frozenset({CallStatus.SHORT_CALL, CallStatus.UNSUPPORTED_LANGUAGE})
_BEFORE_LLM1 = frozenset({CallStatus.PENDING, CallStatus.TRANSCRIPT_DONE})
_MARKET_RE = re.compile(r"\bmarket\b(?!\s+risks?\b)", re.IGNORECASE)
_WEIGHTS = {"symbol": 16, "side": 8, "quantity": 4, "price": 2, "order_type": 1}


@dataclass(frozen=True)
class BookedTrade:
    """A row of the trade file (tradeMetadata), as the verdict needs it."""

    trade_id: str
    symbol: str
    side: str
    quantity: float
    price: float | None
    order_type: str | None = None  # MARKET | LIMIT when the trade file says
    trade_time: datetime | None = None


@dataclass(frozen=True)
class MappingOutcome:
    """What triaging said about the trade."""

    audio_name: str | None  # the mapped call; None: none (yet)
    triaging_ran: bool


@dataclass(frozen=True)
class CallState:
    """The mapped call's progress (call.status, fileDistribution.failedStage)."""

    status: str
    failed_stage: str | None = None


@dataclass(frozen=True)
class EvidenceSegment:
    start: float
    end: float
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text}


@dataclass(frozen=True)
class Verdict:
    trade_id: str
    audio_name: str | None
    verdict: str  # one of VERDICTS
    fields: Mapping[str, FieldCheck] = field(default_factory=dict)
    evidence: tuple[EvidenceSegment, ...] = ()
    reason: str = ""

    def fields_json(self) -> dict[str, Any]:
        return {name: check.to_json() for name, check in self.fields.items()}

    def evidence_json(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.evidence]


def decide_verdict(
    trade: BookedTrade,
    mapping: MappingOutcome,
    call: CallState | None,
    extracted: Sequence[Mapping[str, Any]] | None,
    segments: Sequence[Mapping[str, Any]],
    rules: VerdictRules = DEFAULT_RULES,
) -> Verdict:
    """The verdict for one booked trade (rules 1–10). `extracted` is LLM1's trade list
    (None: no LLM1 output); `segments` are {start, end, text[, speaker]}."""
    return decide_call([trade], mapping, call, extracted, segments, rules)[0]


def decide_call(
    trades: Sequence[BookedTrade],
    mapping: MappingOutcome,
    call: CallState | None,
    extracted: Sequence[Mapping[str, Any]] | None,
    segments: Sequence[Mapping[str, Any]],
    rules: VerdictRules = DEFAULT_RULES,
) -> list[Verdict]:
    """The verdicts of the booked trades that share one mapping outcome (one call, or
    none), in the order given; a heard order backs at most one of them (rule 6)."""
    audio = mapping.audio_name
    early = _before_matching(mapping, call, extracted)
    if early is not None:
        verdict, reason = early
        return [Verdict(t.trade_id, audio, verdict, reason=reason) for t in trades]
    assert extracted is not None  # _before_matching returns pending otherwise
    heard = [heard_from_llm1(item, i, rules) for i, item in enumerate(extracted)]
    if not heard:
        return [
            Verdict(t.trade_id, audio, V_MISMATCH, _fields_unheard(t),
                    reason="the call states no order (LLM1 found no trade)")
            for t in trades
        ]
    known = _known_symbols(trades, rules)
    sentences = sentences_of(segments, known)
    confirmations = [confirmation(h, sentences, rules) for h in heard]
    heard = [_market_checked(h, c, segments) for h, c in zip(heard, confirmations, strict=True)]
    checks = [[_compare(t, h, rules) for h in heard] for t in trades]
    assigned = _assign(trades, heard, checks, confirmations)
    out: list[Verdict] = []
    for ti, trade in enumerate(trades):
        hi, backs = assigned[ti]
        fields = checks[ti][hi]
        conf = confirmations[hi]
        evidence = tuple(_segment(segments[i]) for i in conf.segments)
        verdict, reason = _judge(fields, conf, backs)
        out.append(Verdict(trade.trade_id, audio, verdict, fields, evidence, reason))
    return out


def _before_matching(
    mapping: MappingOutcome, call: CallState | None, extracted: Sequence[Any] | None
) -> tuple[str, str] | None:
    """Rules 1–4: the verdict when there is nothing to match yet, else None."""
    if mapping.audio_name is None:
        if not mapping.triaging_ran:
            return V_PENDING, "triaging has not run"
        return V_NO_CALL, "triaging mapped the trade to no call"
    if call is None:
        return V_CALL_UNUSABLE, f"call {mapping.audio_name} has no recording in the batch"
    if call.failed_stage and call.failed_stage in _VERDICT_STAGES:
        return V_CALL_UNUSABLE, f"the call failed stage {call.failed_stage}"
    if call.status in _UNUSABLE_STATUSES:
        return V_CALL_UNUSABLE, f"the call is {call.status}"
    if call.status in _BEFORE_LLM1 or extracted is None:
        return V_PENDING, f"LLM1 has not run for the call (status {call.status})"
    return None


def _market_checked(
    heard: HeardTrade, conf: Confirmation, segments: Sequence[Mapping[str, Any]]
) -> HeardTrade:
    """A MARKET order heard with a price stays MARKET only when a segment stating it says
    "market" (F4): else "market" came from elsewhere ("subject to market risk") and the
    price is compared as a limit."""
    if heard.order_type != MARKET or heard.price is None:
        return heard
    if any(_MARKET_RE.search(str(segments[i].get("text") or "")) for i in conf.segments):
        return heard
    return replace(heard, order_type=LIMIT)


def _compare(trade: BookedTrade, heard: HeardTrade, rules: VerdictRules) -> dict[str, FieldCheck]:
    canonical = normalize_symbol(trade.symbol, rules)
    return {
        "symbol": check_symbol(trade.symbol, heard, rules),
        "side": check_side(trade.side, heard),
        "quantity": check_quantity(trade.quantity, canonical, heard, rules),
        "price": check_price(trade.price, heard, rules),
        "order_type": check_order_type(trade.order_type, heard),
    }


def _score(
    trade: BookedTrade, heard: HeardTrade, fields: Mapping[str, FieldCheck],
    conf: Confirmation,
) -> tuple[int, bool, bool, int]:
    weight = sum(w for name, w in _WEIGHTS.items() if fields[name].agree)
    return (weight, heard.trade_id == trade.trade_id, conf.state == CONFIRMED, -heard.index)


def _assign(
    trades: Sequence[BookedTrade],
    heard: Sequence[HeardTrade],
    checks: Sequence[Sequence[Mapping[str, FieldCheck]]],
    confirmations: Sequence[Confirmation],
) -> list[tuple[int, str | None]]:
    """Per booked trade: the heard order it is judged against, and the trade_id of another
    booked trade that order already backs (rule 6), if so."""
    scores = {
        (ti, hi): _score(t, h, checks[ti][hi], confirmations[hi])
        for ti, t in enumerate(trades)
        for hi, h in enumerate(heard)
    }
    pairs = sorted(scores, key=lambda p: (scores[p], -p[0]), reverse=True)
    result: dict[int, tuple[int, str | None]] = {}
    taken: dict[int, int] = {}
    for ti, hi in pairs:
        if ti not in result and hi not in taken:
            result[ti] = (hi, None)
            taken[hi] = ti
    for ti in range(len(trades)):
        if ti not in result:
            hi = max(range(len(heard)), key=lambda h: scores[(ti, h)])
            result[ti] = (hi, trades[taken[hi]].trade_id)
    return [result[ti] for ti in range(len(trades))]


def _judge(
    fields: Mapping[str, FieldCheck], conf: Confirmation, backs: str | None
) -> tuple[str, str]:
    """Rules 7–9."""
    wrong = [f"{name}: booked {_show(c.booked)}, heard {_show(c.heard)}"
             + (f" ({c.note})" if c.note else "")
             for name, c in fields.items() if not c.agree]
    if wrong:
        tail = "" if conf.state == CONFIRMED else f"; {conf.detail}"
        return V_MISMATCH, "; ".join(wrong) + tail
    if backs is not None:
        return V_MISMATCH, f"the order heard already backs trade {backs}"
    if conf.state != CONFIRMED:
        return V_MISMATCH, conf.detail
    return V_CONFIRMED, conf.detail


def _fields_unheard(trade: BookedTrade) -> dict[str, FieldCheck]:
    return {
        "symbol": FieldCheck(trade.symbol, None, False),
        "side": FieldCheck(trade.side, None, False),
        "quantity": FieldCheck(trade.quantity, None, False),
        "price": FieldCheck(trade.price, None, False),
        "order_type": FieldCheck(trade.order_type, None, trade.order_type is None),
    }


def _known_symbols(trades: Sequence[BookedTrade], rules: VerdictRules) -> dict[str, str]:
    # The booked names only, as the rules backend passes them: the grammar rebuilds its
    # alias table from this map for every sentence, so a long map costs on every one.
    known: dict[str, str] = {}
    for t in trades:
        canonical = normalize_symbol(t.symbol, rules)
        if canonical:
            known[t.symbol] = canonical
    return known


def _segment(seg: Mapping[str, Any]) -> EvidenceSegment:
    return EvidenceSegment(float(seg.get("start") or 0.0), float(seg.get("end") or 0.0),
                           " ".join(str(seg.get("text") or "").split()))


def _show(value: str | float | None) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)
