"""Trades spoken in a call, found by a small grammar over the transcript text.

This is the deterministic counterpart of LLM1: the `rules` chat backend uses it offline
and in tests, and the audit rules use it to spot read-backs. It understands English and
romanized Hindi ("buy 100 shares of Infosys at 1500", "100 INFY kharid lo", "TCS ke 50
share 3500 pe bech do").

Rules:

1. Text splits into sentences at . ! ? । and line breaks ("Rs." and titles such as "Mr."
   do not end a sentence; decimals never do). A trade never spans two sentences.
2. A trade needs a side word (buy / purchase / kharid ... or sell / bech ...) and at least
   a symbol or a quantity. Sentences without a side word yield nothing.
3. Each side word owns the words on one side of it: English verbs the words after it, up
   to the next side word; Hindi verbs, and English verbs followed by "kar/karo/karna...",
   the words before it. If that side holds neither symbol nor quantity, the other side is
   used. A field still missing is taken from the other side when no other side word owns it.
4. Numbers are digits ("2,000", "2,00,000", "2450.50") or number words up to crores
   ("one thousand five hundred", "a hundred", "5 thousand", "do sau", "pachas"). "do" is
   two only before a multiplier, since "bech do" is a verb.
5. A number is the price when "at", "@", "₹", "rs", "rupees", "price", "rate", "limit"
   comes before it or "rupees", "pe", "par", "per", "limit", "ke bhav" after it; the
   quantity when a unit ("shares", "lots", "qty") follows it, "qty"/"quantity" precedes it,
   or a symbol follows it; otherwise the first unclaimed number is the quantity. Numbers
   followed by time words ("10 am", "5 baje") are neither.
6. "market" in a trade's words makes it a MARKET order; otherwise "limit" or a price makes
   it LIMIT; otherwise the order type is unknown.
7. Symbols match known_symbols merged over SYMBOL_ALIASES, longest alias first, case- and
   punctuation-insensitively ("L&T", "l & t"). Canonical names also match themselves.
8. "trade id T123" / "order number 4567" in a sentence gives the trade id of the sentence's
   trades (an id must contain a digit).
9. Identical trades (symbol, side, quantity, price) are reported once, with the evidence of
   their first sentence: a read-back restates, it does not add a trade.

The vocabulary is in cofid/domain/trade_words.py, the tokenizer in trade_tokens.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cofid.domain.trade_tokens import Tok, tokenize
from cofid.domain.trade_words import (
    BUY,
    FILLERS,
    LIMIT,
    MARKET,
    PRICE_AFTER,
    PRICE_AFTER_KE,
    PRICE_BEFORE,
    QTY_BEFORE,
    SELL,
    SYMBOL_ALIASES,
    TIME_WORDS,
    UNIT_WORDS,
    alias_key,
    alias_table,
)

__all__ = [
    "BUY",
    "LIMIT",
    "MARKET",
    "SELL",
    "SYMBOL_ALIASES",
    "ExtractedTrade",
    "canonical_symbol",
    "extract_trades",
    "split_sentences",
]
@dataclass(frozen=True)
class ExtractedTrade:
    symbol: str | None
    side: str | None
    quantity: float | None
    price: float | None
    order_type: str | None
    trade_id: str | None
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        """The LLM1 schema's trade object."""
        return {
            "symbol": self.symbol,
            "side": self.side,
            "quantity": self.quantity,
            "price": self.price,
            "order_type": self.order_type,
            "trade_id": self.trade_id,
            "evidence": self.evidence,
        }

_SENTENCE_END_RE = re.compile(
    r"(?<=[.!?।॥…])(?<!\b[Rr]s\.)(?<!\bRS\.)(?<!\b[Mm]r\.)(?<!\b[Mm]s\.)(?<!\b[Dd]r\.)"
    r"(?<!\b[Mm]rs\.)\s+|\n+"
)
_TRADE_ID_RE = re.compile(
    r"\b(?:trade|order)\s*(?:id|no\.?|number|ref(?:erence)?)\s*(?:is\s+)?[:#]?\s*"
    r"([A-Za-z0-9\-/]*\d[A-Za-z0-9\-/]*)",
    re.IGNORECASE,
)


def split_sentences(text: str) -> list[str]:
    """The sentences of `text` (rule 1), stripped, empty ones dropped."""
    return [s.strip() for s in _SENTENCE_END_RE.split(text) if s and s.strip()]


def extract_trades(
    text: str, known_symbols: Mapping[str, str] | None = None
) -> list[ExtractedTrade]:
    """Every distinct trade spoken in `text`, in order of first mention (rules 1–9)."""
    aliases = alias_table(known_symbols)
    found: list[ExtractedTrade] = []
    seen: set[tuple[Any, ...]] = set()
    for sentence in split_sentences(text):
        for trade in _sentence_trades(sentence, aliases):
            key = (trade.symbol, trade.side, trade.quantity, trade.price)
            if key not in seen:
                seen.add(key)
                found.append(trade)
    return found


