"""The verdict rules (cofid/domain/verdicts.py, verdict_fields.py, verdict_confirm.py)."""

from __future__ import annotations

from typing import Any

import pytest

from cofid.domain.verdict_fields import VerdictRules, normalize_side, normalize_symbol
from cofid.domain.verdicts import (
    BookedTrade,
    CallState,
    MappingOutcome,
    Verdict,
    decide_call,
    decide_verdict,
)

MAPPED = MappingOutcome("a.wav", triaging_ran=True)
DONE = CallState("AuditDone")
INFY = BookedTrade("T1", "INFY", "B", 100, 1500.0)


def segs(*lines: str | tuple[str, str]) -> list[dict[str, Any]]:
    out = []
    for i, line in enumerate(lines):
        speaker, text = line if isinstance(line, tuple) else (None, line)
        out.append({"start": 4.0 * i, "end": 4.0 * i + 3.5, "text": text, "speaker": speaker})
    return out


def heard(symbol: str | None = "INFY", side: str | None = "BUY", quantity: float | None = 100,
          price: float | None = 1500.0, order_type: str | None = "LIMIT",
          evidence: str = "I want to buy 100 shares of Infosys at 1500.",
          trade_id: str | None = None) -> dict[str, Any]:
    return {"symbol": symbol, "side": side, "quantity": quantity, "price": price,
            "order_type": order_type, "trade_id": trade_id, "evidence": evidence}


CONFIRMED_CALL = segs(
    "Good morning, this is Priya from Sharekhan.",
    "I want to buy 100 shares of Infosys at 1500.",
    "Just to confirm, buy 100 Infosys at 1500 rupees, limit order.",
    "Yes, confirmed.",
)


def verdict(trade: BookedTrade = INFY, extracted: list[dict[str, Any]] | None = None,
            transcript: list[dict[str, Any]] | None = None, **kw: Any) -> Verdict:
    return decide_verdict(trade, MAPPED, DONE, [heard()] if extracted is None else extracted,
                          CONFIRMED_CALL if transcript is None else transcript, **kw)


# ---- rules 1–5: before any matching ---------------------------------------------------------


def test_pending_before_triaging() -> None:
    v = decide_verdict(INFY, MappingOutcome(None, triaging_ran=False), None, None, [])
    assert (v.verdict, v.audio_name, v.reason) == ("pending", None, "triaging has not run")
    assert v.fields == {} and v.evidence == ()


def test_no_call_once_triaging_ran() -> None:
    v = decide_verdict(INFY, MappingOutcome(None, triaging_ran=True), None, None, [])
    assert (v.verdict, v.audio_name) == ("no_call", None)


@pytest.mark.parametrize(("state", "reason"), [
    (CallState("ShortCall"), "the call is ShortCall"),
    (CallState("UnsupportedLanguage"), "the call is UnsupportedLanguage"),
    (CallState("Pending", failed_stage="stt"), "the call failed stage stt"),
    (CallState("TranscriptDone", failed_stage="llm1"), "the call failed stage llm1"),
    (None, "call a.wav has no recording in the batch"),
])
def test_call_unusable_says_why(state: CallState | None, reason: str) -> None:
    v = decide_verdict(INFY, MAPPED, state, None, [])
    assert (v.verdict, v.audio_name, v.reason) == ("call_unusable", "a.wav", reason)


def test_a_failed_llm2_does_not_make_the_call_unusable() -> None:
    v = decide_verdict(INFY, MAPPED, CallState("AuditDone", failed_stage="llm2"), [heard()],
                       CONFIRMED_CALL)
    assert v.verdict == "confirmed"


@pytest.mark.parametrize("status", ["Pending", "TranscriptDone"])
def test_pending_while_llm1_has_not_run(status: str) -> None:
    v = decide_verdict(INFY, MAPPED, CallState(status), None, CONFIRMED_CALL)
    assert v.verdict == "pending" and status in v.reason


def test_pending_without_llm1_output() -> None:
    assert decide_verdict(INFY, MAPPED, DONE, None, CONFIRMED_CALL).verdict == "pending"


