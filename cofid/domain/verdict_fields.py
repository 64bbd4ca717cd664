"""The field rules of a trade verdict: symbol, side, quantity (shares or lots), price.

Pure: the booked value of each field against the value heard in the call (LLM1's
extracted trade). cofid/domain/verdicts.py holds the verdict rules that use these; the
rule numbers below are the ones its docstring cites.

F1. Symbols agree when their canonical names are equal. A name is canonicalised case- and
    punctuation-insensitively through trade_grammar's alias table merged with
    EXTRA_SYMBOL_ALIASES ("Infosys Ltd." -> INFY, "TCS-EQ" -> TCS); a name no alias knows
    loses a trailing corporate word ("Ltd", "Limited", "Company", ...) and retries, and is
    otherwise compared upper-cased with its letters, digits and '&' only.
F2. Sides agree when both normalise to the same side: buy / b / bought / purchase /
    kharid ... -> BUY, sell / s / sold / bech ... -> SELL. An unknown side never agrees.
F3. A quantity spoken in lots (LLM1's evidence says "<quantity> lots" or "contracts",
    digits or number words, and not "<quantity> shares") means lots x the symbol's lot size in shares. With no lot
    size known for the symbol it is compared as spoken (the trade file may count lots) and
    the field's note says so. Quantities agree when equal (1e-6).
F4. A heard MARKET order agrees with any booked price: the price is not compared. (A
    MARKET order heard with a price counts as market only when the segments stating it
    say "market", not "market risk": verdicts.py checks, else it is a LIMIT order.) Otherwise
    the heard price agrees when |heard - booked| <= max(price_tolerance x booked, tick).
    No price and no market order heard: the price does not agree ("not stated"), since
    the call does not show the client asked for this price.
F5. The order type agrees when the booking does not say one (the common trade file has no
    order type column), else when the heard one (a price and no type heard counts as
    LIMIT) is the same.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cofid.domain.trade_grammar import extract_trades
from cofid.domain.trade_words import (
    BIG,
    BUY,
    HUNDREDS,
    LIMIT,
    MARKET,
    ONES,
    SELL,
    SYMBOL_ALIASES,
    alias_key,
    alias_table,
)

FIELD_NAMES = ("symbol", "side", "quantity", "price", "order_type")

# Common NSE names trade_grammar's table does not spell (it covers the largest ones).
EXTRA_SYMBOL_ALIASES: Mapping[str, str] = MappingProxyType({
    "reliance industries limited": "RELIANCE",
    "tata consultancy services ltd": "TCS",
    "hdfc bank ltd": "HDFCBANK",
    "titan": "TITAN", "titan company": "TITAN",
    "bajaj finserv": "BAJAJFINSV", "bajajfinsv": "BAJAJFINSV",
    "ultratech": "ULTRACEMCO", "ultratech cement": "ULTRACEMCO", "ultracemco": "ULTRACEMCO",
    "power grid": "POWERGRID", "powergrid": "POWERGRID",
    "nestle": "NESTLEIND", "nestle india": "NESTLEIND", "nestleind": "NESTLEIND",
    "tech mahindra": "TECHM", "techm": "TECHM",
    "jsw steel": "JSWSTEEL", "jswsteel": "JSWSTEEL",
    "indusind bank": "INDUSINDBK", "indusind": "INDUSINDBK", "indusindbk": "INDUSINDBK",
    "mahindra and mahindra": "M&M", "mahindra & mahindra": "M&M", "m&m": "M&M",
    "coal india": "COALINDIA", "coalindia": "COALINDIA",
    "dr reddy": "DRREDDY", "dr reddys": "DRREDDY", "dr. reddy's": "DRREDDY",
    "drreddy": "DRREDDY",
    "cipla": "CIPLA",
    "hero motocorp": "HEROMOTOCO", "heromotoco": "HEROMOTOCO",
    "eicher motors": "EICHERMOT", "eichermot": "EICHERMOT",
    "bajaj auto": "BAJAJ-AUTO", "bajaj-auto": "BAJAJ-AUTO",
    "grasim": "GRASIM", "britannia": "BRITANNIA",
    "adani ports": "ADANIPORTS", "adaniports": "ADANIPORTS",
    "hindalco": "HINDALCO", "divis lab": "DIVISLAB", "divislab": "DIVISLAB",
    "apollo hospitals": "APOLLOHOSP", "apollohosp": "APOLLOHOSP",
    "tata consumer": "TATACONSUM", "tataconsum": "TATACONSUM",
    "sbi life": "SBILIFE", "sbilife": "SBILIFE",
    "hdfc life": "HDFCLIFE", "hdfclife": "HDFCLIFE",
    "bpcl": "BPCL", "bharat petroleum": "BPCL",
    "fin nifty": "FINNIFTY", "finnifty": "FINNIFTY",
    "midcap nifty": "MIDCPNIFTY", "midcpnifty": "MIDCPNIFTY",
})

# F&O lot sizes (shares per lot). NSE revises them about twice a year, so these are a
# starting point as published for the contracts from January 2025: a deployment passes
# its current table as VerdictRules.lot_sizes. A symbol missing here falls back to F3's
# "as spoken" rule, which errs towards a mismatch, never towards a false confirmation.
DEFAULT_LOT_SIZES: Mapping[str, int] = MappingProxyType({
    "NIFTY": 75, "BANKNIFTY": 30, "FINNIFTY": 65, "MIDCPNIFTY": 120,
    "RELIANCE": 500, "INFY": 400, "TCS": 175, "HDFCBANK": 550, "ICICIBANK": 700,
    "SBIN": 750, "TATAMOTORS": 550, "TATASTEEL": 5500, "ITC": 1600, "AXISBANK": 625,
    "KOTAKBANK": 400, "LT": 150, "BHARTIARTL": 475, "MARUTI": 50, "WIPRO": 3000,
})

_BUY_WORDS = frozenset({
    "b", "buy", "bought", "buying", "purchase", "purchased", "long", "kharid", "kharido",
    "kharida", "khareed", "khareedo",
})
_SELL_WORDS = frozenset({
    "s", "sell", "sold", "selling", "short", "bech", "becho", "becha",
})
_CORPORATE_WORDS = frozenset({
    "ltd", "limited", "company", "co", "corp", "corporation", "inc", "plc", "the", "eq",
})
_SERIES_RE = re.compile(r"[-.](EQ|BE|BZ|BL|NS|NSE|BSE)$")  # as trade_grammar.canonical_symbol
_WORD_RE = re.compile(r"[a-z0-9&]+")
_LOT_RE = re.compile(r"\b(?:lots?|contracts?)\b", re.IGNORECASE)
_CLAUSE_RE = re.compile(r"\b(?:and|aur|also|then)\b|;", re.IGNORECASE)
_UNIT_TOKEN_RE = re.compile(r"\d+(?:,\d+)*(?:\.\d+)?|[a-z][a-z0-9']*")
_LOT_UNITS = frozenset({"lot", "lots", "contract", "contracts"})
_SHARE_UNITS = frozenset({"share", "shares", "stock", "stocks", "qty", "quantity", "nos",
                          "unit", "units"})
_NUMBER_WORDS = frozenset(ONES) | frozenset(HUNDREDS) | frozenset(BIG) | {"and", "a", "do"}
_QUANTITY_EPSILON = 1e-6


@dataclass(frozen=True)
class VerdictRules:
    """The knobs of the verdict rules (rules F3–F4 and verdicts.py's confirmation window)."""

    price_tolerance: float = 0.005  # 0.5 % of the booked price...
    tick: float = 0.05  # ...or one NSE equity tick, whichever is wider
    lot_sizes: Mapping[str, int] = field(default_factory=lambda: DEFAULT_LOT_SIZES)
    symbol_aliases: Mapping[str, str] = field(default_factory=lambda: EXTRA_SYMBOL_ALIASES)
    # Sentences after a statement of the order in which the client's yes may come.
    confirm_window: int = 3
    # Derived in __post_init__: the merged alias table and every canonical name.
    _aliases: dict[tuple[str, ...], str] = field(
        init=False, repr=False, compare=False, default_factory=dict)
    _canonicals: frozenset[str] = field(init=False, repr=False, compare=False,
                                        default=frozenset())

    def __post_init__(self) -> None:
        for name in ("price_tolerance", "tick"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"VerdictRules.{name} must be a finite number >= 0, got {value!r}")
        if self.confirm_window < 1:
            raise ValueError(
                f"VerdictRules.confirm_window must be >= 1, got {self.confirm_window!r}"
            )
        for symbol, size in self.lot_sizes.items():
            if not (isinstance(size, int) and size > 0):
                raise ValueError(f"VerdictRules.lot_sizes[{symbol!r}] must be an int > 0, got {size!r}")
        # Built once: canonical_symbol would rebuild the merged table on every call.
        object.__setattr__(self, "_aliases", alias_table(self.symbol_aliases))
        object.__setattr__(self, "_canonicals",
                           frozenset(SYMBOL_ALIASES.values()) | frozenset(self.symbol_aliases.values()))

    def canonical(self, name: str) -> str:
        """trade_grammar.canonical_symbol over the merged alias table."""
        aliases = self._aliases
        key = alias_key(name)
        if key in aliases:
            return aliases[key]
        bare = _SERIES_RE.sub("", name.strip().upper())
        return aliases.get(alias_key(bare), bare)

    def is_known(self, symbol: str) -> bool:
        return symbol in self._canonicals


@dataclass(frozen=True)
class FieldCheck:
    """One field of a verdict: the booked value, the value heard, whether they agree."""

    booked: str | float | None
    heard: str | float | None
    agree: bool
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"booked": self.booked, "heard": self.heard, "agree": self.agree,
                "note": self.note}


