"""A refused model reply's retry: the same request with the refusal told to the model.

A retry at temperature 0 that repeats the request byte for byte gets the same reply again
(the same truncation, the same schema miss), so the retry says what was wrong with the
last reply. The note is cofi's own message, never the model's text, bounded and on one
line.
"""

from __future__ import annotations

import dataclasses

from cofid.domain.ports import ChatRequest

RETRY_NOTE_CHARS = 300


def with_retry_note(request: ChatRequest, refusal: str | None) -> ChatRequest:
    """`request` as its retry after the model's reply was refused for `refusal` (cofi's
    own message, e.g. "the reply was cut off at the token limit"): the same prompt with
    the refusal told to the model, so a retry at temperature 0 is not the same request
    (and the same reply) again."""
    if not refusal:
        return request
    note = " ".join(refusal.split())[:RETRY_NOTE_CHARS]
    return dataclasses.replace(
        request,
        user=(
            f"{request.user}\n\nYour previous reply was refused: {note}. Reply again with "
            "one JSON object matching the schema; keep every evidence quote short and "
            "give each item once."
        ),
    )
