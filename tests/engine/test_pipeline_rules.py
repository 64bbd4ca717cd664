"""cofid.domain.pipeline, pure: the per-file status machine and the batch status rules."""

from __future__ import annotations

import itertools

import pytest

from cofid.domain.model import FILE_STAGES, BatchState, CallStatus, Stage, StageStatus
from cofid.domain.pipeline import (
    FLAG_STATUS_FIELD,
    FileState,
    audio_for_stage,
    derived_audio_path,
    needs_stage,
    overall_status,
    stt_gate,
)

WITH_LLM1 = FILE_STAGES
WITHOUT_LLM1 = tuple(s for s in FILE_STAGES if s is not Stage.LLM1)


def expected_needs(stage: Stage, done: bool, failed: bool, status: CallStatus, stages) -> bool:
    """The module's rules 2 and 4–6, written out independently."""
    if failed or done:
        return False
    if stage in (Stage.DENOISE, Stage.IVR, Stage.LID):
        return True
    wanted = {
        Stage.STT: {CallStatus.PENDING},
        Stage.LLM1: {CallStatus.TRANSCRIPT_DONE},
        # Without llm1 in the plan, llm2 also takes transcribed calls (rule 6).
        Stage.LLM2: {CallStatus.AUDIT_DONE} if Stage.LLM1 in stages
        else {CallStatus.AUDIT_DONE, CallStatus.TRANSCRIPT_DONE},
    }[stage]
    return status in wanted


@pytest.mark.parametrize("stage", FILE_STAGES)
def test_needs_stage_for_every_status_and_flag(stage):
    combos = itertools.product(
        (False, True), (None, "denoise", "lid"), tuple(CallStatus), (WITH_LLM1, WITHOUT_LLM1)
    )
    for done, failed, status, stages in combos:
        f = FileState(1, 1, 1, "a.wav", "/b/a.wav", call_status=status, failed_stage=failed)
        if done:
            f.mark_done(stage)
        # Other stages' flags never matter.
        for other in FILE_STAGES:
            if other is not stage:
                f.mark_done(other)
        assert needs_stage(f, stage, stages) == expected_needs(
            stage, done, failed is not None, status, stages
        ), (stage, done, failed, status, stages)


def test_needs_stage_refuses_batch_level_stages():
    """BUG (domain/pipeline.py needs_stage): `f.done(stage)` runs before the file-stage
    check, so a batch-level stage raises AttributeError ('file_distribution_done') instead
    of the intended ValueError; check `stage in DONE_FLAG_FIELD` first."""
    f = FileState(1, 1, 1, "a.wav", "/b/a.wav")
    for stage in (Stage.FILE_DISTRIBUTION, Stage.CALLMETADATA, Stage.TRADEMETADATA,
                  Stage.TRIAGING):
        with pytest.raises(ValueError):
            needs_stage(f, stage, FILE_STAGES)


def test_resume_walks_a_file_through_its_stages_once():
    """Rule 2 as the resume rule: marking each stage done moves the file to the next."""
    f = FileState(1, 1, 1, "a.wav", "/b/a.wav")
    path = []
    transitions = {Stage.STT: CallStatus.TRANSCRIPT_DONE, Stage.LLM1: CallStatus.AUDIT_DONE,
                   Stage.LLM2: CallStatus.COMPLETE}
    for _ in range(10):
        todo = [s for s in FILE_STAGES if needs_stage(f, s, FILE_STAGES)]
        if not todo:
            break
        s = todo[0]
        path.append(s)
        f.mark_done(s)
        f.call_status = transitions.get(s, f.call_status)
    assert path == list(FILE_STAGES)


@pytest.mark.parametrize(
    ("duration", "lang", "expected"),
    [
        (4.999, "en", CallStatus.SHORT_CALL),
        (5.0, "en", None),  # the minimum itself is long enough
        (60.0, "hi", None),
        (60.0, "hinglish", None),
        (60.0, "other", CallStatus.UNSUPPORTED_LANGUAGE),
        (60.0, "unknown", CallStatus.UNSUPPORTED_LANGUAGE),
        (2.5, "other", CallStatus.SHORT_CALL),  # short wins over unsupported
        (0.0, "unknown", CallStatus.SHORT_CALL),
    ],
)
def test_stt_gate(duration, lang, expected):
    assert stt_gate(duration, lang, min_duration_s=5.0,
                    allowed_languages=("en", "hi", "hinglish")) == expected