def test_no_order_in_the_call_is_a_mismatch() -> None:
    v = verdict(extracted=[], transcript=segs("Hello, how are you?"))
    assert v.verdict == "mismatch" and "states no order" in v.reason
    assert not any(c.agree for n, c in v.fields.items() if n != "order_type")


# ---- confirmed, with fields and evidence ---------------------------------------------------


def test_confirmed_with_fields_and_evidence() -> None:
    v = verdict()
    assert v.verdict == "confirmed"
    assert v.fields_json() == {
        "symbol": {"booked": "INFY", "heard": "INFY", "agree": True, "note": None},
        "side": {"booked": "BUY", "heard": "BUY", "agree": True, "note": None},
        "quantity": {"booked": 100, "heard": 100.0, "agree": True, "note": None},
        "price": {"booked": 1500.0, "heard": 1500.0, "agree": True, "note": None},
        "order_type": {"booked": None, "heard": "LIMIT", "agree": True,
                       "note": "no order type booked"},
    }
    assert v.evidence_json() == [
        {"start": 4.0, "end": 7.5, "text": "I want to buy 100 shares of Infosys at 1500."},
        {"start": 8.0, "end": 11.5,
         "text": "Just to confirm, buy 100 Infosys at 1500 rupees, limit order."},
        {"start": 12.0, "end": 15.5, "text": "Yes, confirmed."},
    ]


# ---- each disagreement class ---------------------------------------------------------------


def test_quantity_said_100_booked_1000() -> None:
    v = verdict(BookedTrade("T1", "INFY", "BUY", 1000, 1500.0))
    assert v.verdict == "mismatch"
    assert v.reason == "quantity: booked 1000, heard 100"
    assert not v.fields["quantity"].agree and v.fields["symbol"].agree


def test_sell_said_buy_booked() -> None:
    call = segs("Sell 100 Infosys at 1500.", "Just to confirm, sell 100 Infosys at 1500.", "Yes.")
    v = verdict(extracted=[heard(side="SELL", evidence="Sell 100 Infosys at 1500.")],
                transcript=call)
    assert v.verdict == "mismatch" and v.reason == "side: booked BUY, heard SELL"


def test_another_symbol() -> None:
    call = segs("Buy 100 TCS at 1500.", "Just to confirm, buy 100 TCS at 1500.", "Haan ji.")
    v = verdict(extracted=[heard(symbol="TCS", evidence="Buy 100 TCS at 1500.")], transcript=call)
    assert v.verdict == "mismatch" and v.reason == "symbol: booked INFY, heard TCS"


def test_price_outside_tolerance() -> None:
    v = verdict(BookedTrade("T1", "INFY", "BUY", 100, 1512.0))  # 0.8 % off
    assert v.verdict == "mismatch" and v.reason == "price: booked 1512, heard 1500"


def test_price_within_tolerance_and_one_tick() -> None:
    assert verdict(BookedTrade("T1", "INFY", "BUY", 100, 1507.0)).verdict == "confirmed"
    rules = VerdictRules(price_tolerance=0.0)
    assert verdict(BookedTrade("T1", "INFY", "BUY", 100, 1500.05), rules=rules).verdict == (
        "confirmed")
    assert verdict(BookedTrade("T1", "INFY", "BUY", 100, 1500.1), rules=rules).verdict == (
        "mismatch")


def test_tolerance_is_configurable() -> None:
    booked = BookedTrade("T1", "INFY", "BUY", 100, 1512.0)
    assert verdict(booked, rules=VerdictRules(price_tolerance=0.01)).verdict == "confirmed"


def test_no_price_and_no_market_order_heard() -> None:
    v = verdict(extracted=[heard(price=None, order_type=None)])
    assert v.verdict == "mismatch" and "no price or market order heard" in v.reason


# ---- market orders --------------------------------------------------------------------------


MARKET_CALL = segs(
    "Reliance ke 20 shares market pe kharid lo.",
    "Sir, Reliance ke 20 share market pe kharid rahe hain, theek hai?",
    "Haan, theek hai.",
)


