import pytest

from cofid.domain.questions import (
    KINDS,
    TRADE_KINDS,
    TRADE_QUESTION_COUNT,
    Question,
    QuestionSet,
    default_question_set,
    keyword_pattern,
    question_from_mapping,
    question_set_from_mapping,
)


def as_mapping(qs: QuestionSet) -> dict:
    return {
        "process_id": qs.process_id,
        "category_mapping_id": qs.category_mapping_id,
        "questions": [
            {"id": q.id, "text": q.text, "kind": q.kind, "keywords": list(q.keywords)}
            for q in qs.questions
        ],
    }


def test_default_set_starts_with_the_three_trade_questions():
    qs = default_question_set()
    assert TRADE_QUESTION_COUNT == 3
    assert [q.kind for q in qs.questions[:3]] == list(TRADE_KINDS)
    assert all(q.kind not in TRADE_KINDS for q in qs.questions[3:])
    assert 8 <= len(qs.questions) <= 10
    assert len(set(qs.ids)) == len(qs.ids)
    assert all(q.kind in KINDS for q in qs.questions)


def test_default_set_carries_its_keys():
    qs = default_question_set(process_id=7, category_mapping_id=3)
    assert (qs.process_id, qs.category_mapping_id) == (7, 3)


def test_default_set_asks_the_compliance_questions():
    qs = default_question_set()
    texts = {q.text for q in qs.questions}
    assert "Did the agent state that the call is recorded?" in texts
    kinds = {q.kind for q in qs.questions}
    assert {"keywords", "absence", "confirmation", "readback"} <= kinds
    for q in qs.questions:
        if q.kind in ("keywords", "absence"):
            assert q.keywords, q.id


def test_default_set_round_trips_through_config_validation():
    qs = default_question_set(2, 5)
    assert question_set_from_mapping(as_mapping(qs), "audit") == qs


def test_recording_question_matches_english_and_hinglish():
    [q] = [q for q in default_question_set().questions if q.id == "CMP_RECORDING_DISCLOSURE"]
    pattern = keyword_pattern(q.keywords)
    assert pattern.search("This call is being RECORDED for quality purposes.")
    assert pattern.search("Sir yeh call record ho rahi hai.")
    assert not pattern.search("Please send the records later.")


def test_keyword_pattern_matches_on_word_boundaries():
    pattern = keyword_pattern(["record", "date of birth"])
    assert pattern.search("Record, please")
    assert pattern.search("your date  of\nbirth")
    assert not pattern.search("recorder")
    assert not pattern.search("prerecord")
    assert keyword_pattern(["", "  "]) is None


def test_keyword_pattern_escapes_regex_characters():
    pattern = keyword_pattern(["risk-free", "l&t"])
    assert pattern.search("totally risk-free")
    assert not pattern.search("riskyfree")
    assert pattern.search("L&T shares")


def test_question_from_mapping_accepts_a_valid_question():
    q = question_from_mapping(
        {"id": "CMP_X", "text": " Did he? ", "kind": "keywords", "keywords": [" a ", "b"]}, "q"
    )
    assert q == Question(id="CMP_X", text="Did he?", kind="keywords", keywords=("a", "b"))


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ({"text": "t", "kind": "readback"}, ["where.q", "'id'"]),
        ({"id": "bad id!", "text": "t", "kind": "readback"}, ["id='bad id!'", "letters"]),
        ({"id": "A", "text": "", "kind": "readback"}, ["text=''"]),
        ({"id": "A", "text": "t", "kind": "vibes"}, ["kind='vibes'", "readback"]),
        ({"id": "A", "text": "t", "kind": "keywords"}, ["keywords=[]", "'keywords'"]),
        ({"id": "A", "text": "t", "kind": "absence", "keywords": "x"}, ["keywords='x'", "list"]),
        ({"id": "A", "text": "t", "kind": "keywords", "keywords": [1]}, ["1", "non-empty"]),
        ({"id": "A", "text": "t", "kind": "readback", "extra": 1}, ["'extra'", "allowed keys"]),
    ],
)
def test_question_from_mapping_names_the_problem(data, fragments):
    with pytest.raises(ValueError) as err:
        question_from_mapping(data, "where.q")
    message = str(err.value)
    assert message.startswith("where.q")
    for fragment in fragments:
        assert fragment in message


def valid_set(**override) -> dict:
    d = as_mapping(default_question_set())
    d.update(override)
    return d


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        (valid_set(process_id=-1), ["process_id=-1", ">= 0"]),
        (valid_set(process_id=True), ["process_id=True"]),
        (valid_set(category_mapping_id="1"), ["category_mapping_id='1'"]),
        (valid_set(questions=[]), ["questions=[]", "non-empty"]),
        (valid_set(colour="red"), ["'colour'"]),
    ],
)
def test_question_set_from_mapping_names_the_problem(data, fragments):
    with pytest.raises(ValueError) as err:
        question_set_from_mapping(data, "audit.sets[0]")
    for fragment in ["audit.sets[0]", *fragments]:
        assert fragment in str(err.value)


def test_question_set_requires_its_keys():
    d = valid_set()
    del d["category_mapping_id"]
    with pytest.raises(ValueError, match="category_mapping_id"):
        question_set_from_mapping(d, "s")


def test_question_set_rejects_duplicate_ids():
    d = valid_set()
    d["questions"][5]["id"] = d["questions"][4]["id"]
    with pytest.raises(ValueError, match=r"s\.questions\[5\].*unique"):
        question_set_from_mapping(d, "s")


def test_question_set_requires_trade_questions_first_in_order():
    d = valid_set()
    d["questions"][0], d["questions"][1] = d["questions"][1], d["questions"][0]
    with pytest.raises(ValueError, match=r"questions\[0\].*trade_side_quantity.*trade_instrument"):
        question_set_from_mapping(d, "s")


def test_question_set_rejects_trade_kinds_after_the_first_three():
    d = valid_set()
    d["questions"][4] = {"id": "MORE", "text": "Price again?", "kind": "trade_price"}
    with pytest.raises(ValueError, match=r"questions\[4\].*only to the first 3"):
        question_set_from_mapping(d, "s")


def test_question_set_needs_three_trade_questions():
    d = valid_set()
    d["questions"] = d["questions"][:2]
    with pytest.raises(ValueError, match="has 2 entries"):
        question_set_from_mapping(d, "s")
