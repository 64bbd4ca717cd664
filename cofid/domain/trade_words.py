"""The words the trade grammar knows (cofid/domain/trade_grammar.py): sides, symbols and
their aliases (rule 7), number words (rule 4), and the words that give a number its role
(rule 5) or make it no number of a trade.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

BUY = "BUY"
SELL = "SELL"
MARKET = "MARKET"
LIMIT = "LIMIT"

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

BUY_WORDS = {"buy", "buys", "buying", "bought", "purchase", "purchases", "purchasing",
             "purchased"}
SELL_WORDS = {"sell", "sells", "selling", "sold"}
HINDI_BUY = {"kharid", "kharido", "kharidna", "kharidenge", "kharida", "kharidiye",
             "kharidein", "kharidlo", "khareed", "khareedo", "khareedna", "khareedenge",
             "khareeda", "khareediye", "khareedein", "khareedlo"}
HINDI_SELL = {"bech", "becho", "bechna", "bechenge", "becha", "bechiye", "bechein", "bechdo"}
# Hinglish puts an English verb before a Hindi auxiliary: "100 shares buy kar do".
HINDI_AUX = {"kar", "karo", "karna", "karni", "karenge", "kariye", "karein", "kijiye",
             "karke", "karwa", "karwana"}

ONES = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "ek": 1, "teen": 3, "chaar": 4, "char": 4, "paanch": 5, "panch": 5, "das": 10,
    "bees": 20, "pachas": 50, "pachaas": 50,
}
HUNDREDS = {"hundred", "sau"}
BIG = {"thousand": 1_000, "hazaar": 1_000, "hazar": 1_000, "hajar": 1_000, "k": 1_000,
       "lakh": 100_000, "lakhs": 100_000, "lac": 100_000, "lacs": 100_000,
       "crore": 10_000_000, "crores": 10_000_000}

UNIT_WORDS = {"share", "shares", "lot", "lots", "qty", "quantity", "quantities", "unit",
              "units", "stock", "stocks", "nos", "contracts", "contract"}
QTY_BEFORE = {"qty", "quantity"}
PRICE_BEFORE = {"at", "@", "₹", "rs", "rupees", "rupee", "inr", "price", "rate", "limit",
                "bhav", "bhaav"}
PRICE_AFTER = {"rupees", "rupee", "rs", "inr", "pe", "par", "per", "limit"}
PRICE_AFTER_KE = {"bhav", "bhaav", "rate", "price"}
FILLERS = {"of", "the", "a", "an", "around", "about", "approx", "approximately", "only",
           "is", "be", "just", "ka", "ke", "ki", "near", "roughly"}
TIME_WORDS = {"am", "pm", "baje", "oclock", "o'clock", "minute", "minutes", "mins",
              "second", "seconds", "hour", "hours", "day", "days", "din", "year", "years",
              "saal", "percent", "pct", "months", "month"}
TOKEN_RE = re.compile(r"₹|@|&|\d+(?:,\d+)*(?:\.\d+)?|[a-z][a-z0-9']*")


def alias_key(name: str) -> tuple[str, ...]:
    return tuple(TOKEN_RE.findall(name.lower().replace(",", "")))


# Built once at import: backends may call in from worker threads.
_DEFAULT_ALIAS_TABLE: dict[tuple[str, ...], str] = {
    key: canonical
    for alias, canonical in SYMBOL_ALIASES.items()
    for key in (alias_key(alias), alias_key(canonical))
}


def alias_table(known_symbols: Mapping[str, str] | None) -> dict[tuple[str, ...], str]:
    if not known_symbols:
        return _DEFAULT_ALIAS_TABLE
    table = dict(_DEFAULT_ALIAS_TABLE)
    for alias, canonical in known_symbols.items():
        for name in (alias, canonical):
            key = alias_key(name)
            if key:
                table[key] = canonical
    return table
