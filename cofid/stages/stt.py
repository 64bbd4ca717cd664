"""STT: the gate (pipeline rule 4), then the transcript, replacing any earlier one."""

from __future__ import annotations

from pathlib import Path

from cofid.backends.base import AudioRef, Backends, SttResult
from cofid.domain.model import CallStatus, Stage
from cofid.domain.ops import WriteSet
from cofid.domain.pipeline import FileState, audio_for_stage, stt_gate
from cofid.domain.transcript_render import SegmentDicts
from cofid.stages.base import (
    NoGate,
    StageEnv,
    Summary,
    mark_done,
    register,
    set_call_status,
    summary_of,
)


class SttStage(NoGate):
    stage = Stage.STT

    def gate(self, env: StageEnv, f: FileState) -> WriteSet | None:
        status = stt_gate(
            f.duration_s, f.lang, min_duration_s=env.min_duration_s,
            allowed_languages=env.allowed_languages,
        )
        if status is None:
            return None
        ws = WriteSet()
        set_call_status(ws, f, status)
        f.call_status = status
        return ws

    async def call(self, env: StageEnv, f: FileState, backends: Backends, ctx: None) -> SttResult:
        src = Path(audio_for_stage(f, Stage.STT, env.work_dir))
        return await backends.stt.transcribe(AudioRef(src, f.audio_name, f.duration_s), f.lang)

    def writes(self, f: FileState, result: SttResult, ctx: None) -> tuple[WriteSet, Summary]:
        ws = WriteSet()
        ws.replace(
            "transcript", "call_id", f.call_id,
            *(
                {
                    "call_id": f.call_id,
                    "segment_index": i,
                    "start_time": float(s.start),
                    "end_time": float(s.end),
                    "text": s.text,
                    "speaker": s.speaker,
                    "avg_logprob": s.avg_logprob,
                    "no_speech_prob": s.no_speech_prob,
                    "language": f.lang,
                }
                for i, s in enumerate(result.segments)
            ),
        )
        set_call_status(ws, f, CallStatus.TRANSCRIPT_DONE)
        mark_done(ws, f, Stage.STT)
        f.stt_done = True
        f.call_status = CallStatus.TRANSCRIPT_DONE
        f.carried["transcript"] = transcript_dicts(result)
        return ws, summary_of(result)


def transcript_dicts(r: SttResult) -> SegmentDicts:
    """The transcript as the LLM stages read it: each segment as segment_dict() makes it
    (floats, the text, the speaker only when known), so their prompts take it as it is."""
    out = SegmentDicts()
    append = out.append
    for s in r.segments:
        d = {"start": float(s.start), "end": float(s.end), "text": str(s.text)}
        if s.speaker:
            d["speaker"] = str(s.speaker)
        append(d)
    return out


register(SttStage())
