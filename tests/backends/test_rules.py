import pytest

from cofid.backends.base import ChatRequest, PermanentBackendError
from cofid.backends.json_schema import validate
from cofid.backends.rules import RulesChat, transcript_text
from cofid.domain.prompts import build_llm1_request, build_llm2_request
from cofid.domain.questions import Question, default_question_set
from cofid.domain.replies import keyed_llm2

QUESTIONS = default_question_set().questions


def segs(*lines: tuple[str, str]) -> list[dict]:
    return [
        {"start": 4.0 * i, "end": 4.0 * i + 3.5, "text": text, "speaker": speaker}
        for i, (speaker, text) in enumerate(lines)
    ]


ENGLISH_CALL = segs(
    ("agent", "Good morning, my name is Priya calling from Sharekhan Securities."),
    ("agent", "Please note this call is being recorded."),
    ("agent", "May I have your client code and date of birth?"),
    ("client", "Client code AB1234, born 5th March 1980."),
    ("client", "I want to buy 100 shares of Infosys at 1500."),
    ("agent", "Equity investments are subject to market risk."),
    ("agent", "Just to confirm, buy 100 Infosys at 1500 rupees, limit order."),
    ("client", "Yes, confirmed."),
    ("agent", "Thank you, the order is placed."),
)
INFY_TRADE = {
    "trade_id": "T1",
    "symbol": "INFY",
    "side": "B",
    "quantity": 100,
    "price": 1500.0,
    "trade_time": "2024-05-02T10:15:00",
}

SMALL_TALK_CALL = segs(
    ("agent", "Hello sir, this is a courtesy call about your account statement."),
    ("client", "Okay, I received it, thanks."),
    ("agent", "Returns are guaranteed if you stay invested with us."),
)

HINGLISH_CALL = segs(
    ("agent", "Namaste sir, mera naam Rahul hai, yeh call record ho rahi hai."),
    ("agent", "Aapka naam aur client code bataiye."),
    ("client", "Ramesh Kumar, client code RK778."),
    ("client", "TCS ke 50 share 3500 pe bech do aur Reliance ke 20 shares market pe kharid lo."),
    ("agent", "Theek hai sir, TCS ke 50 share 3500 pe bech rahe hain."),
    ("client", "Haan ji, theek hai."),
)
HINGLISH_TRADES = [
    {"trade_id": "S9", "symbol": "TCS-EQ", "side": "SELL", "quantity": 50, "price": 3502.5},
    {"trade_id": "B7", "symbol": "RELIANCE", "side": "BUY", "quantity": 25, "price": 2900.0},
]


async def run_llm1(transcript, trades):
    request = build_llm1_request(
        templates=None, transcript=transcript, call_metadata=None, trades=trades
    )
    result = await RulesChat().complete(request)
    validate(result.data, request.schema)
    return result


async def run_llm2(transcript, trades, extracted, questions=QUESTIONS):
    request = build_llm2_request(
        templates=None,
        transcript=transcript,
        call_metadata={"audioName": "a.wav"},
        trades=trades,
        extracted_trades=extracted,
        questions=questions,
    )
    result = await RulesChat().complete(request)
    # Stages get the list form; the schema's shape is keyed by question id.
    validate(keyed_llm2(result.data["answers"]), request.schema)
    return result


def answers_by_id(result) -> dict[str, tuple[str, str]]:
    return {a["question_id"]: (a["answer"], a["evidence"]) for a in result.data["answers"]}


async def test_english_call_extracts_the_trade_and_links_it():
    result = await run_llm1(ENGLISH_CALL, [INFY_TRADE])
    assert result.data == {
        "trades": [
            {
                "symbol": "INFY",
                "side": "BUY",
                "quantity": 100.0,
                "price": 1500.0,
                "order_type": "LIMIT",
                "trade_id": "T1",
                "evidence": "I want to buy 100 shares of Infosys at 1500.",
            }
        ]
    }
    assert result.request["purpose"] == "llm1"
    assert result.request["schema_name"] == "llm1_trades"
    assert result.request["segments"] == len(ENGLISH_CALL)
    assert result.response["trades"] == 1


