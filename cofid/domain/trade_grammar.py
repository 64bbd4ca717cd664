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
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

BUY = "BUY"
SELL = "SELL"
MARKET = "MARKET"
LIMIT = "LIMIT"


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


_CANONICAL_ALIASES: dict[str, tuple[str, ...]] = {
    "INFY": ("infy", "infosys", "infosys ltd", "infosys limited"),
    "RELIANCE": ("reliance", "ril", "reliance industries", "reliance industries ltd"),
    "TCS": ("tcs", "tata consultancy", "tata consultancy services"),
    "HDFCBANK": ("hdfcbank", "hdfc bank", "hdfc"),
    "ICICIBANK": ("icicibank", "icici bank", "icici"),
    "SBIN": ("sbin", "sbi", "state bank", "state bank of india"),
    "TATAMOTORS": ("tatamotors", "tata motors", "tata motor"),
    "TATASTEEL": ("tatasteel", "tata steel"),
    "NIFTY": ("nifty",),
    "BANKNIFTY": ("banknifty", "bank nifty"),
    "WIPRO": ("wipro",),
    "ITC": ("itc",),
    "HCLTECH": ("hcltech", "hcl tech", "hcl technologies", "hcl"),
    "AXISBANK": ("axisbank", "axis bank"),
    "KOTAKBANK": ("kotakbank", "kotak bank", "kotak mahindra bank", "kotak"),
    "LT": ("l&t", "larsen", "larsen and toubro", "larsen & toubro"),
    "BHARTIARTL": ("bhartiartl", "airtel", "bharti airtel"),
    "MARUTI": ("maruti", "maruti suzuki"),
    "ASIANPAINT": ("asianpaint", "asian paints", "asian paint"),
    "BAJFINANCE": ("bajfinance", "bajaj finance"),
    "SUNPHARMA": ("sunpharma", "sun pharma"),
    "HINDUNILVR": ("hindunilvr", "hul", "hindustan unilever"),
    "ONGC": ("ongc",),
    "NTPC": ("ntpc",),
    "ADANIENT": ("adanient", "adani enterprises"),
}

SYMBOL_ALIASES: Mapping[str, str] = MappingProxyType(
    {alias: canonical for canonical, aliases in _CANONICAL_ALIASES.items() for alias in aliases}
)

_BUY_WORDS = {"buy", "buys", "buying", "bought", "purchase", "purchases", "purchasing",
              "purchased"}
_SELL_WORDS = {"sell", "sells", "selling", "sold"}
_HINDI_BUY = {"kharid", "kharido", "kharidna", "kharidenge", "kharida", "kharidiye",
              "kharidein", "kharidlo", "khareed", "khareedo", "khareedna", "khareedenge",
              "khareeda", "khareediye", "khareedein", "khareedlo"}
_HINDI_SELL = {"bech", "becho", "bechna", "bechenge", "becha", "bechiye", "bechein", "bechdo"}
# Hinglish puts an English verb before a Hindi auxiliary: "100 shares buy kar do".
_HINDI_AUX = {"kar", "karo", "karna", "karni", "karenge", "kariye", "karein", "kijiye",
              "karke", "karwa", "karwana"}

_ONES = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "ek": 1, "teen": 3, "chaar": 4, "char": 4, "paanch": 5, "panch": 5, "das": 10,
    "bees": 20, "pachas": 50, "pachaas": 50,
}
_HUNDREDS = {"hundred", "sau"}
_BIG = {"thousand": 1_000, "hazaar": 1_000, "hazar": 1_000, "hajar": 1_000, "k": 1_000,
        "lakh": 100_000, "lakhs": 100_000, "lac": 100_000, "lacs": 100_000,
        "crore": 10_000_000, "crores": 10_000_000}

_UNIT_WORDS = {"share", "shares", "lot", "lots", "qty", "quantity", "quantities", "unit",
               "units", "stock", "stocks", "nos", "contracts", "contract"}
_QTY_BEFORE = {"qty", "quantity"}
_PRICE_BEFORE = {"at", "@", "₹", "rs", "rupees", "rupee", "inr", "price", "rate", "limit",
                 "bhav", "bhaav"}
_PRICE_AFTER = {"rupees", "rupee", "rs", "inr", "pe", "par", "per", "limit"}
_PRICE_AFTER_KE = {"bhav", "bhaav", "rate", "price"}
_FILLERS = {"of", "the", "a", "an", "around", "about", "approx", "approximately", "only",
            "is", "be", "just", "ka", "ke", "ki", "near", "roughly"}
_TIME_WORDS = {"am", "pm", "baje", "oclock", "o'clock", "minute", "minutes", "mins",
               "second", "seconds", "hour", "hours", "day", "days", "din", "year", "years",
               "saal", "percent", "pct", "months", "month"}

_TOKEN_RE = re.compile(r"₹|@|&|\d+(?:,\d+)*(?:\.\d+)?|[a-z][a-z0-9']*")
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
    aliases = _alias_table(known_symbols)
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
    aliases = _alias_table(known_symbols)
    key = _alias_key(name)
    if key in aliases:
        return aliases[key]
    bare = re.sub(r"[-.](EQ|BE|BZ|BL|NS|NSE|BSE)$", "", name.strip().upper())
    return aliases.get(_alias_key(bare), bare)


@dataclass(frozen=True)
class _Tok:
    kind: str  # "num" | "sym" | "side" | "word"
    text: str
    value: Any = None  # num: float; sym: canonical; side: BUY/SELL
    verb_final: bool = False


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


