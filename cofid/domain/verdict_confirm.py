"""Was an order read back and confirmed in the call, or only mentioned?

Pure: reads the transcript segments around one heard order (an LLM1 trade). The rule
numbers are the ones cofid/domain/verdicts.py cites.

C1. The transcript is cut into sentences (trade_grammar.split_sentences within each
    segment), each keeping its segment's index and speaker.
C2. A sentence *states* the order when it holds LLM1's evidence sentence (or is most of
    it), or when the trade grammar reads from it a trade of the order's symbol that
    agrees with every field both say and on at least two of symbol, quantity and price
    (all of them when the order has fewer). A sentence without a side word is read too
    ("So that's 100 Infosys at 1500, correct?"), its side left unknown.
    It *contradicts* the order when it names the order's symbol (or says a side word) with
    a different side, quantity or price.
C3. After a statement the next `confirm_window` sentences may hold the reply. The first
    that is not a question (ends in '?' or opens with shall / should / can / is / kya ...) and says yes (AFFIRM_WORDS: yes, confirm, haan,
    ji haan, theek hai, bilkul, go ahead, ...) without a refusal (REFUSE_WORDS: no, not,
    nahi, mat, wait, later, let me think, ...) confirms the order; a refusal, or a
    contradicting sentence, closes the window first. "No problem", "koi baat nahi" and the
    like are neither. A sentence that restates the order and opens with the yes ("Haan,
    100 Infosys") is a reply too when a statement came before it; a yes-word inside a
    read-back ("Just to confirm, buy ...") is not. A hedged statement ("thinking of buying", "maybe",
    "shayad", HEDGE_WORDS) awaits no reply: a yes to an idea confirms no order.
    A sentence about another instrument closes the window too: the yes after it answers
    that order (a joint read-back of two orders in one sentence states both).
C4. Who says yes: a sentence whose speaker is an agent (AGENT_SPEAKERS) never confirms,
    and when both speakers are known the reply must come from another speaker than the
    statement it answers. Without speakers (plain STT) anyone's yes counts.
C5. Once confirmed, the order is *cancelled* by a later sentence asking to cancel it
    ("cancel it", "rehne do", "don't place it") before another instrument is spoken of
    (after that, a cancel is about the other order), unless restated and confirmed again;
    a contradicting sentence that corrects it ("no, make it 200") revokes the
    confirmation too.
C6. The evidence is the sentences' segments: the statements up to the reply (first and
    last two) and the reply, in transcript order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cofid.domain.questions import keyword_pattern
from cofid.domain.trade_grammar import ExtractedTrade, extract_trades, split_sentences
from cofid.domain.verdict_fields import HeardTrade, VerdictRules, normalize_symbol

CONFIRMED = "confirmed"
NOT_CONFIRMED = "not_confirmed"  # stated, never affirmed
REFUSED = "refused"  # stated, answered with a refusal
CANCELLED = "cancelled"
NOT_FOUND = "not_found"  # no sentence of the transcript states it

AFFIRM_WORDS = (
    "yes", "yeah", "yep", "yup", "sure", "ok", "okay", "confirm", "confirmed", "i confirm",
    "correct", "that's right", "thats right", "right sir", "go ahead", "proceed", "please do",
    "do it", "place it", "done", "perfect", "absolutely", "haan", "haa", "han", "haanji",
    "haan ji", "ji haan", "ha ji", "ji", "theek hai", "thik hai", "theek", "sahi hai",
    "bilkul", "kar do", "kar dijiye", "kardo", "chalega", "ho jayega",
)
REFUSE_WORDS = (
    "no", "nope", "not", "don't", "dont", "do not", "never", "wrong", "nahi", "nahin",
    "na", "mat", "ruko", "rukiye", "ruk jao", "wait", "hold on", "later", "baad mein",
    "think", "soch", "sochta", "sochke", "galat", "cancel", "rehne do", "rahne do",
    "let me know", "call back", "call you back",
)
# A statement with one of these is an idea, not an order: a yes to it confirms nothing.
HEDGE_WORDS = (
    "thinking of", "thinking about", "maybe", "might", "planning", "plan to", "not sure",
    "soch raha", "soch rahi", "soch rahe", "shayad", "tomorrow",
)
# Phrases with a refusal word that refuse nothing.
NEUTRAL_PHRASES = (
    "no problem", "not a problem", "no issue", "no issues", "no worries", "why not",
    "koi baat nahi", "koi dikkat nahi", "no doubt", "nothing else", "no further questions",
)
CANCEL_WORDS = (
    "cancel", "cancel it", "cancel the order", "rehne do", "rahne do", "mat karo",
    "mat kijiye", "don't place", "do not place", "don't buy", "don't sell", "do not buy",
    "do not sell", "drop it", "forget it",
)
NOT_CANCEL = ("don't cancel", "do not cancel", "no need to cancel", "cancel mat", "cancel nahi")
AGENT_SPEAKERS = frozenset({"agent", "dealer", "rm", "broker", "operator", "executive"})

_AFFIRM = keyword_pattern(AFFIRM_WORDS)
_REFUSE = keyword_pattern(REFUSE_WORDS)
_HEDGE = keyword_pattern(HEDGE_WORDS)
_NEUTRAL = keyword_pattern(NEUTRAL_PHRASES)
_CANCEL = keyword_pattern(CANCEL_WORDS)
_NOT_CANCEL = keyword_pattern(NOT_CANCEL)
_QUESTION_OPENERS_RE = re.compile(
    r"\W*(?:shall|should|can|could|may|is|are|will|would|did|does|am|kya|what|which|how)\b"
)
_NON_WORD = re.compile(r"[^a-z0-9]+")
_SAME, _CONTRADICTS, _NEITHER = "same", "contradicts", "neither"


@dataclass(frozen=True)
class Sentence:
    """One sentence of the transcript (C1)."""

    segment: int  # index into the segments
    text: str
    speaker: str | None
    trades: tuple[ExtractedTrade, ...]  # as the grammar reads it; side None when unsaid


@dataclass(frozen=True)
class Confirmation:
    state: str  # CONFIRMED | NOT_CONFIRMED | REFUSED | CANCELLED | NOT_FOUND
    segments: tuple[int, ...]  # evidence segment indices, in order (C6)
    detail: str


def sentences_of(
    segments: Sequence[Mapping[str, Any]], known: Mapping[str, str]
) -> list[Sentence]:
    """The transcript's sentences with the trades each states (C1, C2)."""
    out: list[Sentence] = []
    for index, seg in enumerate(segments):
        speaker = seg.get("speaker")
        for text in split_sentences(str(seg.get("text") or "")):
            out.append(Sentence(index, text, str(speaker) if speaker else None,
                                tuple(_read_trades(text, known))))
    return out