@dataclass(frozen=True)
class HeardTrade:
    """One LLM1 trade, normalised: canonical symbol, BUY/SELL, quantity as spoken."""

    index: int  # position in LLM1's list
    symbol: str | None
    side: str | None
    quantity: float | None
    in_lots: bool  # quantity was spoken in lots (F3)
    price: float | None
    order_type: str | None  # MARKET | LIMIT | None (a price alone implies LIMIT, F5)
    trade_id: str | None
    evidence: str


def normalize_symbol(name: str | None, rules: VerdictRules) -> str | None:
    """The canonical symbol of a booked or heard name (F1); None for a blank name."""
    if name is None or not name.strip():
        return None
    first = rules.canonical(name)
    if rules.is_known(first):
        return first
    words = _WORD_RE.findall(name.lower())
    while words and words[-1] in _CORPORATE_WORDS:
        words.pop()
    while words and words[0] == "the":
        words.pop(0)
    if words:
        retry = rules.canonical(" ".join(words))
        if rules.is_known(retry):
            return retry
        return "".join(words).upper()
    return first


def normalize_side(value: str | None) -> str | None:
    """BUY, SELL or None (F2)."""
    text = (value or "").strip().lower()
    if text in _BUY_WORDS:
        return BUY
    if text in _SELL_WORDS:
        return SELL
    return None


