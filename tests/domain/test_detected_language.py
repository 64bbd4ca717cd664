"""The detector's own language (lidStatus.detectedLanguage): normalised, and kept only when
it is a short language code — a model server's reply is not trusted."""

from __future__ import annotations

import pytest

from cofid.domain.language import DETECTED_CODE_MAX, detected_code
from cofid.domain.model import Stage
from cofid.domain.ops import Insert
from cofid.domain.pipeline import FileState
from cofid.domain.ports import LidResult
from cofid.stages.base import stage_for
from cofid.store.writes import to_seed_op


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("fr", "fr"),
        ("FR", "fr"),
        (" fr ", "fr"),
        ("french", "fr"),
        ("French", "fr"),
        ("fr-FR", "fr"),
        ("fr_CA", "fr"),
        ("english", "en"),
        ("en-US", "en"),
        ("hindi", "hi"),
        ("urdu", "ur"),  # stored as said: the label counts it as Hindi, the column does not
        ("haitian creole", "ht"),
        ("yue", "yue"),
        ("hinglish", "hinglish"),
        ("klingon", "klingon"),  # unknown but code-shaped: kept, lowercased
        ("xx-yy", "xx"),  # an unknown locale: its primary subtag
        ("abcdefgh", "abcdefgh"),  # the longest primary subtag
    ],
)
def test_a_code_shaped_answer_is_kept_normalised(given, stored):
    assert detected_code(given) == stored


@pytest.mark.parametrize(
    "given",
    [
        None,
        "",
        "   ",
        "f",  # one letter is no language code
        "abcdefghi",  # nine letters: no primary subtag is that long
        "a" * (DETECTED_CODE_MAX + 1),
        "x" * 10_000,
        "fr1",
        "f r",
        "fr;DROP TABLE call",
        "'fr'",
        "fr\x00",
        "<b>fr</b>",
        "français",  # a name in another script than ASCII
        "中文",
        "हिन्दी",
        "-fr",
        "ﬁ",  # lower() of a ligature is not ASCII
        42,
        3.5,
        ["fr"],
        {"code": "fr"},
        b"fr",
    ],
)
def test_anything_else_is_null_never_cleaned_up(given):
    assert detected_code(given) is None


def _lid_row(detected) -> dict:
    f = FileState(fd_id=7, call_id=11, batch_id=3, audio_name="a.wav", path="/x/a.wav")
    result = LidResult(language="other", confidence=0.7, duration_s=12.0, detected=detected)
    ws, _ = stage_for(Stage.LID).writes(f, result, None)
    [insert] = [to_seed_op(op) for op in ws.ops if isinstance(op, Insert)]
    assert insert.table == "lidStatus"
    [row] = insert.rows
    return row


@pytest.mark.parametrize(
    ("detected", "stored"),
    [("French", "fr"), ("de-DE", "de"), (None, None), ("fr;--", None), ("x" * 200, None)],
)
def test_the_lid_stage_writes_the_checked_code_beside_the_seed_label(detected, stored):
    row = _lid_row(detected)
    assert row == {
        "batchId": 3,
        "callId": 11,
        "audioName": "a.wav",
        "language": "other",
        "confidence": 0.7,
        "audioDuration": 12.0,
        "detectedLanguage": stored,
    }
