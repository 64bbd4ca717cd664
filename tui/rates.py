"""The header's derived words and figures: a human batch status and the ETA.

ETA: the stages run as a pipeline (a file moves on as soon as a stage is done with it),
so the batch ends when its slowest remaining stage has worked off what it has left:
ETA = max over the unfinished stages of remaining files / that stage's rate. The rate is
the daemon's measured one (StageState.measured_files_per_minute, over the stage's
recorded work, so it survives restarts), else the last minute's finishes seen in events;
a stage with no rate yet borrows the slowest rate known (it cannot be guessed faster).
Pure: no textual, no grpc.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tui.model import COMPLETE, IN_PROGRESS, STAGES, BatchModel, StageCard

VERBS: dict[str, str] = {
    "file_distribution": "distributing files",
    "callmetadata": "reading call metadata",
    "trademetadata": "reading trade metadata",
    "denoise": "denoising",
    "ivr": "trimming IVR",
    "lid": "identifying languages",
    "triaging": "triaging",
    "stt": "transcribing",
    "llm1": "extracting trades",
    "llm2": "auditing",
}


def human_status(model: BatchModel) -> str:
    """'completed', the running stages' verbs ('transcribing + extracting trades'),
    'starting' before any stage runs, 'between stages' when none is running."""
    if model.completed:
        return "completed"
    running = [
        VERBS.get(s, s)
        for s in STAGES
        if model.cards[s].status == IN_PROGRESS and not model.cards[s].disabled
    ]
    if running:
        return " + ".join(running[:2]) + (f" +{len(running) - 2}" if len(running) > 2 else "")
    if all(c.status != COMPLETE for c in model.cards.values()):
        return "starting"
    return "between stages"


def remaining(card: StageCard) -> int:
    if card.disabled or card.status == COMPLETE:
        return 0
    return max(0, card.total - card.processed)


def stage_rate(card: StageCard, now: datetime | None) -> float:
    """Files per minute: the daemon's measured rate, else what the events showed."""
    return card.measured_fpm if card.measured_fpm > 0 else card.files_per_minute(now)


def eta(model: BatchModel, now: datetime | None) -> timedelta | None:
    """Zero when done; None while no unfinished stage has a rate to go by."""
    if model.completed:
        return timedelta(0)
    left = [(remaining(c), stage_rate(c, now)) for c in model.cards.values() if remaining(c)]
    if not left:
        return None
    known = [r for _n, r in left if r > 0] or [
        stage_rate(c, now) for c in model.cards.values() if stage_rate(c, now) > 0
    ]
    if not known:
        return None
    slowest = min(known)
    minutes = max(n / (r if r > 0 else slowest) for n, r in left)
    return timedelta(minutes=minutes)