async def test_english_call_answers_every_question():
    extracted = (await run_llm1(ENGLISH_CALL, [INFY_TRADE])).data["trades"]
    result = await run_llm2(ENGLISH_CALL, [INFY_TRADE], extracted)
    ids = [a["question_id"] for a in result.data["answers"]]
    assert ids == [q.id for q in QUESTIONS]
    a = answers_by_id(result)
    assert a["TRD_INSTRUMENT"] == (
        "INFY — matches trade T1",
        "I want to buy 100 shares of Infosys at 1500.",
    )
    assert a["TRD_SIDE_QTY"][0] == "BUY 100 INFY — matches trade T1"
    assert a["TRD_PRICE"][0] == "1500 LIMIT INFY — matches trade T1"
    assert a["CMP_RECORDING_DISCLOSURE"] == ("Yes", "Please note this call is being recorded.")
    assert a["CMP_AGENT_IDENTIFIED"][0] == "Yes"
    assert a["CMP_CLIENT_IDENTIFIED"] == (
        "Yes",
        "May I have your client code and date of birth?",
    )
    assert a["CMP_ORDER_READBACK"] == (
        "Yes",
        "Just to confirm, buy 100 Infosys at 1500 rupees, limit order.",
    )
    assert a["CMP_CLIENT_CONFIRMATION"] == ("Yes", "Yes, confirmed.")
    assert a["CMP_NO_ASSURED_RETURNS"] == ("Yes", "")
    assert a["CMP_RISK_DISCLOSURE"] == ("Yes", "Equity investments are subject to market risk.")
    assert result.request["questions"] == len(QUESTIONS)
    assert result.response == {"backend": "rules", "schema_name": "llm2_answers", "answers": 10}


async def test_trade_that_differs_from_the_booking_is_flagged():
    booked = [{**INFY_TRADE, "quantity": 200, "price": 1400.0}]
    extracted = (await run_llm1(ENGLISH_CALL, booked)).data["trades"]
    # Quantity differs, so llm1 links no booked trade...
    assert [t["trade_id"] for t in extracted] == [None]
    a = answers_by_id(await run_llm2(ENGLISH_CALL, booked, extracted))
    # ...the instrument still matches, side/quantity and price do not.
    assert a["TRD_INSTRUMENT"][0] == "INFY — matches trade T1"
    assert a["TRD_SIDE_QTY"][0] == "BUY 100 INFY — no matching trade"
    assert a["TRD_PRICE"][0] == "1500 LIMIT INFY — no matching trade"


async def test_call_without_trade_talk():
    llm1 = await run_llm1(SMALL_TALK_CALL, [INFY_TRADE])
    assert llm1.data == {"trades": []}
    result = await run_llm2(SMALL_TALK_CALL, [INFY_TRADE], llm1.data["trades"])
    a = answers_by_id(result)
    assert [a[q.id][0] for q in QUESTIONS[:3]] == ["Not discussed"] * 3
    assert a["CMP_RECORDING_DISCLOSURE"] == ("No", "")
    assert a["CMP_ORDER_READBACK"] == ("No", "")
    assert a["CMP_CLIENT_CONFIRMATION"] == ("No", "")
    assert a["CMP_RISK_DISCLOSURE"] == ("No", "")
    assert a["CMP_NO_ASSURED_RETURNS"] == (
        "No",
        "Returns are guaranteed if you stay invested with us.",
    )


async def test_hinglish_call():
    llm1 = await run_llm1(HINGLISH_CALL, HINGLISH_TRADES)
    trades = llm1.data["trades"]
    keys = ("symbol", "side", "quantity", "price", "order_type")
    assert [tuple(t[k] for k in keys) for t in trades] == [
        ("TCS", "SELL", 50.0, 3500.0, "LIMIT"),
        ("RELIANCE", "BUY", 20.0, None, "MARKET"),
    ]
    # TCS matches the booked TCS-EQ sell; Reliance was booked for 25, not 20.
    assert [t["trade_id"] for t in trades] == ["S9", None]

    a = answers_by_id(await run_llm2(HINGLISH_CALL, HINGLISH_TRADES, trades))
    assert a["TRD_INSTRUMENT"][0] == "TCS — matches trade S9; RELIANCE — matches trade B7"
    assert a["TRD_SIDE_QTY"][0] == (
        "SELL 50 TCS — matches trade S9; BUY 20 RELIANCE — no matching trade"
    )
    assert a["TRD_PRICE"][0] == (
        "3500 LIMIT TCS — matches trade S9; MARKET RELIANCE — matches trade B7"
    )
    assert a["CMP_RECORDING_DISCLOSURE"][0] == "Yes"
    assert a["CMP_AGENT_IDENTIFIED"][0] == "Yes"
    assert a["CMP_CLIENT_IDENTIFIED"][0] == "Yes"
    assert a["CMP_ORDER_READBACK"] == (
        "Yes",
        "Theek hai sir, TCS ke 50 share 3500 pe bech rahe hain.",
    )
    assert a["CMP_CLIENT_CONFIRMATION"] == ("Yes", "Haan ji, theek hai.")


