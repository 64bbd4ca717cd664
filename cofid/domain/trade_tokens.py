"""Sentences as tokens for the trade grammar (cofid/domain/trade_grammar.py): symbols by
their longest alias (rule 7), numbers in digits or words (rule 4), side words (rules 2, 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cofid.domain.trade_words import (
    BIG,
    BUY,
    BUY_WORDS,
    HINDI_AUX,
    HINDI_BUY,
    HINDI_SELL,
    HUNDREDS,
    ONES,
    SELL,
    SELL_WORDS,
    TOKEN_RE,
)


@dataclass(frozen=True)
class Tok:
    kind: str  # "num" | "sym" | "side" | "word"
    text: str
    value: Any = None  # num: float; sym: canonical; side: BUY/SELL
    verb_final: bool = False


def tokenize(sentence: str, aliases: Mapping[tuple[str, ...], str]) -> list[Tok]:
    words = TOKEN_RE.findall(sentence.lower())
    longest = max((len(k) for k in aliases), default=1)
    toks: list[Tok] = []
    i = 0
    while i < len(words):
        symbol_end = _match_alias(words, i, aliases, longest)
        if symbol_end is not None:
            end, canonical = symbol_end
            toks.append(Tok("sym", " ".join(words[i:end]), canonical))
            i = end
            continue
        number = _read_number(words, i)
        if number is not None:
            value, end = number
            toks.append(Tok("num", " ".join(words[i:end]), value))
            i = end
            continue
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in BUY_WORDS or w in SELL_WORDS:
            side = BUY if w in BUY_WORDS else SELL
            toks.append(Tok("side", w, side, verb_final=nxt in HINDI_AUX))
        elif w in HINDI_BUY or w in HINDI_SELL:
            toks.append(Tok("side", w, BUY if w in HINDI_BUY else SELL, verb_final=True))
        else:
            toks.append(Tok("word", w))
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
        elif w in ONES:
            if last == "digit" or (last == "small" and (current % 100 < 20 or ONES[w] >= 10)):
                break
            current += ONES[w]
            last = "small"
        elif w in HUNDREDS and last in ("", "digit", "small"):
            current = (current or 1) * 100
            last = "hundred"
        elif w in BIG and last in ("digit", "small", "hundred") and not (
            w == "k" and last != "digit"
        ):
            total += (current or 1) * BIG[w]
            current = 0.0
            last = "big"
        elif not last and w in ("a", "do") and (nxt in HUNDREDS or nxt in BIG):
            current = 2.0 if w == "do" else 1.0  # "a hundred", "do sau"
            last = "small"
        elif w == "and" and last in ("hundred", "big") and (nxt in ONES):
            pass
        else:
            break
        j += 1
    if not last:
        return None
    return total + current, j