def spoken_in_lots(evidence: str, quantity: float | None, symbol: str | None = None) -> bool:
    """Whether the evidence sentence counts `quantity` in lots rather than shares (F3):
    it says "<quantity> lots" (or contracts) and not "<quantity> shares". When the
    sentence holds several orders ("... and ..."), only the clauses naming `symbol` count."""
    if quantity is None or not _LOT_RE.search(evidence):
        return False
    clauses = [c for c in _CLAUSE_RE.split(evidence) if c.strip()]
    if symbol is not None and len(clauses) > 1:
        own = [c for c in clauses
               if any(t.symbol == symbol for t in extract_trades("buy " + c))]
        evidence = " ".join(own) if own else evidence
    lots, shares = _counted(evidence)
    return _has(lots, quantity) and not _has(shares, quantity)


def _counted(text: str) -> tuple[list[float], list[float]]:
    """The numbers said right before a lot unit, and right before a share unit."""
    words = _UNIT_TOKEN_RE.findall(text.lower())
    lots: list[float] = []
    shares: list[float] = []
    for k, word in enumerate(words):
        bucket = lots if word in _LOT_UNITS else shares if word in _SHARE_UNITS else None
        if bucket is None:
            continue
        j = k
        while j > 0 and (words[j - 1][0].isdigit() or words[j - 1] in _NUMBER_WORDS):
            j -= 1
        if j < k:
            # The grammar reads the number ("two hundred fifty", "do sau", "2,000").
            read = extract_trades("buy " + " ".join(words[j:k]) + " shares")
            if read and read[0].quantity is not None:
                bucket.append(read[0].quantity)
    return lots, shares