def _alias_key(name: str) -> tuple[str, ...]:
    return tuple(_TOKEN_RE.findall(name.lower().replace(",", "")))


# Built once at import: backends may call in from worker threads.
_DEFAULT_ALIAS_TABLE: dict[tuple[str, ...], str] = {
    key: canonical
    for alias, canonical in SYMBOL_ALIASES.items()
    for key in (_alias_key(alias), _alias_key(canonical))
}


def _alias_table(known_symbols: Mapping[str, str] | None) -> dict[tuple[str, ...], str]:
    if not known_symbols:
        return _DEFAULT_ALIAS_TABLE
    table = dict(_DEFAULT_ALIAS_TABLE)
    for alias, canonical in known_symbols.items():
        for name in (alias, canonical):
            key = _alias_key(name)
            if key:
                table[key] = canonical
    return table


def _tokenize(sentence: str, aliases: Mapping[tuple[str, ...], str]) -> list[_Tok]:
    words = _TOKEN_RE.findall(sentence.lower())
    longest = max((len(k) for k in aliases), default=1)
    toks: list[_Tok] = []
    i = 0
    while i < len(words):
        symbol_end = _match_alias(words, i, aliases, longest)
        if symbol_end is not None:
            end, canonical = symbol_end
            toks.append(_Tok("sym", " ".join(words[i:end]), canonical))
            i = end
            continue
        number = _read_number(words, i)
        if number is not None:
            value, end = number
            toks.append(_Tok("num", " ".join(words[i:end]), value))
            i = end
            continue
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in _BUY_WORDS or w in _SELL_WORDS:
            side = BUY if w in _BUY_WORDS else SELL
            toks.append(_Tok("side", w, side, verb_final=nxt in _HINDI_AUX))
        elif w in _HINDI_BUY or w in _HINDI_SELL:
            toks.append(_Tok("side", w, BUY if w in _HINDI_BUY else SELL, verb_final=True))
        else:
            toks.append(_Tok("word", w))
        i += 1
    return toks


def _match_alias(
    words: list[str], i: int, aliases: Mapping[tuple[str, ...], str], longest: int
) -> tuple[int, str] | None:
    for n in range(min(longest, len(words) - i), 0, -1):
        canonical = aliases.get(tuple(words[i : i + n]))
        if canonical is not None:
            return i + n, canonical
    return None


def _is_digits(w: str) -> bool:
    return w[:1].isdigit()


def _read_number(words: list[str], i: int) -> tuple[float, int] | None:
    """A number starting at words[i] and the index after it (rule 4), or None."""
    total = 0.0
    current = 0.0
    last = ""  # "digit" | "small" | "hundred" | "big"
    j = i
    while j < len(words):
        w = words[j]
        nxt = words[j + 1] if j + 1 < len(words) else ""
        if _is_digits(w):
            if last:
                break
            current = float(w.replace(",", ""))
            last = "digit"
        elif w in _ONES:
            if last == "digit" or (last == "small" and (current % 100 < 20 or _ONES[w] >= 10)):
                break
            current += _ONES[w]
            last = "small"
        elif w in _HUNDREDS and last in ("", "digit", "small"):
            current = (current or 1) * 100
            last = "hundred"
        elif w in _BIG and last in ("digit", "small", "hundred") and not (
            w == "k" and last != "digit"
        ):
            total += (current or 1) * _BIG[w]
            current = 0.0
            last = "big"
        elif not last and w in ("a", "do") and (nxt in _HUNDREDS or nxt in _BIG):
            current = 2.0 if w == "do" else 1.0  # "a hundred", "do sau"
            last = "small"
        elif w == "and" and last in ("hundred", "big") and (nxt in _ONES):
            pass
        else:
            break
        j += 1
    if not last:
        return None
    return total + current, j


def _sentence_trades(
    sentence: str, aliases: Mapping[tuple[str, ...], str]
) -> list[ExtractedTrade]:
    trade_id_match = _TRADE_ID_RE.search(sentence)
    trade_id = trade_id_match.group(1) if trade_id_match else None
    scan = sentence
    if trade_id_match:
        # The id's digits are not a quantity or a price.
        scan = sentence[: trade_id_match.start()] + " " + sentence[trade_id_match.end() :]
    toks = _tokenize(scan, aliases)
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


def _region_fields(region: list[_Tok]) -> _Fields:
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


def _number_role(region: list[_Tok], k: int) -> str:
    """The role of the number at region[k]: price, quantity, skip or unknown (rule 5)."""
    nxt = region[k + 1] if k + 1 < len(region) else None
    nxt2 = region[k + 2] if k + 2 < len(region) else None
    if nxt is not None and nxt.text in _TIME_WORDS:
        return "skip"
    prev = None
    for back in range(k - 1, -1, -1):
        if region[back].text not in _FILLERS or region[back].kind != "word":
            prev = region[back]
            break
    if prev is not None and prev.kind == "word" and prev.text in _PRICE_BEFORE:
        return "price"
    if nxt is not None and nxt.kind == "word":
        if nxt.text in _PRICE_AFTER:
            return "price"
        if nxt.text == "ke" and nxt2 is not None and nxt2.text in _PRICE_AFTER_KE:
            return "price"
        if nxt.text in _UNIT_WORDS:
            return "quantity"
    if nxt is not None and nxt.kind == "sym":
        return "quantity"
    if prev is not None and prev.kind == "word" and prev.text in _QTY_BEFORE:
        return "quantity"
    return "unknown"