async def test_refusal_is_not_a_confirmation():
    call = segs(
        ("client", "Buy 10 Wipro at 450."),
        ("agent", "Buy 10 Wipro at 450, shall I place it?"),
        ("client", "Yes, actually no, cancel it."),
    )
    a = answers_by_id(await run_llm2(call, [], []))
    assert a["CMP_CLIENT_CONFIRMATION"] == ("No", "")
    assert a["CMP_ORDER_READBACK"][0] == "Yes"


async def test_llm2_without_llm1_output_extracts_itself():
    # No extracted_trades in the context: the rules read the transcript themselves.
    request = build_llm2_request(
        templates=None,
        transcript=ENGLISH_CALL,
        call_metadata=None,
        trades=[INFY_TRADE],
        extracted_trades=[],
        questions=QUESTIONS[:1],
    )
    del request.context["extracted_trades"]
    result = await RulesChat().complete(request)
    assert result.data["answers"][0]["answer"] == "INFY — matches trade T1"


async def test_custom_question_set_answers_in_order():
    questions = [
        *QUESTIONS[:3],
        Question("Z_LAST", "Did anyone say goodbye?", "keywords", ("bye", "goodbye")),
        Question("A_FIRST", "Was the word 'placed' used?", "keywords", ("placed",)),
    ]
    result = await run_llm2(ENGLISH_CALL, [INFY_TRADE], [], questions)
    assert [(x["question_id"], x["answer"]) for x in result.data["answers"]] == [
        ("TRD_INSTRUMENT", "Not discussed"),
        ("TRD_SIDE_QTY", "Not discussed"),
        ("TRD_PRICE", "Not discussed"),
        ("Z_LAST", "No"),
        ("A_FIRST", "Yes"),
    ]


async def test_unknown_purpose_is_permanent():
    request = ChatRequest(purpose="llm3", system="", user="", schema_name="x", schema={})
    with pytest.raises(PermanentBackendError, match="llm3"):
        await RulesChat().complete(request)


async def test_reply_not_matching_the_schema_is_refused():
    request = build_llm1_request(
        templates=None, transcript=ENGLISH_CALL, call_metadata=None, trades=[]
    )
    narrow = ChatRequest(
        purpose="llm1",
        system="",
        user="",
        schema_name="narrow",
        schema={**request.schema, "properties": {"trades": {"type": "array", "maxItems": 0}}},
        context=request.context,
    )
    with pytest.raises(PermanentBackendError, match="narrow"):
        await RulesChat().complete(narrow)


def test_transcript_text_breaks_at_speaker_changes():
    text = transcript_text(
        [
            {"start": 0, "end": 1, "text": "buy 100", "speaker": "client"},
            {"start": 1, "end": 2, "text": "infosys", "speaker": "client"},
            {"start": 2, "end": 3, "text": "yes", "speaker": "agent"},
            {"start": 3, "end": 4, "text": "  ", "speaker": "agent"},
        ]
    )
    assert text == "buy 100 infosys\nyes"


async def test_a_call_with_more_orders_than_the_schema_allows_reports_the_first_ones():
    # LLM1's schema has maxItems (issue 20); the rules backend stays within it.
    transcript = [
        {"start": float(i), "end": i + 1.0, "text": f"Please buy {10 + i} shares of Infosys."}
        for i in range(25)
    ]
    result = await run_llm1(transcript, [INFY_TRADE])
    assert len(result.data["trades"]) == 20
    assert result.data["trades"][0]["quantity"] == 10