def _has(values: list[float], quantity: float) -> bool:
    return any(_same(v, quantity) for v in values)


def heard_from_llm1(item: Mapping[str, Any], index: int, rules: VerdictRules) -> HeardTrade:
    """An LLM1 trade object (prompts.LLM1_SCHEMA), normalised; junk values become None."""
    symbol = item.get("symbol")
    quantity = _number(item.get("quantity"))
    price = _number(item.get("price"))
    order_type = str(item.get("order_type") or "").strip().upper() or None
    if order_type not in (MARKET, LIMIT):
        order_type = None
    evidence = str(item.get("evidence") or "")
    trade_id = item.get("trade_id")
    canonical = normalize_symbol(symbol if isinstance(symbol, str) else None, rules)
    return HeardTrade(
        index=index,
        symbol=canonical,
        side=normalize_side(str(item.get("side") or "")),
        quantity=quantity if quantity is not None and quantity > 0 else None,
        in_lots=spoken_in_lots(evidence, quantity, canonical),
        price=price if price is not None and price > 0 else None,
        order_type=order_type,
        trade_id=str(trade_id) if trade_id not in (None, "") else None,
        evidence=evidence,
    )


def check_symbol(booked: str, heard: HeardTrade, rules: VerdictRules) -> FieldCheck:
    canonical = normalize_symbol(booked, rules)
    return FieldCheck(booked, heard.symbol, heard.symbol is not None and heard.symbol == canonical)


def check_side(booked: str, heard: HeardTrade) -> FieldCheck:
    side = normalize_side(booked)
    return FieldCheck(side or booked, heard.side, heard.side is not None and heard.side == side)


def check_quantity(
    booked: float, symbol: str | None, heard: HeardTrade, rules: VerdictRules
) -> FieldCheck:
    if heard.quantity is None:
        return FieldCheck(booked, None, False, "no quantity heard")
    if not heard.in_lots:
        return FieldCheck(booked, heard.quantity, _same(heard.quantity, booked))
    lots = _plain_number(heard.quantity)
    size = rules.lot_sizes.get(symbol or "")
    if size is None:
        return FieldCheck(booked, heard.quantity, _same(heard.quantity, booked),
                          f"{lots} lots; lot size of {symbol or 'the symbol'} unknown, "
                          "compared as spoken")
    shares = heard.quantity * size
    return FieldCheck(booked, shares, _same(shares, booked), f"{lots} lots x {size} shares")


def check_price(booked: float | None, heard: HeardTrade, rules: VerdictRules) -> FieldCheck:
    if heard.order_type == MARKET:
        return FieldCheck(booked, MARKET, True, "market order: price not compared")
    if heard.price is None:
        return FieldCheck(booked, None, False, "no price or market order heard")
    if booked is None:
        return FieldCheck(None, heard.price, False, "no booked price")
    allowed = max(rules.price_tolerance * abs(booked), rules.tick)
    return FieldCheck(booked, heard.price, abs(heard.price - booked) <= allowed + 1e-9)


def check_order_type(booked: str | None, heard: HeardTrade) -> FieldCheck:
    heard_type = heard.order_type or (LIMIT if heard.price is not None else None)
    booked_type = (booked or "").strip().upper() or None
    if booked_type is None:
        return FieldCheck(None, heard_type, True, "no order type booked")
    return FieldCheck(booked_type, heard_type, heard_type == booked_type)


def _same(a: float, b: float) -> bool:
    return abs(a - b) < _QUANTITY_EPSILON


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _plain_number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"
