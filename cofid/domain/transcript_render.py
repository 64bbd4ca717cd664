"""A call's transcript as the LLM prompts carry it (cofid.domain.prompts rules 5 and 6).

Rules:

1. A segment renders as one line, "[mm:ss.s–mm:ss.s] text" (speaker first when known),
   its text's whitespace collapsed to single spaces; the clock rounds to the nearest tenth
   of a second (round half to even, as round() does).
2. Over max_chars the transcript keeps whole lines from the head and the tail around a
   marker saying how many segments were left out; the result never exceeds max_chars.
3. `prepare_transcript` renders a transcript once: its segment dicts (the requests'
   `context["transcript"]`) and its text. LLM1 and LLM2 of one file in one run share
   it; the requests are the same as when each renders its own. The dicts are shared,
   read-only, by every request built from one preparation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MIN_TRANSCRIPT_CHARS = 200
DEFAULT_MAX_CHARS = 24000


@dataclass(frozen=True)
class RenderedTranscript:
    """One transcript rendered: `segments` as plain dicts, `text` its prompt text ("" for
    no segment), `source` the sequence it was rendered from (what a cache checks)."""

    source: Sequence[Any]
    segments: list[dict[str, Any]]
    text: str


class SegmentDicts(list[dict[str, Any]]):
    """A transcript whose segments are segment_dict()'s output already (the STT stage
    makes its result's so): prepare_transcript uses them as they are instead of copying
    each one. Read-only once made, like RenderedTranscript.segments."""


def prepare_transcript(
    segments: Sequence[Any], max_chars: int = DEFAULT_MAX_CHARS
) -> RenderedTranscript:
    """`segments` rendered once, for every request built from them (rule 3)."""
    dicts = segments if type(segments) is SegmentDicts else [segment_dict(s) for s in segments]
    return RenderedTranscript(source=segments, segments=dicts, text=_render(dicts, max_chars))


def render_transcript(segments: Sequence[Any], max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Timestamped transcript lines, shortened to max_chars around the middle (rules 1–2)."""
    return _render([segment_dict(s) for s in segments], max_chars)


def _render(dicts: Sequence[Mapping[str, Any]], max_chars: int) -> str:
    if max_chars < MIN_TRANSCRIPT_CHARS:
        raise ValueError(
            f"render_transcript: max_chars={max_chars} is too small; use >= "
            f"{MIN_TRANSCRIPT_CHARS}"
        )
    lines = _lines(dicts)
    full = "\n".join(lines)
    if len(full) <= max_chars:
        return full
    # Reserve room for the widest marker this transcript can need (characters ≥ lines).
    reserve = len(_marker_chars(len(full))) + 2
    budget = (max_chars - reserve) // 2
    head: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > budget:
            break
        head.append(line)
        used += len(line) + 1
    tail: list[str] = []
    used = 0
    for line in reversed(lines[len(head) :]):
        if used + len(line) + 1 > budget:
            break
        tail.append(line)
        used += len(line) + 1
    tail.reverse()
    if not head or not tail:
        # A single line longer than the budget: cut characters instead of whole lines.
        marker = _marker_chars(len(full) - 2 * budget)
        return full[:budget] + "\n" + marker + "\n" + full[len(full) - budget :]
    omitted = len(lines) - len(head) - len(tail)
    return "\n".join([*head, _marker(omitted), *tail])


def _marker(omitted: int) -> str:
    return f"[… {omitted} segments omitted …]"


def _marker_chars(omitted: int) -> str:
    return f"[… {omitted} characters omitted …]"


def _lines(dicts: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each segment_dict's line (rule 1); its start and end are floats and its text a str
    already. One loop, the clocks memoised: this runs once per segment per call."""
    clock = _clock
    out: list[str] = []
    append = out.append
    for seg in dicts:
        speaker = seg.get("speaker")
        append(
            "[" + clock(seg["start"]) + "–" + clock(seg["end"]) + "] "
            + (speaker + ": " if speaker else "")
            + " ".join(seg["text"].split())
        )
    return out


_CLOCKS: dict[int, str] = {}  # tenths of a second -> "mm:ss.s", the first hour's only
_CLOCKS_UP_TO = 36_000


def _clock(seconds: float) -> str:
    tenths = round(seconds * 10)
    text = _CLOCKS.get(tenths)
    if text is None:
        minutes, rest = divmod(tenths, 600)
        text = "%02d:%02d.%d" % (minutes, rest // 10, rest % 10)  # noqa: UP031 - measured faster
        if 0 <= tenths < _CLOCKS_UP_TO:
            _CLOCKS[tenths] = text
    return text


_FIELDS = ("start", "end", "text", "speaker")


def segment_dict(segment: Any) -> dict[str, Any]:
    """A transcript segment (a Mapping or a domain.ports.Segment) as a plain dict."""
    if type(segment) is dict:
        src: Mapping[str, Any] = segment
    elif isinstance(segment, Mapping):
        src = segment
    else:
        src = {k: getattr(segment, k, None) for k in _FIELDS}
    start, end, text = src.get("start"), src.get("end"), src.get("text")
    if start is None or end is None or text is None:
        missing = "start" if start is None else "end" if end is None else "text"
        raise ValueError(f"transcript segment {segment!r} lacks {missing!r}")
    out: dict[str, Any] = {"start": float(start), "end": float(end), "text": str(text)}
    speaker = src.get("speaker")
    if speaker:
        out["speaker"] = str(speaker)
    return out
