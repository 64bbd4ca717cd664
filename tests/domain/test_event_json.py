"""An event's payload and response as the log stores them (cofid.domain.events.to_json_text):
JSON text in which no string is longer than TEXT_LIMIT characters (cut with a marker), bytes
appear only as their length, and the whole text at most PAYLOAD_LIMIT characters — the same
text whichever path (plain small payload or shortened one) produced it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from cofid.domain.events import PAYLOAD_LIMIT, TEXT_LIMIT, _shorten, to_json_text


def _reference(value):
    """The one rule, spelled out: no value, no text; else shorten every part, then
    encode, then cut the whole."""
    if value is None:
        return None
    text = json.dumps(_shorten(value), ensure_ascii=False, default=str)
    if len(text) <= PAYLOAD_LIMIT:
        return text
    return text[:PAYLOAD_LIMIT] + f"… [{len(text) - PAYLOAD_LIMIT} more characters]"


_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
            | st.text(max_size=30) | st.text(min_size=TEXT_LIMIT - 2, max_size=TEXT_LIMIT + 3)
            | st.binary(max_size=8))
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(_values)
def test_every_payload_is_stored_as_the_rule_says(value):
    assert to_json_text(value) == _reference(value)


def test_a_small_plain_payload_is_its_json():
    value = {"audio": "a.wav", "attempt": 1, "gpu": "gpu0", "scores": [0.5, 1.0], "ok": True}
    assert to_json_text(value) == json.dumps(value, ensure_ascii=False)
    assert to_json_text("नमस्ते") == '"नमस्ते"'


def test_long_strings_bytes_and_other_values_are_shortened():
    long = "x" * (TEXT_LIMIT + 10)
    stored = json.loads(to_json_text({"reply": long, "audio": b"\x00" * 7}))
    assert stored["reply"] == "x" * TEXT_LIMIT + "… [10 more characters]"
    assert stored["audio"] == "<7 bytes>"
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert json.loads(to_json_text({"at": when})) == {"at": str(when)}


def test_the_whole_text_is_cut_at_the_payload_limit():
    value = ["y" * TEXT_LIMIT] * 20  # every string fits, the whole does not
    text = to_json_text(value)
    assert text.startswith('["' + "y" * 10)
    assert len(text) < PAYLOAD_LIMIT + 40 and text.endswith("more characters]")
    assert to_json_text(None) is None