def test_stt_gate_follows_configuration():
    assert stt_gate(3.0, "en", min_duration_s=0.0, allowed_languages=["en"]) is None
    assert stt_gate(30.0, "hi", min_duration_s=5.0, allowed_languages=["en"]) == (
        CallStatus.UNSUPPORTED_LANGUAGE
    )


def _complete(stage: Stage):
    return 1 if stage in FLAG_STATUS_FIELD else StageStatus.COMPLETE


def _pending(stage: Stage):
    return 0 if stage in FLAG_STATUS_FIELD else StageStatus.PENDING


def test_overall_status_walks_the_seed_order():
    enabled = tuple(Stage)
    statuses = {s: _pending(s) for s in Stage}
    seen = [overall_status(statuses, enabled)]
    for s in Stage:
        statuses[s] = StageStatus.IN_PROGRESS if s not in FLAG_STATUS_FIELD else 0
        assert overall_status(statuses, enabled) == seen[-1]  # in progress changes nothing
        statuses[s] = _complete(s)
        seen.append(overall_status(statuses, enabled))
    # The CSV steps have no value of their own in the seed (issue 15): dbInsertDone stays.
    assert seen == [
        BatchState.PENDING, BatchState.DB_INSERT_DONE, BatchState.DB_INSERT_DONE,
        BatchState.DB_INSERT_DONE, BatchState.DENOISE_DONE, BatchState.IVR_DONE,
        BatchState.LID_DONE, BatchState.TRIAGING_DONE, BatchState.STT_DONE,
        BatchState.LLM1_DONE, BatchState.LLM2_DONE,
    ][: len(seen) - 1] + [BatchState.COMPLETED]


def test_overall_status_stops_at_the_first_incomplete_enabled_stage():
    enabled = tuple(Stage)
    statuses = {s: _complete(s) for s in Stage}
    statuses[Stage.LID] = StageStatus.IN_PROGRESS  # later stages complete do not count
    assert overall_status(statuses, enabled) == BatchState.IVR_DONE
    statuses[Stage.LID] = StageStatus.COMPLETE
    statuses[Stage.CALLMETADATA] = 0
    assert overall_status(statuses, enabled) == BatchState.DB_INSERT_DONE
    statuses[Stage.CALLMETADATA] = True  # a flag may read back as a bool
    assert overall_status(statuses, enabled) == BatchState.COMPLETED


def test_overall_status_skips_disabled_stages():
    enabled = (Stage.FILE_DISTRIBUTION, Stage.LID, Stage.STT)  # the minimal plan
    statuses = {s: _pending(s) for s in Stage}
    statuses[Stage.FILE_DISTRIBUTION] = StageStatus.COMPLETE
    statuses[Stage.LID] = StageStatus.COMPLETE
    assert overall_status(statuses, enabled) == BatchState.LID_DONE
    statuses[Stage.STT] = StageStatus.COMPLETE
    assert overall_status(statuses, enabled) == BatchState.COMPLETED
    assert overall_status(statuses, ()) == BatchState.PENDING


def test_audio_for_stage():
    work = "/w"
    f = FileState(7, 3, 2, "a.wav", "/in/a.wav")
    den, ivr = derived_audio_path(work, f, Stage.DENOISE), derived_audio_path(work, f, Stage.IVR)
    assert (den, ivr) == ("/w/2/7.denoise.flac", "/w/2/7.ivr.flac")
    for stage in FILE_STAGES:
        assert audio_for_stage(f, stage, work) == "/in/a.wav"
    f.denoise_done = True
    assert [audio_for_stage(f, s, work) for s in FILE_STAGES] == [
        "/in/a.wav", den, den, den, "/in/a.wav", "/in/a.wav"]
    f.ivr_done = True  # IVR ran but found nothing to trim: its input stays the audio
    f.ivr_offset_s = 0.0
    assert [audio_for_stage(f, s, work) for s in FILE_STAGES] == [
        "/in/a.wav", den, den, den, "/in/a.wav", "/in/a.wav"]
    f.ivr_offset_s = 4.5
    assert [audio_for_stage(f, s, work) for s in FILE_STAGES] == [
        "/in/a.wav", den, ivr, ivr, "/in/a.wav", "/in/a.wav"]
    f.denoise_done = False  # IVR without denoise trims the original
    assert [audio_for_stage(f, s, work) for s in FILE_STAGES] == [
        "/in/a.wav", "/in/a.wav", ivr, ivr, "/in/a.wav", "/in/a.wav"]
