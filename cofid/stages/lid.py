"""LID: the call's language and duration (pipeline rule 3)."""

from __future__ import annotations

from pathlib import Path

from cofid.backends.base import AudioRef, Backends, LidResult
from cofid.domain.language import detected_code
from cofid.domain.model import LANGUAGE_IDS, Language, Stage
from cofid.domain.ops import WriteSet
from cofid.domain.pipeline import FileState, audio_for_stage
from cofid.stages.base import NoGate, StageEnv, Summary, mark_done, register, summary_of


class LidStage(NoGate):
    stage = Stage.LID

    async def call(self, env: StageEnv, f: FileState, backends: Backends, ctx: None) -> LidResult:
        src = Path(audio_for_stage(f, Stage.LID, env.work_dir))
        return await backends.lid.identify(AudioRef(src, f.audio_name))

    def writes(self, f: FileState, result: LidResult, ctx: None) -> tuple[WriteSet, Summary]:
        r = result
        lang = r.language if r.language in Language.__members__.values() else Language.OTHER
        ws = WriteSet()
        ws.insert(
            "lid_status",
            {
                "batch_id": f.batch_id,
                "call_id": f.call_id,
                "audio_name": f.audio_name,
                "language": lang,
                "confidence": float(r.confidence),
                "audio_duration": float(r.duration_s),
                # What the detector said, when it is a short language code: "fr" where
                # `language` (the seed's label) is 'other'.
                "detected_language": detected_code(r.detected),
            },
        )
        mark_done(ws, f, Stage.LID)
        # Step 8: the call takes the language and duration.
        ws.update(
            "call", "id", f.call_id,
            lang=lang, language_id=LANGUAGE_IDS[Language(lang)], audio_duration=float(r.duration_s),
        )
        f.lid_done = True
        f.lang = lang
        f.duration_s = float(r.duration_s)
        return ws, summary_of(result)


register(LidStage())
