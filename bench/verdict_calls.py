"""Synthetic trade-confirmation calls with a known truth, for bench.verdicts.

One call holds one order (80 %) or two orders of different symbols. Each order is said
one way (English or Hinglish, digits or number words, shares or lots, limit or market)
and booked either exactly as said, or with one deliberate disagreement:

  agreements     exact, alias (booked "Infosys Ltd" / "INFY-EQ", said "Infy"), price
                 within tolerance, market order booked at any price, lots booked as
                 lots x lot size, a read-back corrected by the client then re-read
  disagreements  quantity (said 100, booked 1000), side, another symbol, price outside
                 tolerance, lots booked as shares, mentioned but never confirmed
                 (deferred, refused, hedged, no reply, agent-only ok), cancelled after
                 the yes, booked the read-back's wrong quantity

A few trades get no call (no_call), an unusable call (ShortCall, UnsupportedLanguage,
failed stt) or a call still before LLM1 (pending). Transcripts come in four shapes (SHAPES):
speakers labelled agent/client; no speakers (plain STT); no speakers with the read-back
and the reply in one segment; no speakers, lower case, no commas, apostrophes or question
marks (lower). A fifth, "raw" (no punctuation at all), is drawn only on request: the
rules backend joins speaker-less segments into one run-on sentence there (see
bench/verdicts.py). The agent-only "ok" trap is drawn only with speakers:
without them no rule can tell whose "ok" it is.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from typing import Any

SPOKEN = {
    "INFY": ["Infosys", "Infy"], "RELIANCE": ["Reliance", "Reliance Industries"],
    "TCS": ["TCS", "Tata Consultancy"], "HDFCBANK": ["HDFC Bank"],
    "ICICIBANK": ["ICICI Bank", "ICICI"], "SBIN": ["SBI", "State Bank"],
    "TATAMOTORS": ["Tata Motors"], "ITC": ["ITC"], "WIPRO": ["Wipro"],
    "AXISBANK": ["Axis Bank"], "LT": ["L&T", "Larsen and Toubro"], "MARUTI": ["Maruti"],
    "BHARTIARTL": ["Airtel", "Bharti Airtel"], "NIFTY": ["Nifty"], "BANKNIFTY": ["Bank Nifty"],
}
BOOKED = {
    "INFY": ["INFY", "INFY-EQ", "Infosys Ltd", "Infosys Limited"],
    "RELIANCE": ["RELIANCE", "RELIANCE-EQ", "Reliance Industries Ltd"],
    "TCS": ["TCS", "TCS-EQ", "Tata Consultancy Services"], "HDFCBANK": ["HDFCBANK", "HDFC Bank"],
    "ICICIBANK": ["ICICIBANK"], "SBIN": ["SBIN", "SBIN-EQ"], "TATAMOTORS": ["TATAMOTORS"],
    "ITC": ["ITC", "ITC Ltd"], "WIPRO": ["WIPRO"], "AXISBANK": ["AXISBANK"], "LT": ["LT"],
    "MARUTI": ["MARUTI"], "BHARTIARTL": ["BHARTIARTL"], "NIFTY": ["NIFTY"],
    "BANKNIFTY": ["BANKNIFTY"],
}
BASE_PRICE = {
    "INFY": 1500, "RELIANCE": 2900, "TCS": 3500, "HDFCBANK": 1600, "ICICIBANK": 1100,
    "SBIN": 780, "TATAMOTORS": 950, "ITC": 440, "WIPRO": 480, "AXISBANK": 1150, "LT": 3600,
    "MARUTI": 12000, "BHARTIARTL": 1400, "NIFTY": 24000, "BANKNIFTY": 51000,
}
LOT_SIZE = {"NIFTY": 75, "BANKNIFTY": 30, "INFY": 400, "RELIANCE": 500, "TCS": 175}
EQUITIES = [s for s in SPOKEN if s not in ("NIFTY", "BANKNIFTY")]
QUANTITIES = [1, 5, 10, 15, 20, 25, 50, 75, 100, 150, 200, 250, 300, 500, 1000, 1500, 2000]
WORDS = {1: "one", 5: "five", 10: "ten", 15: "fifteen", 20: "twenty", 25: "twenty five",
         50: "fifty", 75: "seventy five", 100: "one hundred", 150: "one hundred fifty",
         200: "two hundred", 250: "two hundred fifty", 300: "three hundred",
         500: "five hundred", 1000: "one thousand", 1500: "one thousand five hundred",
         2000: "two thousand", 2: "two", 3: "three", 4: "four"}
HINDI = {100: "ek sau", 200: "do sau", 500: "paanch sau", 1000: "ek hazaar",
         2000: "do hazaar", 50: "pachas", 5: "paanch", 10: "das", 20: "bees"}

AGREE = ("exact", "alias", "price_within", "market", "lots", "corrected")
DISAGREE = ("quantity", "side", "symbol", "price_outside", "lots_as_shares",
            "not_confirmed", "cancelled", "booked_readback_error")
OTHER = ("no_call", "short_call", "unsupported_language", "failed_stt", "pending")

YES_EN = ["Yes.", "Yes, confirmed.", "Yes please, go ahead.", "Correct.", "That's right.",
          "Yeah, do it.", "Yes, place the order.", "Okay, go ahead.", "Sure.", "I confirm.",
          "Yes, no problem.", "Yes yes, go ahead.", "Please proceed.", "Okay, done.",
          "Yes, that is correct."]
YES_HI = ["Haan.", "Haan ji.", "Ji haan.", "Theek hai.", "Haan, theek hai.",
          "Ji, kar dijiye.", "Bilkul.", "Haan kar do.", "Sahi hai.", "Haanji, kar do.",
          "Ji bilkul.", "Han theek hai ji.", "Haan haan, chalega."]
DEFER = ["No, not now.", "Let me think about it.", "I will call you back later.",
         "Wait, I need to check my funds first.", "Nahi, abhi nahi.",
         "Ruko, baad mein batata hoon.", "Hmm, I am not sure.", "No, leave it.",
         "No no, wait.", "Not today.", "Nahi nahi, rehne do.", "I'll decide later.",
         "Abhi mat karo."]
CANCEL = ["Actually, please cancel that order.", "Sorry, rehne do, cancel kar do.",
          "On second thought, cancel it."]
OPENING = ["Good morning, this is Priya calling from Sharekhan Securities.",
           "Namaste sir, mera naam Rahul hai.", "Hello, this call is being recorded."]
FILLER = ["May I have your client code please?", "Client code AB1234, born 5th March 1980.",
          "Equity investments are subject to market risk.", "Please hold for a second."]
CLOSING = ["Thank you sir, have a good day.", "Dhanyavaad sir."]


@dataclass(frozen=True)
class Said:
    symbol: str
    side: str  # BUY | SELL
    quantity: int  # shares, or lots when lots
    lots: bool
    price: float | None  # None: market order

    @property
    def shares(self) -> int:
        return self.quantity * LOT_SIZE[self.symbol] if self.lots else self.quantity


@dataclass
class Case:
    audio_name: str | None
    status: str
    failed_stage: str | None
    segments: list[dict[str, Any]]
    booked: list[dict[str, Any]]  # trade_id, symbol, side, quantity, price, order_type
    truth: list[str] = field(default_factory=list)  # expected verdict per booked trade
    kinds: list[str] = field(default_factory=list)  # the generator's class per trade
    shape: str = "none"  # the transcript's shape (SHAPES, or "raw")


def _qty(n: int, rng: random.Random, hinglish: bool) -> str:
    r = rng.random()
    if hinglish and n in HINDI and r < 0.3:
        return HINDI[n]
    if n in WORDS and r < 0.45:
        return WORDS[n]
    return f"{n:,}" if n >= 1000 and r < 0.7 else str(n)


def _price(p: float | None, rng: random.Random, hinglish: bool) -> str:
    if p is None:
        return rng.choice(["market pe", "market rate pe"] if hinglish
                          else ["at market", "at market price", "at the market rate"])
    text = f"{p:.2f}".rstrip("0").rstrip(".")
    if hinglish:
        return rng.choice([f"{text} pe", f"{text} ke bhav", f"{text} rupees pe"])
    return rng.choice([f"at {text}", f"at {text} rupees", f"at ₹{text}", f"at Rs. {text}",
                       f"limit {text}"])


def statement(o: Said, rng: random.Random, hinglish: bool) -> str:
    """The client placing the order."""
    sym = rng.choice(SPOKEN[o.symbol])
    q = _qty(o.quantity, rng, hinglish)
    p = _price(o.price, rng, hinglish)
    if hinglish:
        unit = "lot" if o.lots else rng.choice(["share", "shares"])
        verb = rng.choice(["kharid lo", "kharido", "buy kar do"] if o.side == "BUY"
                          else ["bech do", "becho", "sell kar do"])
        return rng.choice([f"{sym} ke {q} {unit} {p} {verb}.", f"{q} {unit} {sym} {p} {verb}."])
    verb = rng.choice(["buy", "purchase"]) if o.side == "BUY" else "sell"
    unit = "lots" if o.lots else "shares"
    return rng.choice([
        f"I want to {verb} {q} {unit} of {sym} {p}.",
        f"Please {verb} {q} {unit} of {sym} {p}.",
        f"{verb.capitalize()} {sym}, {q} {unit}, {p}.",
        f"Can you {verb} {q} {unit} of {sym} for me {p}?",
    ])


def readback(o: Said, rng: random.Random, hinglish: bool) -> str:
    """The agent reading the order back (a question or a statement)."""
    sym = rng.choice(SPOKEN[o.symbol])
    q = _qty(o.quantity, rng, hinglish)
    p = _price(o.price, rng, False)
    unit = "lots" if o.lots else "shares"
    if hinglish and rng.random() < 0.5:
        verb = "kharid rahe hain" if o.side == "BUY" else "bech rahe hain"
        unit_hi = "lot" if o.lots else "share"
        return f"Sir, {sym} ke {q} {unit_hi} {_price(o.price, rng, True)} {verb}, theek hai?"
    verb = "buy" if o.side == "BUY" else "sell"
    ing = "buying" if o.side == "BUY" else "selling"
    return rng.choice([
        f"Just to confirm, {verb} {q} {unit} of {sym} {p}.",
        f"So that's {ing} {q} {unit} of {sym} {p}, correct?",
        f"Let me read it back: {verb} {q} {unit} of {sym} {p}, is that right?",
        f"Confirming your order, {verb} {q} {unit} of {sym} {p}. Shall I place it?",
        f"That is {q} {unit} of {sym} {p}, correct?",
        f"Sir, {q} {unit} {sym} {p}, {ing}, confirm karein?",
    ])


def _plain_readback(o: Said, rng: random.Random) -> str:
    verb = "buy" if o.side == "BUY" else "sell"
    unit = "lots" if o.lots else "shares"
    return (f"{verb} {_qty(o.quantity, rng, False)} {unit} of {rng.choice(SPOKEN[o.symbol])} "
            f"{_price(o.price, rng, False)}")


def yes(rng: random.Random, hinglish: bool) -> str:
    return rng.choice(YES_HI if hinglish and rng.random() < 0.7 else YES_EN)


def draw_said(rng: random.Random, exclude: set[str]) -> Said:
    if rng.random() < 0.12:
        symbol = rng.choice([s for s in ("NIFTY", "BANKNIFTY") if s not in exclude])
        return Said(symbol, rng.choice(["BUY", "SELL"]), rng.choice([1, 2, 3, 4, 5, 10]), True,
                    None if rng.random() < 0.3 else float(BASE_PRICE[symbol] + rng.randint(-300, 300)))
    symbol = rng.choice([s for s in EQUITIES if s not in exclude])
    base = BASE_PRICE[symbol]
    price = None if rng.random() < 0.2 else round(base * rng.uniform(0.9, 1.1) * 20) / 20
    return Said(symbol, rng.choice(["BUY", "SELL"]), rng.choice(QUANTITIES), False, price)


def perturb(kind: str, o: Said, rng: random.Random, exclude: set[str]) -> dict[str, Any]:
    """The booked trade for an order said as `o`, disagreeing per `kind`."""
    symbol = rng.choice(BOOKED[o.symbol]) if kind == "alias" else o.symbol
    side, quantity = o.side, float(o.shares)
    price = o.price if o.price is not None else float(BASE_PRICE[o.symbol])
    if kind == "price_within" and o.price is not None:
        price = round(o.price * (1 + rng.uniform(-0.0035, 0.0035)) * 20) / 20
    elif kind == "market" or o.price is None:
        price = round(BASE_PRICE[o.symbol] * rng.uniform(0.95, 1.05), 2)
    if kind == "quantity":
        quantity = rng.choice([q for q in (o.shares * 10, o.shares * 2, o.shares + 50,
                                           max(1, o.shares // 10)) if q != o.shares])
    elif kind == "side":
        side = "SELL" if o.side == "BUY" else "BUY"
    elif kind == "symbol":
        symbol = rng.choice([s for s in EQUITIES if s != o.symbol and s not in exclude])
    elif kind == "price_outside":
        factor = rng.uniform(0.012, 0.06) * rng.choice([-1, 1])
        price = round((o.price or BASE_PRICE[o.symbol]) * (1 + factor), 2)
    elif kind == "lots_as_shares":
        quantity = float(o.quantity)
    if rng.random() < 0.5:
        side = {"BUY": rng.choice(["B", "Buy", "BUY"]), "SELL": rng.choice(["S", "Sell", "SELL"])}[side]
    return {"symbol": symbol, "side": side, "quantity": quantity, "price": price}


def _kind_for(rng: random.Random, said: Said) -> str:
    kinds = list(AGREE + DISAGREE)
    if not said.lots:
        kinds = [k for k in kinds if k not in ("lots", "lots_as_shares")]
    else:
        kinds = [k for k in kinds if k not in ("alias", "symbol")]
    if said.price is None:
        kinds = [k for k in kinds if k not in ("price_within", "price_outside")]
    else:
        kinds = [k for k in kinds if k != "market"]
    return rng.choice(kinds)


SHAPES = ("speakers", "plain", "merged", "lower")


def build_call(index: int, rng: random.Random, trade_ids: list[str],
               shapes: tuple[str, ...] = SHAPES) -> Case:
    """One call and its booked trades (len(trade_ids) of them, 1 or 2)."""
    hinglish = rng.random() < 0.35
    shape = rng.choice(shapes)
    orders: list[Said] = []
    for _ in trade_ids:
        orders.append(draw_said(rng, {o.symbol for o in orders}))
    kinds = [_kind_for(rng, o) for o in orders]
    turns: list[tuple[str, str]] = [("agent", rng.choice(OPENING)), ("agent", FILLER[0]),
                                    ("client", FILLER[1])]
    if len(orders) == 2 and rng.random() < 0.4 and not {"corrected", "booked_readback_error"} & set(kinds):
        # Both orders in one breath, one read-back, one answer: they share one fate.
        said = [statement(o, rng, hinglish).rstrip(".?") for o in orders]
        joiner = "aur" if hinglish else "and"
        turns.append(("client", f"{said[0]} {joiner} {said[1][0].lower()}{said[1][1:]}."))
        a, b = (_plain_readback(o, rng) for o in orders)
        turns.append(("agent", rng.choice([f"Just to confirm, {a} and {b}.",
                                           f"So that's {a}, and {b}, correct?",
                                           f"Let me read it back: {a}, and then {b}."])))
        fate = next((k for k in kinds if k in ("not_confirmed", "cancelled")), None)
        _answer(turns, fate or "exact", rng, hinglish, shape)
        if fate:
            kinds = [fate] * len(kinds)
    else:
        for o, kind in zip(orders, kinds, strict=True):
            _order_turns(turns, o, kind, rng, hinglish, shape)
    turns.append(("agent", rng.choice(CLOSING)))
    booked = []
    for tid, o, kind in zip(trade_ids, orders, kinds, strict=True):
        b = perturb(kind, o, rng, {x.symbol for x in orders})
        if kind == "booked_readback_error":
            b["quantity"] = float(o.shares * 10)
        booked.append({"trade_id": tid, **b, "order_type": None})
    truth = ["confirmed" if k in AGREE else "mismatch" for k in kinds]
    return Case(f"call_{index:06d}.wav", "AuditDone", None, _segments(turns, shape), booked,
                truth, kinds, shape)


def _order_turns(turns: list[tuple[str, str]], o: Said, kind: str, rng: random.Random,
                 hinglish: bool, shape: str) -> None:
    if kind == "not_confirmed":
        variant = rng.choice(["defer", "propose", "no_reply", "hedge"]
                             + (["agent_ok"] if shape == "speakers" else []))
        if variant == "propose":
            sym = rng.choice(SPOKEN[o.symbol])
            verb = "buy" if o.side == "BUY" else "sell"
            unit = "lots" if o.lots else "shares"
            turns.append(("agent", f"Sir, {sym} is looking good, shall I {verb} "
                                   f"{_qty(o.quantity, rng, False)} {unit} {_price(o.price, rng, False)}?"))
            turns.append(("client", rng.choice(DEFER)))
        elif variant == "hedge":
            verb = "buying" if o.side == "BUY" else "selling"
            unit = "lots" if o.lots else "shares"
            turns.append(("client", f"I am thinking of {verb} {o.quantity} {unit} of "
                                    f"{rng.choice(SPOKEN[o.symbol])} {_price(o.price, rng, False)}, maybe."))
            turns.append(("agent", "Okay sir, let me know when you decide."))
        elif variant == "agent_ok":
            turns.append(("client", statement(o, rng, hinglish)))
            turns.append(("agent", "Okay sir."))
        else:
            turns.append(("client", statement(o, rng, hinglish)))
            turns.append(("agent", readback(o, rng, hinglish)))
            if variant == "defer":
                turns.append(("client", rng.choice(DEFER)))
        return
    turns.append(("client", statement(o, rng, hinglish)))
    if kind in ("corrected", "booked_readback_error"):
        wrong = replace(o, quantity=o.quantity * 10)
        turns.append(("agent", readback(wrong, rng, False)))
        turns.append(("client", f"No, {o.quantity} only."))
        turns.append(("agent", f"Sorry sir. {readback(o, rng, False)}"))
        if kind == "booked_readback_error":
            # booked as the wrong read-back, which the client refused: mismatch.
            turns.append(("client", yes(rng, hinglish)))
            return
    else:
        turns.append(("agent", readback(o, rng, hinglish)))
    if rng.random() < 0.3:
        turns.append(("agent", FILLER[2]))
    _answer(turns, kind, rng, hinglish, shape)


def _answer(turns: list[tuple[str, str]], kind: str, rng: random.Random, hinglish: bool,
            shape: str) -> None:
    if kind == "not_confirmed":
        turns.append(("client", rng.choice(DEFER)))
        return
    turns.append(("client", yes(rng, hinglish)))
    if kind == "cancelled":
        turns.append(("agent", "Order noted sir."))
        turns.append(("client", rng.choice(CANCEL)))


def _segments(turns: list[tuple[str, str]], shape: str) -> list[dict[str, Any]]:
    texts: list[tuple[str | None, str]] = []
    for speaker, text in turns:
        if shape == "merged" and texts and speaker == "client" and texts[-1][0] == "agent":
            texts[-1] = ("client", f"{texts[-1][1]} {text}")  # one segment, two voices
            continue
        texts.append((speaker, text))
    if shape in ("lower", "raw"):
        # STT without case, commas, apostrophes or question marks; "raw" drops the full
        # stops too. Decimals and "2,000" keep their digits together.
        cleaned = []
        for sp, text in texts:
            text = re.sub(r"(?<=\d),(?=\d)", "", text.lower()).replace("'", "")
            text = re.sub(r"[^\w\s&₹.]|\.(?!\d)" if shape == "raw" else r"[^\w\s&₹.]",
                          " ", text)
            cleaned.append((sp, " ".join(text.split())))
        texts = cleaned
    out, t = [], 0.0
    for speaker, text in texts:
        d = 1.5 + 0.06 * len(text)
        seg: dict[str, Any] = {"start": round(t, 2), "end": round(t + d, 2), "text": text}
        seg["speaker"] = speaker if shape == "speakers" else None
        out.append(seg)
        t += d + 0.4
    return out


def other_case(index: int, kind: str, rng: random.Random, trade_id: str) -> Case:
    """A trade whose verdict is decided before any matching (rules 1–4)."""
    o = draw_said(rng, set())
    booked = [{"trade_id": trade_id, **perturb("exact", o, rng, set()), "order_type": None}]
    status, failed, truth = {
        "no_call": ("", None, "no_call"), "short_call": ("ShortCall", None, "call_unusable"),
        "unsupported_language": ("UnsupportedLanguage", None, "call_unusable"),
        "failed_stt": ("Pending", "stt", "call_unusable"),
        "pending": ("TranscriptDone", None, "pending"),
    }[kind]
    audio = None if kind == "no_call" else f"call_{index:06d}.wav"
    return Case(audio, status, failed, [], booked, [truth], [kind])