def _read_trades(text: str, known: Mapping[str, str]) -> list[ExtractedTrade]:
    trades = extract_trades(text, known)
    if trades:
        return trades
    # A side-less mention: a neutral side word in front lets the grammar read the
    # sentence's symbol, quantity and price; the side it reports is the prefix's, so dropped.
    return [
        ExtractedTrade(t.symbol, None, t.quantity, t.price, t.order_type, None, text)
        for t in extract_trades("buy " + text, known)
    ]


def confirmation(
    heard: HeardTrade, sentences: Sequence[Sentence], rules: VerdictRules
) -> Confirmation:
    """How the call treats one heard order (C2–C6)."""
    statements: list[int] = []
    reply: int | None = None
    state = NOT_FOUND
    open_since: int | None = None  # sentence index of the statement awaiting a reply
    steps = 0
    cancellable = True
    for i, s in enumerate(sentences):
        relation = _relation(s, heard, rules)
        affirm = _affirms(s.text)
        if relation == _SAME:
            cancellable = True
            if (open_since is not None and _opens_with_yes(s.text)
                    and _speaker_may_reply(s, sentences[open_since])):
                state, reply, open_since = CONFIRMED, i, None
                continue
            statements.append(i)
            if state in (NOT_FOUND, REFUSED):
                state = NOT_CONFIRMED
            hedged = _HEDGE is not None and _HEDGE.search(s.text) is not None
            open_since, steps = (None if hedged else i), 0
            continue
        if relation == _CONTRADICTS:
            open_since = None
            if state == CONFIRMED and _refuses(s.text):
                state = REFUSED  # corrected after the yes (C5)
            continue
        if any(_another_instrument(t, heard, rules) for t in s.trades):
            # The talk moved to another order: a yes or a cancel from here is about it.
            cancellable = False
            open_since = None
        if state == CONFIRMED and cancellable and _cancels(s.text):
            state = CANCELLED
            reply = i
            continue
        if open_since is None or _is_question(s.text):
            continue
        steps += 1
        if steps > rules.confirm_window:
            open_since = None
        elif _refuses(s.text):
            open_since = None
            if state != CONFIRMED:
                state, reply = REFUSED, i
        elif affirm and _speaker_may_reply(s, sentences[open_since]):
            state, reply, open_since = CONFIRMED, i, None
    return Confirmation(state, _evidence(sentences, statements, reply), _detail(state))