def test_market_order_booked_at_any_price() -> None:
    booked = BookedTrade("T2", "RELIANCE", "BUY", 20, 2931.55)
    extracted = [heard("RELIANCE", "BUY", 20, None, "MARKET",
                       "Reliance ke 20 shares market pe kharid lo.")]
    v = decide_verdict(booked, MAPPED, DONE, extracted, MARKET_CALL)
    assert v.verdict == "confirmed"
    assert v.fields["price"].heard == "MARKET" and v.fields["price"].agree


def test_market_heard_limit_booked_disagrees_on_order_type() -> None:
    booked = BookedTrade("T2", "RELIANCE", "BUY", 20, 2931.55, order_type="LIMIT")
    extracted = [heard("RELIANCE", "BUY", 20, None, "MARKET",
                       "Reliance ke 20 shares market pe kharid lo.")]
    v = decide_verdict(booked, MAPPED, DONE, extracted, MARKET_CALL)
    assert v.verdict == "mismatch" and v.reason == "order_type: booked LIMIT, heard MARKET"


def test_market_only_from_a_risk_disclosure_compares_the_price() -> None:
    call = segs("Buy 100 Infosys at 1500.", "Equity is subject to market risk.", "Yes.")
    extracted = [heard(order_type="MARKET", evidence="Buy 100 Infosys at 1500.")]
    v = verdict(BookedTrade("T1", "INFY", "BUY", 100, 1600.0), extracted, call)
    assert v.verdict == "mismatch" and v.reason.startswith("price: booked 1600, heard 1500")


# ---- lots vs shares --------------------------------------------------------------------------


NIFTY_CALL = segs("Buy 2 lots of Nifty at 24100.", "Just to confirm, buy two lots of Nifty at 24100.",
                  "Ji haan.")
NIFTY_HEARD = [heard("NIFTY", "BUY", 2, 24100.0, "LIMIT", "Buy 2 lots of Nifty at 24100.")]


def test_lots_are_lot_size_shares() -> None:
    v = decide_verdict(BookedTrade("T3", "NIFTY", "BUY", 150, 24100.0), MAPPED, DONE,
                       NIFTY_HEARD, NIFTY_CALL)
    assert v.verdict == "confirmed"
    assert v.fields["quantity"].heard == 150 and v.fields["quantity"].note == "2 lots x 75 shares"


def test_lots_booked_as_shares_is_a_mismatch() -> None:
    v = decide_verdict(BookedTrade("T3", "NIFTY", "BUY", 2, 24100.0), MAPPED, DONE,
                       NIFTY_HEARD, NIFTY_CALL)
    assert v.verdict == "mismatch"
    assert v.reason == "quantity: booked 2, heard 150 (2 lots x 75 shares)"


def test_lot_size_table_is_configurable_and_unknown_sizes_compare_as_spoken() -> None:
    rules = VerdictRules(lot_sizes={"NIFTY": 50})
    booked = BookedTrade("T3", "NIFTY", "BUY", 100, 24100.0)
    assert decide_verdict(booked, MAPPED, DONE, NIFTY_HEARD, NIFTY_CALL, rules).verdict == (
        "confirmed")
    v = decide_verdict(BookedTrade("T3", "NIFTY", "BUY", 2, 24100.0), MAPPED, DONE, NIFTY_HEARD,
                       NIFTY_CALL, VerdictRules(lot_sizes={}))
    assert v.verdict == "confirmed" and "lot size of NIFTY unknown" in str(v.fields["quantity"].note)


def test_shares_in_a_sentence_that_also_says_lots() -> None:
    evidence = "Sell 5 shares of Wipro and buy Bank Nifty, 5 lots, at market."
    call = segs(evidence, "Yes.")
    wipro = heard("WIPRO", "SELL", 5, None, "MARKET", evidence)
    bank = heard("BANKNIFTY", "BUY", 5, None, "MARKET", evidence)
    out = decide_call([BookedTrade("W", "WIPRO", "S", 5, 480.0),
                       BookedTrade("B", "BANKNIFTY", "B", 5, 51000.0)],
                      MAPPED, DONE, [wipro, bank], call)
    assert [v.verdict for v in out] == ["confirmed", "mismatch"]
    assert out[0].fields["quantity"].agree and out[0].fields["quantity"].note is None
    assert not out[1].fields["quantity"].agree and out[1].fields["quantity"].heard == 150


