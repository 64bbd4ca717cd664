"""The six per-file stages: what each asks its backend and which rows it writes.

A stage is three small steps the engine runs in order:
  gate(f)             pure: a write set that settles the file without a model (the STT
                      gate's ShortCall / UnsupportedLanguage), or None;
  call(env, f, gpu)   the backend request (the only I/O; LLM stages get their inputs from
                      env.context, which the engine loaded);
  writes(f, result)   pure: the rows, the done flag and the call status of the result —
                      committed atomically by the writer — and the in-memory FileState update.

Re-running a stage for a file replaces its rows (delete then insert, in one transaction),
so a result is never written twice whatever order crashes and reaudits come in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from cofid.backends.base import AudioRef, Backends, ChatResult, LidResult, SttResult
from cofid.domain.model import LANGUAGE_IDS, NO_TRADE_DATA_ANSWER, CallStatus, Language, Stage
from cofid.domain.ops import WriteSet
from cofid.domain.pipeline import (
    FLAG_COLUMN,
    FileState,
    audio_for_stage,
    derived_audio_path,
    stt_gate,
)
from cofid.domain.prompts import build_llm1_request, build_llm2_request
from cofid.domain.questions import TRADE_QUESTION_COUNT, QuestionSet


@dataclass(frozen=True)
class StageEnv:
    """What stages need from configuration."""

    work_dir: str
    min_duration_s: float
    allowed_languages: tuple[str, ...]
    templates: dict[str, str] | None


@dataclass
class LlmContext:
    transcript: list[dict[str, Any]]
    call_metadata: dict[str, Any] | None
    trades: list[dict[str, Any]]
    extracted_trades: list[dict[str, Any]] = field(default_factory=list)
    question_set: QuestionSet | None = None
    no_trade_answers: bool = False  # triaging ran and mapped no trade to this call


@dataclass
class Outcome:
    writes: WriteSet
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None


def _done(ws: WriteSet, f: FileState, stage: Stage, **fd_values: Any) -> None:
    ws.update("fileDistribution", "id", f.fd_id, **{FLAG_COLUMN[stage]: 1}, **fd_values)


def _call_status(ws: WriteSet, f: FileState, status: str, **values: Any) -> None:
    ws.update("call", "id", f.call_id, status=status, **values)


def success_log(f: FileState, stage: Stage, attempt: int, duration_ms: int, gpu: str | None) -> dict:
    return {
        "batch_id": f.batch_id,
        "call_id": f.call_id,
        "file_name": f.audio_name,
        "stage_name": stage.value,
        "status": "success",
        "attempt": attempt,
        "error_message": None,
        "details": {"gpu": gpu} if gpu else None,
        "duration_ms": duration_ms,
    }


# ---- denoise / ivr ---------------------------------------------------------------------


async def call_denoise(env: StageEnv, f: FileState, b: Backends) -> Any:
    out = Path(derived_audio_path(env.work_dir, f, Stage.DENOISE))
    out.parent.mkdir(parents=True, exist_ok=True)
    return await b.denoise.denoise(AudioRef(Path(f.path), f.audio_name), out)


def writes_denoise(f: FileState, result: Any) -> WriteSet:
    ws = WriteSet()
    _done(ws, f, Stage.DENOISE)
    f.denoise_done = True
    return ws


async def call_ivr(env: StageEnv, f: FileState, b: Backends) -> Any:
    out = Path(derived_audio_path(env.work_dir, f, Stage.IVR))
    out.parent.mkdir(parents=True, exist_ok=True)
    src = Path(audio_for_stage(f, Stage.IVR, env.work_dir))
    return await b.ivr.trim(AudioRef(src, f.audio_name), out)


def writes_ivr(f: FileState, result: Any) -> WriteSet:
    ws = WriteSet()
    _done(ws, f, Stage.IVR, ivrTrimOffset=float(result.trim_offset_s))
    f.ivr_done = True
    f.ivr_offset_s = float(result.trim_offset_s)
    return ws


# ---- lid ------------------------------------------------------------------------------------


async def call_lid(env: StageEnv, f: FileState, b: Backends) -> LidResult:
    src = Path(audio_for_stage(f, Stage.LID, env.work_dir))
    return await b.lid.identify(AudioRef(src, f.audio_name))


def writes_lid(f: FileState, r: LidResult) -> WriteSet:
    lang = r.language if r.language in Language.__members__.values() else Language.OTHER
    ws = WriteSet()
    ws.insert(
        "lidStatus",
        {
            "batchId": f.batch_id,
            "callId": f.call_id,
            "audioName": f.audio_name,
            "language": lang,
            "confidence": float(r.confidence),
            "audioDuration": float(r.duration_s),
        },
    )
    _done(ws, f, Stage.LID)
    # Step 8: the call takes the language and duration.
    ws.update(
        "call", "id", f.call_id,
        lang=lang, languageId=LANGUAGE_IDS[Language(lang)], audioDuration=float(r.duration_s),
    )
    f.lid_done = True
    f.lang = lang
    f.duration_s = float(r.duration_s)
    return ws


# ---- stt ------------------------------------------------------------------------------------


def gate_stt(env: StageEnv, f: FileState) -> WriteSet | None:
    status = stt_gate(
        f.duration_s, f.lang, min_duration_s=env.min_duration_s, allowed_languages=env.allowed_languages
    )
    if status is None:
        return None
    ws = WriteSet()
    _call_status(ws, f, status)
    f.call_status = status
    return ws


async def call_stt(env: StageEnv, f: FileState, b: Backends) -> SttResult:
    src = Path(audio_for_stage(f, Stage.STT, env.work_dir))
    return await b.stt.transcribe(AudioRef(src, f.audio_name, f.duration_s), f.lang)


def writes_stt(f: FileState, r: SttResult) -> WriteSet:
    ws = WriteSet()
    ws.delete("transcript", "callId", f.call_id)
    ws.insert(
        "transcript",
        *(
            {
                "callId": f.call_id,
                "segmentIndex": i,
                "startTime": float(s.start),
                "endTime": float(s.end),
                "text": s.text,
                "speaker": s.speaker,
                "avgLogprob": s.avg_logprob,
                "noSpeechProb": s.no_speech_prob,
                "language": f.lang,
            }
            for i, s in enumerate(r.segments)
        ),
    )
    _call_status(ws, f, CallStatus.TRANSCRIPT_DONE)
    _done(ws, f, Stage.STT)
    f.stt_done = True
    f.call_status = CallStatus.TRANSCRIPT_DONE
    return ws


def transcript_dicts(r: SttResult) -> list[dict[str, Any]]:
    return [{"start": s.start, "end": s.end, "text": s.text, "speaker": s.speaker} for s in r.segments]


# ---- llm1 -----------------------------------------------------------------------------------


async def call_llm1(env: StageEnv, f: FileState, b: Backends, ctx: LlmContext) -> ChatResult:
    req = build_llm1_request(
        templates=env.templates,
        transcript=ctx.transcript,
        call_metadata=ctx.call_metadata,
        trades=ctx.trades,
    )
    return await b.chat.complete(req)


def extracted_dicts(r: ChatResult) -> list[dict[str, Any]]:
    """LLM1's trades as LLM2 reads them (the shape repo.extracted_trades_of returns)."""
    keys = ("trade_id", "symbol", "side", "quantity", "price", "order_type", "evidence")
    return [{k: tr.get(k) for k in keys} for tr in r.data.get("trades", [])]


