"""What a Reaudit request does before it re-runs stages: the seed's cleanup rules, validated.

Rules (the seed's, "Reaudit Pipeline" steps 3-5):

1. The stages an operator may re-run are lid, stt, llm1 and llm2. They always run in that
   pipeline order, whatever order the request lists them in.
2. stt chosen: the calls' ``transcript`` rows are deleted before it runs.
3. llm2 chosen: the calls' ``audit_answer`` rows are deleted before it runs.
4. The call's ``status`` is reset from the EARLIEST chosen stage: lid or stt -> 'Pending',
   llm1 -> 'TranscriptDone', llm2 -> 'AuditDone' (the status each stage picks its work by).
5. The ``file_distribution`` done flag of every chosen stage is reset to 0
   (lid_done, stt_done, llm1_done, llm2_done), and only those.

Tables and columns are named by their field names; cofid/store/tables.py maps them to the
seed's.

cofi's change to the seed:

6. llm1 chosen: the calls' ``call_conversation`` rows are deleted before it runs. The seed left
   them ("LLM1 doesn't delete old data"), so after a reaudit a call showed the old and the
   new extracted trades side by side, and the audit screens counted both.

Request rules:

7. A gap is allowed and runs exactly what was chosen, in order: {lid, llm2} re-runs LID,
   then LLM2 on the existing transcripts and conversations; stt and llm1 are not re-run and
   their rows stay. The operator asked for those stages only, and the status reset (rule 4)
   still comes from the earliest stage, so lid's 'Pending' lets the later stages pick the
   call up again.
8. Stage names are matched after stripping spaces, case-insensitively. A stage listed
   twice (" STT " and "stt" too), no stages at all, or a name outside rule 1, is a
   ReauditRequestError naming the value (and the allowed names). A bare string is
   refused too: iterating "llm1" would read the letters as four stage names.
9. Audio names are stripped of surrounding spaces; exact repeats are dropped keeping the
   first position. An empty list, a blank name, a name over 255 characters (the column's
   width), a name with control characters, or more than ``max_names`` distinct names is a
   ReauditRequestError naming the offending value and its position.

Gates (a reaudit keeps every rule a batch applies; :func:`left_alone_reason`):

10. The STT gate stands. A call in 'ShortCall' or 'UnsupportedLanguage' is left alone
    (no cleanup, no status reset, no stage) by a reaudit without stt: the batch's gate
    decided it has no transcript, so llm1 and llm2 have nothing to read, and lid alone
    cannot re-apply the gate. With stt chosen the call goes through the gate again
    (reset to 'Pending'; stt's gate decides, on the new language when lid is chosen).
11. Prerequisites stand. A call never transcribed (stt_done 0: its batch stopped or
    failed before STT) is left alone by a reaudit with llm1 or llm2 but without stt; a
    call whose language was never identified (lid_done 0) is left alone by a reaudit
    with stt but without lid.
12. Triaging's answers stand. The llm2 cleanup deletes the model's audit_answer rows
    only, never triaging's 'No trade data found' rows (source 'triaging'): llm2 writes
    them again with its own answers, and a call the gate keeps from llm2 (rule 10, or
    gated again under rule 10's stt) keeps them. The seed deleted every answer, and a
    call skipped for length or language lost them for good.

A call left alone is named, with its reason, in the reaudit's reply, its task's result
and its closing event.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from cofid.domain.model import REAUDIT_STAGES, CallStatus, Stage
from cofid.domain.pipeline import STAGES

MAX_AUDIO_NAME_CHARS = 255
TRIAGING_SOURCE = "triaging"  # audit_answer.source of the 'No trade data found' rows
GATED_STATUSES = (CallStatus.SHORT_CALL, CallStatus.UNSUPPORTED_LANGUAGE)

# Rules 4 and 5 come from the status table (cofid/domain/pipeline.py, rule 9): the status
# each stage selects its calls by, and its file_distribution done flag (a field name).
_RESET_STATUS: dict[Stage, CallStatus] = {
    s: r.reaudit_status for s, r in STAGES.items() if r.reaudit_status is not None
}
_DONE_FLAG: dict[Stage, str] = {
    s: r.done_flag for s, r in STAGES.items()
    if r.reaudit_status is not None and r.done_flag is not None
}
assert tuple(_RESET_STATUS) == REAUDIT_STAGES == tuple(_DONE_FLAG)
_ALLOWED = ", ".join(REAUDIT_STAGES)


class ReauditRequestError(ValueError):
    """The request cannot be run as given; the message names the bad value."""


@dataclass(frozen=True)
class ReauditPlan:
    stages: tuple[str, ...]
    delete_transcripts: bool
    delete_audit_answers: bool
    delete_conversations: bool
    reset_call_status: str
    reset_flags: tuple[str, ...]


def plan_reaudit(stages: Iterable[str]) -> ReauditPlan:
    chosen = _parse_stages(stages)
    ordered = tuple(stage for stage in REAUDIT_STAGES if stage in chosen)
    return ReauditPlan(
        stages=ordered,
        delete_transcripts=Stage.STT in chosen,
        delete_audit_answers=Stage.LLM2 in chosen,
        delete_conversations=Stage.LLM1 in chosen,
        reset_call_status=_RESET_STATUS[ordered[0]],
        reset_flags=tuple(_DONE_FLAG[stage] for stage in ordered),
    )


def validate_audio_names(names: Iterable[str], *, max_names: int = 10000) -> list[str]:
    _refuse_bare_string(names, "audio names")
    unique: dict[str, None] = {}
    for position, raw in enumerate(names, start=1):
        if not isinstance(raw, str):
            raise ReauditRequestError(f"audio name #{position} is not a string: {raw!r}")
        name = raw.strip()
        if not name:
            raise ReauditRequestError(f"audio name #{position} is blank")
        if len(name) > MAX_AUDIO_NAME_CHARS:
            raise ReauditRequestError(
                f"audio name #{position} {name[:40]!r}... has {len(name)} characters, "
                f"more than {MAX_AUDIO_NAME_CHARS}"
            )
        if any(unicodedata.category(char) == "Cc" for char in name):
            raise ReauditRequestError(
                f"audio name #{position} {name!r} contains control characters"
            )
        unique[name] = None
        # Checked while reading, so an endless or huge iterable is refused early.
        if len(unique) > max_names:
            raise ReauditRequestError(
                f"more than {max_names} audio names in one request (at #{position} {name!r})"
            )
    if not unique:
        raise ReauditRequestError("no audio names given")
    return list(unique)


def _parse_stages(stages: Iterable[str]) -> set[Stage]:
    _refuse_bare_string(stages, "stages")
    chosen: set[Stage] = set()
    for raw in stages:
        name = raw.strip().lower() if isinstance(raw, str) else None
        if name not in _DONE_FLAG:
            raise ReauditRequestError(f"unknown stage {raw!r}: allowed stages are {_ALLOWED}")
        if Stage(name) in chosen:
            # A repeat is a client's mistake (a typo for another stage?), never merged.
            raise ReauditRequestError(f"stage {name!r} is listed twice")
        chosen.add(Stage(name))
    if not chosen:
        raise ReauditRequestError(f"no stages given: choose from {_ALLOWED}")
    return chosen


def _refuse_bare_string(value: object, what: str) -> None:
    if isinstance(value, str | bytes):
        raise ReauditRequestError(
            f"{what} must be a list of names, not the single string {value!r}"
        )


def left_alone_reason(plan: ReauditPlan, status: str, *, lid_done: bool,
                      stt_done: bool) -> str | None:
    """Rules 10–11: why a reaudit running `plan` must leave a call alone, or None."""
    chosen = set(plan.stages)
    if status in GATED_STATUSES and Stage.STT not in chosen:
        return (f"{status}: the STT gate closed this call (no transcript); choose stt to "
                f"pass it through the gate again")
    if not stt_done and status not in GATED_STATUSES and Stage.STT not in chosen and (
            chosen & {Stage.LLM1, Stage.LLM2}):
        return "never transcribed (stt has not run for it); choose stt too"
    if not lid_done and Stage.STT in chosen and Stage.LID not in chosen:
        return "language never identified (lid has not run for it); choose lid too"
    return None