# ---- aliases and sides -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "symbol"), [
    ("INFY", "INFY"), ("Infosys", "INFY"), ("Infosys Ltd", "INFY"), ("infosys ltd.", "INFY"),
    ("INFY-EQ", "INFY"), ("RELIANCE", "RELIANCE"), ("Reliance Industries", "RELIANCE"),
    ("Reliance Industries Limited", "RELIANCE"), ("TCS", "TCS"), ("Tata Consultancy", "TCS"),
    ("Tata Consultancy Services Ltd.", "TCS"), ("HDFC Bank", "HDFCBANK"),
    ("HDFCBANK", "HDFCBANK"), ("Titan Company Ltd", "TITAN"), ("L&T", "LT"),
    ("Some Unknown Co. Ltd", "SOMEUNKNOWN"),
])
def test_symbol_aliases(name: str, symbol: str) -> None:
    assert normalize_symbol(name, VerdictRules()) == symbol


@pytest.mark.parametrize(("value", "side"), [
    ("B", "BUY"), ("buy", "BUY"), ("Purchase", "BUY"), ("bought", "BUY"), ("S", "SELL"),
    ("Sell", "SELL"), ("sold", "SELL"), ("hold", None), ("", None),
])
def test_side_synonyms(value: str, side: str | None) -> None:
    assert normalize_side(value) == side


def test_booked_alias_matches_heard_symbol() -> None:
    assert verdict(BookedTrade("T1", "Infosys Ltd.", "Purchase", 100, 1500.0)).verdict == (
        "confirmed")


# ---- read back and confirmed vs only mentioned -----------------------------------------------


@pytest.mark.parametrize("reply", ["Haan.", "Ji haan.", "Theek hai.", "Haan ji, theek hai.",
                                   "Bilkul, kar dijiye.", "Yes, go ahead.", "Correct.",
                                   "Yes, no problem."])
def test_confirmations_english_and_hinglish(reply: str) -> None:
    call = segs("Infosys ke 100 share 1500 pe kharid lo.",
                "Sir, Infosys ke 100 share 1500 pe kharid rahe hain?", reply)
    extracted = [heard(evidence="Infosys ke 100 share 1500 pe kharid lo.")]
    assert verdict(extracted=extracted, transcript=call).verdict == "confirmed"


@pytest.mark.parametrize("reply", ["No, not now.", "Let me think about it.", "Nahi, abhi nahi.",
                                   "Ruko, baad mein batata hoon.", "Theek nahi hai.",
                                   "I will call you back later."])
def test_refused_or_deferred_is_not_confirmed(reply: str) -> None:
    call = segs("Sir, Infosys looks good, shall I buy 100 shares at 1500?", reply, "Okay sir.")
    extracted = [heard(evidence="Sir, Infosys looks good, shall I buy 100 shares at 1500?")]
    v = verdict(extracted=extracted, transcript=call)
    assert v.verdict == "mismatch" and v.reason.startswith("not confirmed")


def test_mentioned_but_never_confirmed() -> None:
    call = segs("I want to buy 100 shares of Infosys at 1500.",
                "Just to confirm, buy 100 Infosys at 1500.", "Thank you, have a good day.")
    v = verdict(transcript=call)
    assert v.verdict == "mismatch"
    assert v.reason == "not confirmed: the order is stated but the client never says yes to it"
    assert all(c.agree for c in v.fields.values())
    assert [e.text for e in v.evidence] == ["I want to buy 100 shares of Infosys at 1500.",
                                           "Just to confirm, buy 100 Infosys at 1500."]


def test_a_yes_word_inside_the_read_back_is_no_reply() -> None:
    call = segs("I want to buy 100 shares of Infosys at 1500.",
                "Just to confirm, buy 100 Infosys at 1500, okay?")
    assert verdict(transcript=call).verdict == "mismatch"


