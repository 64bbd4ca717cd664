"""The prompt builders, now rendering each call once (prompts rule 7) with a faster segment
line, give the very requests the old builders gave (tests/domain/prompts_reference.py, the
old module verbatim): for a seeded sample of transcripts, with and without a shared
preparation, and a preparation of other inputs is never used."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import random
from typing import Any

import pytest

from cofid.backends.base import Segment, SttResult
from cofid.domain import prompts
from cofid.domain.pipeline import FileState
from cofid.domain.questions import default_question_set
from cofid.stages.llm_inputs import LlmContext
from cofid.stages.stt import transcript_dicts
from tests.domain import prompts_reference as ref

WORDS = [
    "buy", "sell", "INFY", "  sbin ", "kharid", "bech", "100", "1,500.25", "{lot}", "}{",
    "हाँ", "ठीक है", "ok\tthen", "\n", "", "«quote»", "—", "शेयर", "price?", "{{x}}",
]
TEMPLATES = {
    "llm1_user": "T:\n{transcript}\nM:{call_metadata}\n{{literal}} {trades}",
    "llm2_system": "{questions}|{extracted_trades}|{transcript}",
}


def _segments(rng: random.Random) -> list[Any]:
    n = rng.choice([0, 1, 2, 5, 50, 50, 400, 2000])
    t = rng.uniform(-1.0, 5.0)
    out: list[Any] = []
    for i in range(n):
        start = round(t, rng.choice([0, 1, 2, 3, 7]))
        t += rng.uniform(0.0, 40.0 if n < 10 else 8.0)
        end = t if rng.random() < 0.9 else int(t)
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30)))
        if n == 1 and rng.random() < 0.5:
            text = "x" * 30000  # one line over the budget: cut by characters
        speaker = rng.choice([None, None, "", "agent", "client", "डीलर"])
        kind = i % 4 if rng.random() < 0.5 else 0
        if kind == 1:
            out.append(Segment(start=start, end=end, text=text, speaker=speaker))
        elif kind == 2:  # numbers and text as the store might hand them
            out.append({"start": decimal.Decimal(str(start)), "end": str(end), "text": text})
        else:
            seg: dict[str, Any] = {"start": start, "end": end, "text": text}
            if speaker is not None:
                seg["speaker"] = speaker
            out.append(seg)
    return out


def _metadata(rng: random.Random) -> dict[str, Any] | None:
    return rng.choice([
        None,
        {},
        {"audioName": "c1.wav", "callDate": dt.date(2024, 5, 2), "amount": decimal.Decimal("1.5")},
        {"nested": {"a": [1, None, dt.time(10, 1)]}, "flag": True, "n": None, "s": "हाँ"},
    ])


def _trades(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "trade_id": f" T{i} ",
            "symbol": rng.choice(["INFY", "", None, "SBIN"]),
            "side": rng.choice(["BUY", "SELL", None]),
            "quantity": rng.choice([100, "20", None, decimal.Decimal("7.50"), " "]),
            "price": rng.choice([1500.25, decimal.Decimal("99.05"), None]),
            "trade_time": rng.choice([dt.datetime(2024, 5, 2, 10, 15), "10:15", None]),
        }
        for i in range(rng.choice([0, 1, 3]))
    ]


def _extracted(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": None,
         "order_type": rng.choice(["LIMIT", None]), "trade_id": rng.choice(["T0", None]),
         "evidence": rng.choice(["buy 100 INFY", None, "हाँ"])}
        for _ in range(rng.choice([0, 2]))
    ]


def _dumped(request: Any) -> tuple[Any, ...]:
    """Every field of a request, the context as the JSON a remote backend would send."""
    return (
        request.purpose, request.system, request.user, request.schema_name,
        json.dumps(request.schema, ensure_ascii=False),
        json.dumps(request.context, ensure_ascii=False),
    )


def _case(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    questions = default_question_set().questions
    return {
        "templates": rng.choice([None, {}, TEMPLATES]),
        "transcript": _segments(rng),
        "call_metadata": _metadata(rng),
        "trades": _trades(rng),
        "extracted_trades": _extracted(rng),
        "questions": questions[rng.randint(0, 3):],
    }


@pytest.mark.parametrize("seed", range(60))
def test_requests_equal_the_old_builders_byte_for_byte(seed: int) -> None:
    c = _case(seed)
    base = {k: c[k] for k in ("templates", "transcript", "call_metadata", "trades")}
    llm2 = {**base, "extracted_trades": c["extracted_trades"], "questions": c["questions"]}
    old1, old2 = ref.build_llm1_request(**base), ref.build_llm2_request(**llm2)
    prepared = prompts.prepare_call(c["transcript"], c["call_metadata"], c["trades"])
    for new1, new2 in [
        (prompts.build_llm1_request(**base), prompts.build_llm2_request(**llm2)),
        (
            prompts.build_llm1_request(**base, prepared=prepared),
            prompts.build_llm2_request(**llm2, prepared=prepared),
        ),
    ]:
        assert new1 == old1
        assert new2 == old2
        assert _dumped(new1) == _dumped(old1)
        assert _dumped(new2) == _dumped(old2)
    assert prompts.render_transcript(c["transcript"]) == ref.render_transcript(c["transcript"])


@pytest.mark.parametrize("max_chars", [200, 201, 333, 1000, 5000])
def test_shortened_transcripts_equal_the_old_renderer(max_chars: int) -> None:
    for seed in range(20):
        segments = _segments(random.Random(seed))
        assert prompts.render_transcript(segments, max_chars) == ref.render_transcript(
            segments, max_chars
        )


@pytest.mark.parametrize(
    "segment",
    [{"end": 1, "text": "a"}, {"start": 0, "text": "a"}, {"start": 0, "end": 1},
     {"start": None, "end": None, "text": None}, Segment(start=0, end=1, text=None)],  # type: ignore[arg-type]
)
def test_a_bad_segment_is_refused_as_before(segment: Any) -> None:
    with pytest.raises(ValueError) as old:
        ref.build_llm1_request(templates=None, transcript=[segment], call_metadata=None, trades=[])
    with pytest.raises(ValueError) as new:
        prompts.build_llm1_request(
            templates=None, transcript=[segment], call_metadata=None, trades=[]
        )
    assert str(new.value) == str(old.value)


def test_a_preparation_of_other_inputs_is_not_used() -> None:
    a, b = _case(3), _case(4)
    assert a["transcript"] != b["transcript"]
    stale = prompts.prepare_call(a["transcript"], a["call_metadata"], a["trades"])
    kwargs = {k: b[k] for k in ("templates", "transcript", "call_metadata", "trades")}
    assert prompts.build_llm1_request(**kwargs, prepared=stale) == ref.build_llm1_request(
        **kwargs
    )
    # Equal content in other objects (a transcript read back after a resume) renders anew.
    copy = [dict(s) if isinstance(s, dict) else s for s in a["transcript"]]
    assert not stale.made_from(copy, a["call_metadata"], a["trades"])
    assert stale.made_from(a["transcript"], a["call_metadata"], a["trades"])


def _file() -> FileState:
    return FileState(fd_id=1, call_id=7, batch_id=1, audio_name="x.wav", path="/x.wav")


def test_llm2_reuses_llm1s_rendering_only_in_the_same_run() -> None:
    c = _case(5)
    f = _file()
    llm1 = LlmContext(c["transcript"], c["call_metadata"], c["trades"])
    first = llm1.prepared(f)
    llm2 = LlmContext(c["transcript"], c["call_metadata"], c["trades"], c["extracted_trades"])
    assert llm2.prepared(f) is first  # the same carried inputs: LLM1's rendering
    # A reaudit or a resume: the inputs are read back (other objects), so LLM2 renders.
    read_back = [prompts.segment_dict(s) for s in c["transcript"]]
    again = LlmContext(read_back, c["call_metadata"], c["trades"]).prepared(f)
    assert again is not first
    assert again.transcript.source is read_back
    assert f.carried["prepared_call"] is again
    f.carried.clear()  # LLM2's writes: the file's run is over
    assert LlmContext(c["transcript"], c["call_metadata"], c["trades"]).prepared(f) is not first


@pytest.mark.parametrize("seed", range(30))
def test_the_stt_stages_transcript_gives_the_requests_of_the_stores(seed: int) -> None:
    """STT carries its result as SegmentDicts (taken as they are, not copied); the
    requests equal those of the same transcript read back from the store, and those of
    the old builders."""
    c = _case(seed)
    rng = random.Random(seed)
    segments = [
        Segment(start=float(i), end=i + rng.choice([0.5, 1.0, 2.25]),
                text=" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))),
                speaker=rng.choice([None, "", "agent", "डीलर"]))
        for i in range(rng.choice([0, 1, 7, 50]))
    ]
    carried = transcript_dicts(SttResult(segments=tuple(segments), language="en", duration_s=60.0))
    stored = [{"start": s.start, "end": s.end, "text": s.text, "speaker": s.speaker}
              for s in segments]
    for kwargs in [{"transcript": carried}, {"transcript": stored}]:
        base = {"templates": c["templates"], "call_metadata": c["call_metadata"],
                "trades": c["trades"], **kwargs}
        assert _dumped(prompts.build_llm1_request(**base)) == _dumped(
            ref.build_llm1_request(**{**base, "transcript": stored}))
        llm2 = {**base, "extracted_trades": c["extracted_trades"], "questions": c["questions"]}
        assert _dumped(prompts.build_llm2_request(**llm2)) == _dumped(
            ref.build_llm2_request(**{**llm2, "transcript": stored}))
    # Taken as they are: the preparation's segments are the carried list itself.
    assert prompts.prepare_call(carried, None, []).transcript.segments is carried


def test_one_question_sets_parts_are_made_once_and_shared() -> None:
    """LLM2's schema, question dicts and lines depend on the questions only: made once
    per question set (by value: an equal tuple made anew shares them too), never shared
    by another set."""
    qs = default_question_set().questions
    a, b = _case(1), _case(2)
    one = prompts.build_llm2_request(templates=None, transcript=a["transcript"],
                                     call_metadata=None, trades=[], extracted_trades=[],
                                     questions=qs)
    two = prompts.build_llm2_request(templates=None, transcript=b["transcript"],
                                     call_metadata=None, trades=[], extracted_trades=[],
                                     questions=tuple(list(qs)))
    assert one.schema is two.schema
    assert one.context["questions"] is two.context["questions"]
    fewer = prompts.build_llm2_request(templates=None, transcript=a["transcript"],
                                       call_metadata=None, trades=[], extracted_trades=[],
                                       questions=qs[3:])
    assert fewer.schema is not one.schema
    assert fewer.schema["properties"]["answers"]["required"] == [q.id for q in qs[3:]]
    assert [q["id"] for q in fewer.context["questions"]] == [q.id for q in qs[3:]]
