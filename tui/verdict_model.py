"""The verdicts the TUI shows: plain records of ListTradeVerdicts and GetCall, and the
dashboard's counts line.

Pure Python (no textual, no grpc), like tui.model: tui.client converts the messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

VERDICTS = ("confirmed", "mismatch", "no_call", "call_unusable", "pending")
NEEDS_A_PERSON = ("mismatch", "no_call", "call_unusable")
VERDICT_STYLE = {
    "confirmed": "green",
    "mismatch": "bold red",
    "no_call": "bold yellow",
    "call_unusable": "bold magenta",
    "pending": "grey70",
}


@dataclass(frozen=True)
class FieldRow:
    field: str
    booked: str | None
    heard: str | None
    agree: bool
    note: str = ""


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    speaker: str = ""


@dataclass(frozen=True)
class VerdictRow:
    batch_id: int
    trade_id: str
    verdict: str
    audio_name: str = ""  # "" when the trade maps to no call
    reason: str = ""
    fields: tuple[FieldRow, ...] = ()
    evidence: tuple[Segment, ...] = ()

    @property
    def fields_off(self) -> str:
        return ", ".join(f.field for f in self.fields if not f.agree)


@dataclass(frozen=True)
class CallDetail:
    """One call as the drill-down shows it (GetCall)."""

    batch_id: int
    audio_name: str
    status: str
    lang: str
    duration_s: float
    failed_stage: str = ""
    failure_reason: str = ""
    transcript: tuple[Segment, ...] = ()
    extracted: tuple[str, ...] = ()  # "BUY 100 INFY @ 1500 LIMIT" per LLM1 trade
    answers: tuple[tuple[str, str], ...] = ()  # (question, answer)
    mapped: tuple[str, ...] = field(default=())  # booked trades mapped to the call


def counts_items(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """The batch's verdict counts in the README's order (every verdict, 0 included, once
    the batch has any), unknown verdicts after them."""
    if not counts:
        return []
    known = [(v, int(counts.get(v, 0))) for v in VERDICTS]
    return known + sorted((k, int(n)) for k, n in counts.items() if k not in VERDICTS)


def needs_a_person(counts: Mapping[str, int]) -> int:
    return sum(int(counts.get(v, 0)) for v in NEEDS_A_PERSON)