def canonical_symbol(name: str, known_symbols: Mapping[str, str] | None = None) -> str:
    """The canonical symbol for a name ("Infosys" → "INFY", "INFY-EQ" → "INFY").

    A name no alias knows comes back upper-cased with an exchange series suffix removed,
    so that two spellings of one unknown symbol still compare equal.
    """
    aliases = alias_table(known_symbols)
    key = alias_key(name)
    if key in aliases:
        return aliases[key]
    bare = re.sub(r"[-.](EQ|BE|BZ|BL|NS|NSE|BSE)$", "", name.strip().upper())
    return aliases.get(alias_key(bare), bare)


@dataclass
class _Fields:
    symbol: str | None = None
    quantity: float | None = None
    price: float | None = None
    market: bool = False
    limit: bool = False

    def has_subject(self) -> bool:
        return self.symbol is not None or self.quantity is not None

    def fill_from(self, other: _Fields) -> None:
        self.symbol = self.symbol if self.symbol is not None else other.symbol
        self.quantity = self.quantity if self.quantity is not None else other.quantity
        self.price = self.price if self.price is not None else other.price
        self.market = self.market or other.market
        self.limit = self.limit or other.limit

def _sentence_trades(
    sentence: str, aliases: Mapping[tuple[str, ...], str]
) -> list[ExtractedTrade]:
    trade_id_match = _TRADE_ID_RE.search(sentence)
    trade_id = trade_id_match.group(1) if trade_id_match else None
    scan = sentence
    if trade_id_match:
        # The id's digits are not a quantity or a price.
        scan = sentence[: trade_id_match.start()] + " " + sentence[trade_id_match.end() :]
    toks = tokenize(scan, aliases)
    anchors = [k for k, t in enumerate(toks) if t.kind == "side"]
    if not anchors:
        return []
    # Region r lies between anchor r-1 and anchor r; anchor i owns region i (before it)
    # or region i+1 (after it).
    bounds = [-1, *anchors, len(toks)]
    regions = [toks[bounds[r] + 1 : bounds[r + 1]] for r in range(len(anchors) + 1)]
    fields = [_region_fields(region) for region in regions]

    primary: list[int] = []
    for i, anchor in enumerate(anchors):
        before, after = i, i + 1
        first, second = (before, after) if toks[anchor].verb_final else (after, before)
        if not fields[first].has_subject() and fields[second].has_subject():
            first = second
        primary.append(first)
    claimed = set(primary)

    trades: list[ExtractedTrade] = []
    for i, anchor in enumerate(anchors):
        own = primary[i]
        other = i if own == i + 1 else i + 1
        got = _Fields(**vars(fields[own]))
        if other not in claimed:
            got.fill_from(fields[other])
        if not got.has_subject():
            continue
        order_type = MARKET if got.market else LIMIT if (got.limit or got.price) else None
        trades.append(
            ExtractedTrade(
                symbol=got.symbol,
                side=toks[anchor].value,
                quantity=got.quantity,
                price=got.price,
                order_type=order_type,
                trade_id=trade_id,
                evidence=sentence,
            )
        )
    return trades


def _region_fields(region: list[Tok]) -> _Fields:
    out = _Fields()
    unclaimed: list[float] = []
    for k, tok in enumerate(region):
        if tok.kind == "sym":
            if out.symbol is None:
                out.symbol = tok.value
        elif tok.kind == "word":
            out.market = out.market or tok.text == "market"
            out.limit = out.limit or tok.text == "limit"
        elif tok.kind == "num":
            role = _number_role(region, k)
            if role == "price" and out.price is None and tok.value > 0:
                out.price = tok.value
            elif role == "quantity" and out.quantity is None and tok.value > 0:
                out.quantity = tok.value
            elif role == "unknown" and tok.value > 0:
                unclaimed.append(tok.value)
    if out.quantity is None and unclaimed:
        out.quantity = unclaimed[0]
    return out


def _number_role(region: list[Tok], k: int) -> str:
    """The role of the number at region[k]: price, quantity, skip or unknown (rule 5)."""
    nxt = region[k + 1] if k + 1 < len(region) else None
    nxt2 = region[k + 2] if k + 2 < len(region) else None
    if nxt is not None and nxt.text in TIME_WORDS:
        return "skip"
    prev = None
    for back in range(k - 1, -1, -1):
        if region[back].text not in FILLERS or region[back].kind != "word":
            prev = region[back]
            break
    if prev is not None and prev.kind == "word" and prev.text in PRICE_BEFORE:
        return "price"
    if nxt is not None and nxt.kind == "word":
        if nxt.text in PRICE_AFTER:
            return "price"
        if nxt.text == "ke" and nxt2 is not None and nxt2.text in PRICE_AFTER_KE:
            return "price"
        if nxt.text in UNIT_WORDS:
            return "quantity"
    if nxt is not None and nxt.kind == "sym":
        return "quantity"
    if prev is not None and prev.kind == "word" and prev.text in QTY_BEFORE:
        return "quantity"
    return "unknown"
