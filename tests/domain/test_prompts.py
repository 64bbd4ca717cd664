import datetime as dt
import decimal
import json

import pytest

from cofid.backends.base import Segment
from cofid.backends.json_schema import SchemaViolation, validate
from cofid.domain import llm_schemas, replies
from cofid.domain.prompts import (
    DEFAULT_TEMPLATES,
    LLM1_SCHEMA,
    LLM1_SCHEMA_NAME,
    LLM2_SCHEMA_NAME,
    build_llm1_request,
    build_llm2_request,
    llm2_schema,
    render_transcript,
    validate_templates,
)
from cofid.domain.questions import default_question_set

SEGMENTS = [
    {"start": 0.0, "end": 3.2, "text": "Good morning, this call is recorded."},
    {"start": 12.5, "end": 15.0, "text": "Buy 100 shares of {Infosys} at 1500."},
]
TRADES = [
    {
        "trade_id": "T1",
        "symbol": "INFY",
        "side": "BUY",
        "quantity": 100,
        "price": decimal.Decimal("1500.25"),
        "trade_time": dt.datetime(2024, 5, 2, 10, 15, 0),
    }
]
METADATA = {"audioName": "c1.wav", "callDate": dt.date(2024, 5, 2), "clientCode": "AB12"}


def schema_objects(schema):
    """Every object schema inside `schema`."""
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            yield schema
        for value in schema.values():
            yield from schema_objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from schema_objects(value)


@pytest.mark.parametrize("schema", [LLM1_SCHEMA, llm2_schema(["A", "B"])])
def test_schemas_are_strict(schema):
    objects = list(schema_objects(schema))
    assert objects
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])