def _money(v: Any) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def writes_llm1(f: FileState, r: ChatResult) -> WriteSet:
    ws = WriteSet()
    ws.delete("callConversation", "callId", f.call_id)
    ws.insert(
        "callConversation",
        *(
            {
                "callId": f.call_id,
                "tradeIndex": i,
                "tradeId": tr.get("trade_id"),
                "symbol": tr.get("symbol"),
                "side": tr.get("side"),
                "quantity": _money(tr.get("quantity")),
                "price": _money(tr.get("price")),
                "orderType": tr.get("order_type"),
                "evidence": tr.get("evidence"),
            }
            for i, tr in enumerate(r.data.get("trades", []))
        ),
    )
    _call_status(ws, f, CallStatus.AUDIT_DONE)
    _done(ws, f, Stage.LLM1)
    f.llm1_done = True
    f.call_status = CallStatus.AUDIT_DONE
    return ws


# ---- llm2 -----------------------------------------------------------------------------------


def llm2_questions(ctx: LlmContext) -> tuple[Any, ...]:
    """The questions the model answers: all, less the trade questions that triaging
    already settled as 'No trade data found' for a call without trades."""
    qs = ctx.question_set.questions if ctx.question_set else ()
    return qs[TRADE_QUESTION_COUNT:] if ctx.no_trade_answers else qs


async def call_llm2(env: StageEnv, f: FileState, b: Backends, ctx: LlmContext) -> ChatResult | None:
    questions = llm2_questions(ctx)
    if not questions:
        return None
    req = build_llm2_request(
        templates=env.templates,
        transcript=ctx.transcript,
        call_metadata=ctx.call_metadata,
        trades=ctx.trades,
        extracted_trades=ctx.extracted_trades,
        questions=questions,
    )
    return await b.chat.complete(req)


def no_trade_answer_rows(call_id: int, qs: QuestionSet) -> list[dict[str, Any]]:
    return [
        {
            "callId": call_id,
            "questionId": q.id,
            "questionOrder": i + 1,
            "question": q.text,
            "answer": NO_TRADE_DATA_ANSWER,
            "evidence": None,
            "source": "triaging",
        }
        for i, q in enumerate(qs.questions[:TRADE_QUESTION_COUNT])
    ]


def writes_llm2(f: FileState, r: ChatResult | None, ctx: LlmContext) -> WriteSet:
    """All of the call's answers: triaging's 'No trade data found' rows (when the call has
    no trade) and the model's, replacing whatever was there."""
    qs = ctx.question_set
    assert qs is not None
    order = {q.id: i + 1 for i, q in enumerate(qs.questions)}
    text = {q.id: q.text for q in qs.questions}
    rows = no_trade_answer_rows(f.call_id, qs) if ctx.no_trade_answers else []
    for a in (r.data.get("answers", []) if r is not None else []):
        rows.append(
            {
                "callId": f.call_id,
                "questionId": a["question_id"],
                "questionOrder": order[a["question_id"]],
                "question": text[a["question_id"]],
                "answer": a["answer"],
                "evidence": a.get("evidence"),
                "source": "llm2",
            }
        )
    ws = WriteSet()
    ws.delete("auditAnswer", "callId", f.call_id)
    ws.insert("auditAnswer", *rows)
    _call_status(ws, f, CallStatus.COMPLETE)
    _done(ws, f, Stage.LLM2)
    f.llm2_done = True
    f.call_status = CallStatus.COMPLETE
    return ws

