"""The seed's reaudit cleanup rules, for every choice of stages, and request validation."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cofid.domain.reaudit import (
    ReauditPlan,
    ReauditRequestError,
    plan_reaudit,
    validate_audio_names,
)

ORDER = ("lid", "stt", "llm1", "llm2")
SUBSETS = [
    frozenset(combo) for size in range(1, 5) for combo in itertools.combinations(ORDER, size)
]

# Written out by hand from the seed document (steps 3-5) plus cofi's callConversation rule,
# so the table is checked against the code rather than derived from it.
EXPECTED: dict[frozenset[str], tuple[str, bool, bool, bool]] = {
    # stages: (reset_call_status, delete_transcripts, delete_audit_answers, delete_conversations)
    frozenset({"lid"}): ("Pending", False, False, False),
    frozenset({"stt"}): ("Pending", True, False, False),
    frozenset({"llm1"}): ("TranscriptDone", False, False, True),
    frozenset({"llm2"}): ("AuditDone", False, True, False),
    frozenset({"lid", "stt"}): ("Pending", True, False, False),
    frozenset({"lid", "llm1"}): ("Pending", False, False, True),
    frozenset({"lid", "llm2"}): ("Pending", False, True, False),
    frozenset({"stt", "llm1"}): ("Pending", True, False, True),
    frozenset({"stt", "llm2"}): ("Pending", True, True, False),
    frozenset({"llm1", "llm2"}): ("TranscriptDone", False, True, True),
    frozenset({"lid", "stt", "llm1"}): ("Pending", True, False, True),
    frozenset({"lid", "stt", "llm2"}): ("Pending", True, True, False),
    frozenset({"lid", "llm1", "llm2"}): ("Pending", False, True, True),
    frozenset({"stt", "llm1", "llm2"}): ("Pending", True, True, True),
    frozenset({"lid", "stt", "llm1", "llm2"}): ("Pending", True, True, True),
}
FLAGS = {"lid": "lid_done", "stt": "stt_done", "llm1": "llm1_done", "llm2": "llm2_done"}


def test_expected_table_covers_all_fifteen_subsets() -> None:
    assert set(EXPECTED) == set(SUBSETS)
    assert len(SUBSETS) == 15


@pytest.mark.parametrize("chosen", SUBSETS, ids=lambda s: "+".join(x for x in ORDER if x in s))
def test_plan_for_every_subset(chosen: frozenset[str]) -> None:
    status, transcripts, answers, conversations = EXPECTED[chosen]
    in_order = tuple(stage for stage in ORDER if stage in chosen)
    # Given in reverse order: the plan must put them back in pipeline order.
    plan = plan_reaudit(reversed(in_order))
    assert plan == ReauditPlan(
        stages=in_order,
        delete_transcripts=transcripts,
        delete_audit_answers=answers,
        delete_conversations=conversations,
        reset_call_status=status,
        reset_flags=tuple(FLAGS[stage] for stage in in_order),
    )


def test_gap_runs_exactly_the_chosen_stages() -> None:
    plan = plan_reaudit(["llm2", "lid"])
    assert plan.stages == ("lid", "llm2")
    assert plan.reset_flags == ("lid_done", "llm2_done")
    assert plan.reset_call_status == "Pending"
    assert not plan.delete_transcripts and not plan.delete_conversations


def test_spaces_and_case_are_ignored_and_a_repeat_is_refused() -> None:
    plan = plan_reaudit([" STT ", "Llm1"])
    assert plan.stages == ("stt", "llm1")
    assert plan.reset_flags == ("stt_done", "llm1_done")
    with pytest.raises(ReauditRequestError, match="^stage 'stt' is listed twice$"):
        plan_reaudit(["stt", "Llm1", " STT "])


def test_plan_values_are_plain_strings_for_the_store() -> None:
    plan = plan_reaudit(["llm1"])
    assert isinstance(plan.reset_call_status, str)
    assert all(isinstance(stage, str) for stage in plan.stages)
    assert str(plan.reset_call_status) == "TranscriptDone"
    assert [str(stage) for stage in plan.stages] == ["llm1"]


@pytest.mark.parametrize(
    ("stages", "fragment"),
    [
        ([], "no stages given"),
        (["lid", "denoise"], "unknown stage 'denoise'"),
        (["ivr"], "allowed stages are lid, stt, llm1, llm2"),
        ([""], "unknown stage ''"),
        ([None], "unknown stage None"),
        ("llm1", "not the single string 'llm1'"),
    ],
)
def test_bad_stage_requests(stages: object, fragment: str) -> None:
    with pytest.raises(ReauditRequestError) as caught:
        plan_reaudit(stages)  # type: ignore[arg-type]
    assert fragment in str(caught.value)


def test_audio_names_are_stripped_and_deduplicated_in_order() -> None:
    names = [" b.wav", "a.wav ", "b.wav", "B.wav", "a.wav"]
    assert validate_audio_names(names) == ["b.wav", "a.wav", "B.wav"]


def test_audio_names_accept_a_generator_and_exactly_max_names() -> None:
    names = (f"f{i}.wav" for i in range(5))
    assert validate_audio_names(names, max_names=5) == [f"f{i}.wav" for i in range(5)]


def test_name_of_255_characters_is_accepted() -> None:
    assert validate_audio_names(["x" * 255]) == ["x" * 255]


@pytest.mark.parametrize(
    ("names", "max_names", "fragment"),
    [
        ([], 10, "no audio names given"),
        (["a.wav", "   "], 10, "audio name #2 is blank"),
        (["a.wav", ""], 10, "audio name #2 is blank"),
        (["x" * 256], 10, "has 256 characters, more than 255"),
        (["ok.wav", "bad\x00.wav"], 10, "audio name #2 'bad\\x00.wav' contains control characters"),
        ([f"f{i}" for i in range(4)], 3, "more than 3 audio names in one request (at #4 'f3')"),
        (["a.wav", 7], 10, "audio name #2 is not a string: 7"),
        ("a.wav", 10, "not the single string 'a.wav'"),
    ],
)
def test_bad_audio_names(names: object, max_names: int, fragment: str) -> None:
    with pytest.raises(ReauditRequestError) as caught:
        validate_audio_names(names, max_names=max_names)  # type: ignore[arg-type]
    assert fragment in str(caught.value)


def test_max_names_counts_distinct_names() -> None:
    assert validate_audio_names(["a.wav"] * 50, max_names=1) == ["a.wav"]


def test_endless_iterable_is_refused_without_reading_it_all() -> None:
    endless = (f"f{i}.wav" for i in itertools.count())
    with pytest.raises(ReauditRequestError, match="more than 100 audio names"):
        validate_audio_names(endless, max_names=100)


stage_lists = st.lists(
    st.sampled_from(ORDER).map(lambda s: s.upper() if len(s) == 3 else s), min_size=1,
    unique=True,
)


@given(stage_lists)
def test_reset_status_is_the_earliest_chosen_stages(stages: list[str]) -> None:
    plan = plan_reaudit(stages)
    earliest = min((s.lower() for s in stages), key=ORDER.index)
    status_of = {"lid": "Pending", "stt": "Pending", "llm1": "TranscriptDone", "llm2": "AuditDone"}
    assert plan.reset_call_status == status_of[earliest]
    assert plan.stages[0] == earliest


@given(stage_lists)
def test_flags_and_deletions_follow_the_chosen_stages(stages: list[str]) -> None:
    plan = plan_reaudit(stages)
    chosen = {s.lower() for s in stages}
    assert set(plan.stages) == chosen
    assert list(plan.stages) == sorted(chosen, key=ORDER.index)
    assert plan.reset_flags == tuple(FLAGS[s] for s in plan.stages)
    assert plan.delete_transcripts == ("stt" in chosen)
    assert plan.delete_audit_answers == ("llm2" in chosen)
    assert plan.delete_conversations == ("llm1" in chosen)


@given(st.lists(st.text(max_size=20)))
def test_audio_names_either_validate_or_raise_the_request_error(names: list[str]) -> None:
    try:
        result = validate_audio_names(names)
    except ReauditRequestError:
        assert not names or any(not n.strip() or not n.strip().isprintable() for n in names)
        return
    stripped = [n.strip() for n in names]
    assert result == list(dict.fromkeys(stripped))
    assert all(name and name == name.strip() for name in result)
    assert all(ch.isprintable() or not ch.isascii() or ch == " " for n in result for ch in n)