def schema_nodes(schema):
    """Every schema node inside `schema` (dicts only)."""
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from schema_nodes(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from schema_nodes(value)


@pytest.mark.parametrize("schema", [LLM1_SCHEMA, llm2_schema(["A", "B"])])
def test_no_constraint_sits_beside_a_type_list(schema):
    """Grammar converters that expand a "type" list into bare types (llama-cpp-python's)
    would drop a constraint beside it: nullable enums and bounded strings are written as
    an enum with null, or anyOf (llm_schemas rule 4)."""
    constraints = {"enum", "maxLength", "minLength", "pattern", "minimum", "maximum", "const"}
    for node in schema_nodes(schema):
        if isinstance(node.get("type"), list):
            assert not constraints & set(node), node
    # and the constraints are still there: the side enum, the symbol's width
    item = LLM1_SCHEMA["properties"]["trades"]["items"]["properties"]
    assert item["side"] == {"enum": ["BUY", "SELL", None]}
    assert item["symbol"]["anyOf"][0]["maxLength"] > 0


def longest_llm2_reply(ids: list[str]) -> int:
    """The characters of the longest reply llm2_schema(ids) admits (every string full)."""
    schema = llm2_schema(ids)
    props = schema["properties"]["answers"]["properties"]
    reply = {"answers": {
        q: {"answer": "x" * props[q]["properties"]["answer"]["maxLength"],
            "evidence": "x" * props[q]["properties"]["evidence"]["maxLength"]}
        for q in ids
    }}  # fmt: skip
    validate(reply, schema)
    return len(json.dumps(reply))


@pytest.mark.parametrize("n", [1, 2, 5, 10, 17, 25])
def test_the_longest_llm2_reply_fits_the_reply_budget(n):
    """A model that fills every string still closes the object within the budget (2048
    tokens at 3 characters a token of text), however many questions the set has."""
    ids = [f"QUESTION_{i:03d}" for i in range(n)]
    assert longest_llm2_reply(ids) <= replies.LLM2_REPLY_CHARS
    answer, evidence = llm_schemas.llm2_field_chars(ids)
    assert answer <= replies.MAX_ANSWER_CHARS and evidence <= replies.MAX_EVIDENCE_CHARS
    assert min(answer, evidence) >= replies.MIN_LLM2_FIELD_CHARS


def test_a_huge_question_set_keeps_the_floor():
    ids = [f"Q{i}" for i in range(200)]
    assert llm_schemas.llm2_field_chars(ids) == (replies.MIN_LLM2_FIELD_CHARS,) * 2


def test_llm1_schema_bounds_a_nullable_string():
    validate({"trades": [trade(symbol=None, trade_id=None)]}, LLM1_SCHEMA)
    width = LLM1_SCHEMA["properties"]["trades"]["items"]["properties"]["symbol"]
    with pytest.raises(SchemaViolation):
        validate({"trades": [trade(symbol="X" * (width["anyOf"][0]["maxLength"] + 1))]},
                 LLM1_SCHEMA)
    with pytest.raises(SchemaViolation):
        validate({"trades": [trade(side=None, order_type=7)]}, LLM1_SCHEMA)


def trade(**override):
    t = {
        "symbol": "INFY",
        "side": "BUY",
        "quantity": 100,
        "price": None,
        "order_type": "MARKET",
        "trade_id": None,
        "evidence": "buy 100 infy",
    }
    t.update(override)
    return t


def test_llm1_schema_accepts_trades_with_nulls():
    validate({"trades": []}, LLM1_SCHEMA)
    validate({"trades": [trade(), trade(symbol=None, side=None, quantity=None)]}, LLM1_SCHEMA)


@pytest.mark.parametrize(
    "bad",
    [
        {"trades": [trade(side="HOLD")]},
        {"trades": [trade(order_type="STOP")]},
        {"trades": [trade(quantity="100")]},
        {"trades": [{k: v for k, v in trade().items() if k != "trade_id"}]},
        {"trades": [trade(extra=1)]},
        {"trades": [], "note": "x"},
        {},
    ],
)
def test_llm1_schema_refuses(bad):
    with pytest.raises(SchemaViolation):
        validate(bad, LLM1_SCHEMA)


def test_llm2_schema_pins_count_and_ids():
    # Keyed by question id (issue 20): each id exactly once, no other id.
    schema = llm2_schema(["Q1", "Q2"])
    ok = {
        "answers": {
            "Q1": {"answer": "Yes", "evidence": ""},
            "Q2": {"answer": "No", "evidence": "x"},
        }
    }
    validate(ok, schema)
    with pytest.raises(SchemaViolation):
        validate({"answers": {"Q1": ok["answers"]["Q1"]}}, schema)
    with pytest.raises(SchemaViolation):
        validate({"answers": [ok["answers"]["Q1"], ok["answers"]["Q2"]]}, schema)
    with pytest.raises(SchemaViolation):
        validate({"answers": {**ok["answers"], "Q9": ok["answers"]["Q1"]}}, schema)


@pytest.mark.parametrize(("ids", "match"), [([], "empty"), (["A", "A"], "'A' appears twice")])
def test_llm2_schema_refuses_bad_ids(ids, match):
    with pytest.raises(ValueError, match=match):
        llm2_schema(ids)


def test_render_transcript_lines():
    text = render_transcript([*SEGMENTS, Segment(start=75.04, end=79.96, text=" ok  then ")])
    assert text.splitlines() == [
        "[00:00.0–00:03.2] Good morning, this call is recorded.",
        "[00:12.5–00:15.0] Buy 100 shares of {Infosys} at 1500.",
        "[01:15.0–01:20.0] ok then",
    ]


def test_render_transcript_shows_speaker():
    line = render_transcript([{"start": 1, "end": 2, "text": "hi", "speaker": "agent"}])
    assert line == "[00:01.0–00:02.0] agent: hi"


def test_render_transcript_keeps_head_and_tail_within_limit():
    segments = [{"start": i, "end": i + 1, "text": f"line number {i:04d}"} for i in range(500)]
    text = render_transcript(segments, max_chars=1000)
    assert len(text) <= 1000
    lines = text.splitlines()
    assert lines[0].endswith("line number 0000")
    assert lines[-1].endswith("line number 0499")
    [marker] = [line for line in lines if "omitted" in line]
    shown = len(lines) - 1
    assert marker == f"[… {500 - shown} segments omitted …]"


def test_render_transcript_cuts_one_huge_line():
    text = render_transcript([{"start": 0, "end": 1, "text": "x" * 5000}], max_chars=300)
    assert len(text) <= 300
    assert text.startswith("[00:00.0–00:01.0] xxx")
    assert "characters omitted" in text


def test_render_transcript_refuses_tiny_limit():
    with pytest.raises(ValueError, match="max_chars"):
        render_transcript(SEGMENTS, max_chars=10)


def test_llm1_request_renders_templates_and_carries_context():
    request = build_llm1_request(
        templates=None, transcript=SEGMENTS, call_metadata=METADATA, trades=TRADES
    )
    assert request.purpose == "llm1"
    assert request.schema_name == LLM1_SCHEMA_NAME
    assert request.schema == LLM1_SCHEMA
    assert '{"trades": []}' in request.system  # the escaped literal braces survive
    assert "[00:12.5–00:15.0] Buy 100 shares of {Infosys} at 1500." in request.user
    assert "callDate: 2024-05-02" in request.user
    assert '"trade_id": "T1"' in request.user
    assert request.context == {
        "transcript": [
            {"start": 0.0, "end": 3.2, "text": "Good morning, this call is recorded."},
            {"start": 12.5, "end": 15.0, "text": "Buy 100 shares of {Infosys} at 1500."},
        ],
        "call_metadata": {"audioName": "c1.wav", "callDate": "2024-05-02", "clientCode": "AB12"},
        "trades": [
            {
                "trade_id": "T1",
                "symbol": "INFY",
                "side": "BUY",
                "quantity": 100.0,
                "price": 1500.25,
                "trade_time": "2024-05-02T10:15:00",
            }
        ],
    }
    json.dumps(request.context)  # plain JSON values only


def test_llm1_request_without_metadata_or_trades_says_none():
    request = build_llm1_request(templates=None, transcript=[], call_metadata=None, trades=[])
    assert request.context["call_metadata"] is None
    assert request.user.count("(none)") == 3


def test_llm2_request_asks_every_question_in_order():
    questions = default_question_set().questions
    extracted = [trade(quantity=100, trade_id="T1")]
    request = build_llm2_request(
        templates=None,
        transcript=SEGMENTS,
        call_metadata=METADATA,
        trades=TRADES,
        extracted_trades=extracted,
        questions=questions,
    )
    assert request.purpose == "llm2"
    assert request.schema_name == LLM2_SCHEMA_NAME
    assert request.schema == llm2_schema([q.id for q in questions])
    positions = [request.user.index(f"{q.id}: {q.text}") for q in questions]
    assert positions == sorted(positions)
    assert [q["id"] for q in request.context["questions"]] == [q.id for q in questions]
    assert request.context["questions"][3]["keywords"] == list(questions[3].keywords)
    assert request.context["extracted_trades"] == [{**extracted[0], "quantity": 100.0}]
    json.dumps(request.context)


def test_llm2_request_needs_questions():
    with pytest.raises(ValueError, match="questions"):
        build_llm2_request(
            templates=None,
            transcript=[],
            call_metadata=None,
            trades=[],
            extracted_trades=[],
            questions=[],
        )


def test_partial_template_override_keeps_the_defaults():
    request = build_llm1_request(
        templates={"llm1_user": "T={transcript} {{literal}}"},
        transcript=SEGMENTS[:1],
        call_metadata=None,
        trades=[],
    )
    assert request.user == "T=[00:00.0–00:03.2] Good morning, this call is recorded. {literal}"
    assert request.system == DEFAULT_TEMPLATES["llm1_system"].format_map({})


def test_trade_with_non_numeric_quantity_is_refused():
    with pytest.raises(ValueError, match="quantity='lots'"):
        build_llm1_request(
            templates=None, transcript=[], call_metadata=None, trades=[{"quantity": "lots"}]
        )


def test_default_templates_validate():
    assert set(DEFAULT_TEMPLATES) == {"llm1_system", "llm1_user", "llm2_system", "llm2_user"}
    validate_templates(DEFAULT_TEMPLATES, "defaults")


@pytest.mark.parametrize(
    ("templates", "fragment"),
    [
        ({"llm3_user": "x"}, "unknown template key 'llm3_user'"),
        ({"llm1_user": "{transcrpt}"}, "unknown placeholder {transcrpt}"),
        ({"llm1_user": "{questions}"}, "unknown placeholder {questions}"),
        ({"llm2_user": "{}"}, "unknown placeholder {}"),
        ({"llm2_user": "{trades[0]}"}, "unknown placeholder {trades[0]}"),
        ({"llm2_user": "{transcript:>10}"}, "format spec"),
        ({"llm2_user": "{transcript!r}"}, "format spec or conversion"),
        ({"llm2_system": "a { b"}, "malformed"),
        ({"llm2_system": 3}, "must be a string"),
    ],
)
def test_validate_templates_names_the_problem(templates, fragment):
    with pytest.raises(ValueError) as err:
        validate_templates(templates, "config.prompts")
    assert str(err.value).startswith("config.prompts")
    assert fragment in str(err.value)


def test_bad_template_override_is_refused_when_building():
    with pytest.raises(ValueError, match="unknown placeholder"):
        build_llm1_request(
            templates={"llm1_user": "{nope}"}, transcript=[], call_metadata=None, trades=[]
        )
