"""Denoise: the file's audio through the denoiser into the run's work directory."""

from __future__ import annotations

from pathlib import Path

from cofid.backends.base import AudioRef, Backends, DenoiseResult
from cofid.domain.model import Stage
from cofid.domain.ops import WriteSet
from cofid.domain.pipeline import FileState, derived_audio_path
from cofid.stages.base import (
    NoGate,
    StageEnv,
    Summary,
    mark_done,
    output_path,
    register,
    summary_of,
)


class DenoiseStage(NoGate):
    stage = Stage.DENOISE

    async def call(self, env: StageEnv, f: FileState, backends: Backends, ctx: None) -> DenoiseResult:
        out = output_path(derived_audio_path(env.work_dir, f, Stage.DENOISE))
        return await backends.denoise.denoise(AudioRef(Path(f.path), f.audio_name), out)

    def writes(self, f: FileState, result: DenoiseResult, ctx: None) -> tuple[WriteSet, Summary]:
        ws = WriteSet()
        mark_done(ws, f, Stage.DENOISE)
        f.denoise_done = True
        return ws, summary_of(result)


register(DenoiseStage())
