"""IVR: trim the recorded menu off the start of the call; the offset goes on the file."""

from __future__ import annotations

from pathlib import Path

from cofid.backends.base import AudioRef, Backends, IvrResult
from cofid.domain.model import Stage
from cofid.domain.ops import WriteSet
from cofid.domain.pipeline import FileState, audio_for_stage, derived_audio_path
from cofid.stages.base import (
    NoGate,
    StageEnv,
    Summary,
    mark_done,
    output_path,
    register,
    summary_of,
)


class IvrStage(NoGate):
    stage = Stage.IVR

    async def call(self, env: StageEnv, f: FileState, backends: Backends, ctx: None) -> IvrResult:
        out = output_path(derived_audio_path(env.work_dir, f, Stage.IVR))
        src = Path(audio_for_stage(f, Stage.IVR, env.work_dir))
        return await backends.ivr.trim(AudioRef(src, f.audio_name), out)

    def writes(self, f: FileState, result: IvrResult, ctx: None) -> tuple[WriteSet, Summary]:
        ws = WriteSet()
        mark_done(ws, f, Stage.IVR, ivr_trim_offset=float(result.trim_offset_s))
        f.ivr_done = True
        f.ivr_offset_s = float(result.trim_offset_s)
        return ws, summary_of(result)


register(IvrStage())
