"""A remote LID server's own language answer, as lidStatus.detectedLanguage stores it: the
code when it is one ("French" -> "fr" beside the label 'other'), null for anything else a
hostile or broken server sends — and the label is still decided, nothing fails."""

from __future__ import annotations

import pytest

from cofid.backends.remote import RemoteLid
from cofid.domain.model import Stage
from cofid.domain.ops import Insert
from cofid.domain.pipeline import FileState
from cofid.stages.base import stage_for
from cofid.store.writes import to_seed_op
from tests.backends.test_remote import FAST, call_wav, replying  # noqa: F401 (fixture)

FRENCH = "bonjour, je voudrais acheter cent actions"


@pytest.mark.parametrize(
    ("language", "stored"),
    [
        ("French", "fr"),
        ("fr", "fr"),
        ("fr-FR", "fr"),
        ("de", "de"),
        ("fr;DROP TABLE call", None),
        ("x" * 300, None),
        ("日本語", None),
        (3, None),
        (["fr"], None),
        (None, None),
    ],
)
async def test_the_servers_language_is_stored_only_as_a_short_code(
    language, stored, serve, client, call_wav  # noqa: F811
):
    body = {"text": FRENCH, "duration": 20.0, "language": language,
            "language_probabilities": {"fr": 0.9, "en": 0.05, "hi": 0.01}}
    _, url = await serve(replying(body))
    result = await RemoteLid(url, client, FAST).identify(call_wav)
    assert result.language == "other"  # en + hi mass under the bar, whatever it named
    f = FileState(fd_id=1, call_id=2, batch_id=3, audio_name="CALL-0001.wav", path="/x")
    ws, _ = stage_for(Stage.LID).writes(f, result, None)
    [row] = next(to_seed_op(op) for op in ws.ops if isinstance(op, Insert)).rows
    assert (row["language"], row["detectedLanguage"]) == ("other", stored)