def test_an_agents_ok_never_confirms_when_speakers_are_known() -> None:
    call = segs(("client", "I want to buy 100 shares of Infosys at 1500."), ("agent", "Okay sir."))
    assert verdict(transcript=call).verdict == "mismatch"
    call = segs(("agent", "Buy 100 Infosys at 1500, correct?"), ("client", "Yes."))
    extracted = [heard(evidence="Buy 100 Infosys at 1500, correct?")]
    assert verdict(extracted=extracted, transcript=call).verdict == "confirmed"


def test_a_hedged_mention_is_not_an_order() -> None:
    call = segs("I am thinking of buying 100 Infosys at 1500, maybe.", "Sure, sir.")
    extracted = [heard(evidence="I am thinking of buying 100 Infosys at 1500, maybe.")]
    assert verdict(extracted=extracted, transcript=call).verdict == "mismatch"


def test_cancelled_after_the_yes() -> None:
    call = [*CONFIRMED_CALL, *segs("Actually, please cancel that order.")]
    v = verdict(transcript=call)
    assert v.verdict == "mismatch" and v.reason.startswith("cancelled")


def test_a_cancel_after_another_order_is_about_that_order() -> None:
    call = [*CONFIRMED_CALL, *segs("And sell 50 TCS at 3500.", "Yes.", "No wait, cancel it.")]
    assert verdict(transcript=call).verdict == "confirmed"


def test_corrected_read_back_confirms_the_corrected_order() -> None:
    call = segs("Buy 100 Infosys at 1500.", "Just to confirm, buy 1000 Infosys at 1500.",
                "No, 100 only.", "Sorry sir. Just to confirm, buy 100 Infosys at 1500.", "Yes.")
    extracted = [heard(evidence="Buy 100 Infosys at 1500."),
                 heard(quantity=1000, evidence="Just to confirm, buy 1000 Infosys at 1500.")]
    assert verdict(extracted=extracted, transcript=call).verdict == "confirmed"
    wrong = verdict(BookedTrade("T1", "INFY", "BUY", 1000, 1500.0), extracted, call)
    assert wrong.verdict == "mismatch" and "refuses or corrects" in wrong.reason


def test_a_yes_after_another_orders_read_back_answers_that_order() -> None:
    call = segs("Buy 100 Infosys at 1500.", "Just to confirm, buy 100 Infosys at 1500.",
                "Sell 50 TCS at 3500.", "Just to confirm, sell 50 TCS at 3500.", "Haan.")
    assert verdict(transcript=call, extracted=[heard(evidence="Buy 100 Infosys at 1500.")]
                   ).verdict == "mismatch"


# ---- several booked trades on one call --------------------------------------------------------


def test_each_heard_order_backs_one_booked_trade() -> None:
    twice = [INFY, BookedTrade("T9", "INFY", "BUY", 100, 1500.0)]
    out = decide_call(twice, MAPPED, DONE, [heard()], CONFIRMED_CALL)
    assert [v.verdict for v in out] == ["confirmed", "mismatch"]
    assert out[1].reason == "the order heard already backs trade T1"


def test_two_orders_in_one_call_are_matched_to_their_bookings() -> None:
    call = segs("Buy 100 Infosys at 1500 and sell 50 TCS at 3500.",
                "So that's buy 100 Infosys at 1500 and sell 50 TCS at 3500, correct?", "Yes.")
    ev = "Buy 100 Infosys at 1500 and sell 50 TCS at 3500."
    extracted = [heard(evidence=ev), heard("TCS", "SELL", 50, 3500.0, "LIMIT", ev)]
    tcs = BookedTrade("T2", "TCS-EQ", "S", 50, 3502.5)
    out = decide_call([tcs, INFY], MAPPED, DONE, extracted, call)
    assert [(v.trade_id, v.verdict) for v in out] == [("T2", "confirmed"), ("T1", "confirmed")]


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="price_tolerance"):
        VerdictRules(price_tolerance=-1)
    with pytest.raises(ValueError, match="lot_sizes"):
        VerdictRules(lot_sizes={"NIFTY": 0})
    with pytest.raises(ValueError, match="confirm_window"):
        VerdictRules(confirm_window=0)