def _relation(s: Sentence, heard: HeardTrade, rules: VerdictRules) -> str:
    if heard.evidence and _contains(s.text, heard.evidence):
        return _SAME
    found = _NEITHER
    for t in s.trades:
        r = _trade_relation(t, heard, rules)
        if r == _SAME:
            return _SAME
        if r == _CONTRADICTS:
            found = _CONTRADICTS
    return found


def _trade_relation(t: ExtractedTrade, heard: HeardTrade, rules: VerdictRules) -> str:
    symbol = normalize_symbol(t.symbol, rules)
    if symbol is not None and heard.symbol is not None and symbol != heard.symbol:
        return _NEITHER  # another instrument
    same_symbol = symbol is not None and symbol == heard.symbol
    conflict = (
        (t.side is not None and heard.side is not None and t.side != heard.side)
        or (t.quantity is not None and heard.quantity is not None
            and abs(t.quantity - heard.quantity) > 1e-6)
        or (t.price is not None and heard.price is not None
            and abs(t.price - heard.price) > max(rules.price_tolerance * heard.price, rules.tick))
    )
    if conflict:
        # A side-less, symbol-less number ("client code 1234") contradicts nothing.
        return _CONTRADICTS if same_symbol or t.side is not None else _NEITHER
    agree = sum((same_symbol, t.quantity is not None and heard.quantity is not None,
                 t.price is not None and heard.price is not None))
    knows = sum(v is not None for v in (heard.symbol, heard.quantity, heard.price))
    return _SAME if agree >= min(2, knows) and agree > 0 else _NEITHER


def _another_instrument(t: ExtractedTrade, heard: HeardTrade, rules: VerdictRules) -> bool:
    symbol = normalize_symbol(t.symbol, rules)
    return symbol is not None and heard.symbol is not None and symbol != heard.symbol


def _opens_with_yes(text: str) -> bool:
    """A restatement is a reply only when it starts with the yes ("Haan, 100 Infosys"),
    not when a yes-word sits inside the agent's read-back ("Just to confirm, ...")."""
    if _AFFIRM is None or _is_question(text) or _refuses(text):
        return False
    match = _AFFIRM.search(text)
    return match is not None and not text[: match.start()].strip(" \t\"'(-")


def _speaker_may_reply(reply: Sentence, statement: Sentence) -> bool:
    if reply.speaker is not None and reply.speaker.strip().lower() in AGENT_SPEAKERS:
        return False
    return reply.speaker is None or statement.speaker is None or reply.speaker != statement.speaker


def _without_neutral(text: str) -> str:
    return _NEUTRAL.sub(" ", text) if _NEUTRAL is not None else text


def _affirms(text: str) -> bool:
    return _AFFIRM is not None and _AFFIRM.search(text) is not None


def _refuses(text: str) -> bool:
    return _REFUSE is not None and _REFUSE.search(_without_neutral(text)) is not None


def _cancels(text: str) -> bool:
    if _CANCEL is None or _is_question(text) or _CANCEL.search(text) is None:
        return False
    return _NOT_CANCEL is None or _NOT_CANCEL.search(text) is None


def _is_question(text: str) -> bool:
    """Ends in '?', or, for STT that drops it, opens with an interrogative ("shall I place
    it", "is that right")."""
    if text.rstrip().endswith("?"):
        return True
    first = _QUESTION_OPENERS_RE.match(text.lower())
    return first is not None


def _flat(text: str) -> str:
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def _contains(sentence: str, evidence: str) -> bool:
    a, b = _flat(sentence), _flat(evidence)
    if not a or not b:
        return False
    # A sentence inside the evidence counts only when it is most of it: evidence that is a
    # whole run-on transcript (STT without punctuation) must not make every sentence a
    # statement of the order.
    return b in a or (a in b and 2 * len(a) >= len(b))


def _evidence(
    sentences: Sequence[Sentence], statements: list[int], reply: int | None
) -> tuple[int, ...]:
    before = [i for i in statements if reply is None or i < reply]
    chosen = set(before[:1] + before[-2:])
    if reply is not None:
        chosen.add(reply)
    return tuple(sorted({sentences[i].segment for i in chosen}))


def _detail(state: str) -> str:
    return {
        CONFIRMED: "read back or stated and confirmed",
        NOT_CONFIRMED: "not confirmed: the order is stated but the client never says yes to it",
        REFUSED: "not confirmed: the client refuses or corrects the order",
        CANCELLED: "cancelled: the client cancels the order after confirming it",
        NOT_FOUND: "not confirmed: no sentence of the transcript states the order",
    }[state]
