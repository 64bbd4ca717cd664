import pytest

from cofid.domain.trade_grammar import (
    SYMBOL_ALIASES,
    ExtractedTrade,
    canonical_symbol,
    extract_trades,
    split_sentences,
)


def fields(t: ExtractedTrade) -> tuple:
    return (t.symbol, t.side, t.quantity, t.price, t.order_type)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # English, verb first.
        ("Buy 100 shares of Infosys at 1500.", ("INFY", "BUY", 100, 1500, "LIMIT")),
        ("Sell fifty lots of NIFTY at market.", ("NIFTY", "SELL", 50, None, "MARKET")),
        (
            "Please purchase 2,000 Reliance at rupees 2450.50 limit.",
            ("RELIANCE", "BUY", 2000, 2450.5, "LIMIT"),
        ),
        (
            "I want to buy one thousand five hundred Tata Motors at market price.",
            ("TATAMOTORS", "BUY", 1500, None, "MARKET"),
        ),
        (
            "Buy two hundred and fifty HDFC Bank at Rs. 1650 please.",
            ("HDFCBANK", "BUY", 250, 1650, "LIMIT"),
        ),
        ("Sell a hundred State Bank of India @ 780", ("SBIN", "SELL", 100, 780, "LIMIT")),
        ("You bought 25 TCS at ₹3,890.75.", ("TCS", "BUY", 25, 3890.75, "LIMIT")),
        ("Sell 5 thousand ITC, limit price 440", ("ITC", "SELL", 5000, 440, "LIMIT")),
        ("Buy 2,00,000 Wipro at market", ("WIPRO", "BUY", 200000, None, "MARKET")),
        ("Sell 3 lots Bank Nifty", ("BANKNIFTY", "SELL", 3, None, None)),
        ("Buy quantity 75 of ICICI Bank", ("ICICIBANK", "BUY", 75, None, None)),
        ("Buy twenty five L&T at about 3400 rupees", ("LT", "BUY", 25, 3400, "LIMIT")),
        # Symbol before an English verb, the rest after it.
        ("Infosys, buy 100 at 1500", ("INFY", "BUY", 100, 1500, "LIMIT")),
        # Romanized Hindi, verb last.
        ("100 INFY kharid lo.", ("INFY", "BUY", 100, None, None)),
        ("TCS ke 50 share 3500 pe bech do.", ("TCS", "SELL", 50, 3500, "LIMIT")),
        ("Do sau SBI shares buy kar do market rate pe.", ("SBIN", "BUY", 200, None, "MARKET")),
        ("Pachas Airtel bech dijiye", ("BHARTIARTL", "SELL", 50, None, None)),
        (
            "L&T ke 20 shares kharid lijiye 3400 ke bhav pe",
            ("LT", "BUY", 20, 3400, "LIMIT"),
        ),
        ("Reliance ke 10 shares market pe becho", ("RELIANCE", "SELL", 10, None, "MARKET")),
    ],
)
def test_one_trade_per_phrasing(text, expected):
    trades = extract_trades(text)
    assert [fields(t) for t in trades] == [expected]
    assert trades[0].evidence == split_sentences(text)[0]


@pytest.mark.parametrize(
    "text",
    [
        "Good morning sir, this call is recorded.",
        "Do you want to buy or sell?",
        "Nifty is at 22000 today.",
        "Please call me at 10 am tomorrow.",
        "Bech do.",
        "",
    ],
)
def test_no_trade(text):
    assert extract_trades(text) == []


def test_two_trades_in_one_sentence_english():
    trades = extract_trades("Buy 100 INFY and sell 50 TCS at 3500.")
    assert [fields(t) for t in trades] == [
        ("INFY", "BUY", 100, None, None),
        ("TCS", "SELL", 50, 3500, "LIMIT"),
    ]


def test_two_trades_in_one_sentence_hindi():
    trades = extract_trades("100 INFY kharid lo aur 50 TCS bech do")
    assert [fields(t) for t in trades] == [
        ("INFY", "BUY", 100, None, None),
        ("TCS", "SELL", 50, None, None),
    ]


def test_read_back_is_deduplicated_keeping_first_evidence():
    text = (
        "Client: Buy 100 shares of Infosys at 1500. "
        "Agent: Confirming, buy 100 Infosys at 1500 rupees. Client: Yes."
    )
    trades = extract_trades(text)
    assert len(trades) == 1
    assert trades[0].evidence == "Client: Buy 100 shares of Infosys at 1500."


def test_same_trade_twice_in_one_sentence_counts_once():
    trades = extract_trades("Buy 100 Wipro at 450, I repeat, buy 100 Wipro at 450")
    assert [fields(t) for t in trades] == [("WIPRO", "BUY", 100, 450, "LIMIT")]


def test_different_prices_are_different_trades():
    trades = extract_trades("Buy 100 Wipro at 450. Buy 100 Wipro at 455.")
    assert [t.price for t in trades] == [450, 455]


def test_known_symbols_extend_and_override_aliases():
    known = {"Zomato Ltd": "ZOMATO", "infy": "INFY-EQ"}
    trades = extract_trades("Buy 300 Zomato Ltd. Sell 10 INFY.", known)
    assert [(t.symbol, t.side, t.quantity) for t in trades] == [
        ("ZOMATO", "BUY", 300),
        ("INFY-EQ", "SELL", 10),
    ]
    # The canonical name matches itself too.
    assert extract_trades("buy 5 zomato", {"Zomato Ltd": "ZOMATO"})[0].symbol == "ZOMATO"


def test_trade_id_in_sentence_is_not_a_number():
    [t] = extract_trades("Order number 98765: buy 10 ITC at 450")
    assert (t.trade_id, t.quantity, t.price) == ("98765", 10, 450)


def test_symbol_only_trade_has_unknown_quantity():
    [t] = extract_trades("I would like to buy Wipro.")
    assert fields(t) == ("WIPRO", "BUY", None, None, None)


def test_split_sentences_keeps_decimals_and_abbreviations():
    assert split_sentences("Rs. 2450.50 is fine. Mr. Shah said yes! OK?\nNext।अगला") == [
        "Rs. 2450.50 is fine.",
        "Mr. Shah said yes!",
        "OK?",
        "Next।अगला",
    ]


def test_aliases_are_lowercase_and_cover_common_names():
    assert all(alias == alias.lower() for alias in SYMBOL_ALIASES)
    canon = set(SYMBOL_ALIASES.values())
    assert {"INFY", "RELIANCE", "TCS", "HDFCBANK", "ICICIBANK", "SBIN", "TATAMOTORS"} <= canon
    assert {"NIFTY", "BANKNIFTY", "WIPRO", "ITC"} <= canon
    assert len(canon) >= 20


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Infosys", "INFY"), ("INFY-EQ", "INFY"), ("hdfc bank", "HDFCBANK"), ("zomato", "ZOMATO")],
)
def test_canonical_symbol(name, expected):
    assert canonical_symbol(name) == expected


def test_to_dict_has_schema_keys():
    [t] = extract_trades("buy 1 TCS")
    assert set(t.to_dict()) == {
        "symbol",
        "side",
        "quantity",
        "price",
        "order_type",
        "trade_id",
        "evidence",
    }
