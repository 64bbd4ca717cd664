"""Denoising on the CPU: spectral gating with noisereduce, conservative by default.

Full-strength gating removes 20-36 dB of noise but also eats the quiet edges of words, and
Whisper's transcripts got worse on it (see DESIGN.md). So the default only halves the
gated bins (`prop_decrease=0.5`) with a stationary noise estimate: line hiss and hum go
down, speech stays intact. `strength` (0..1) sets prop_decrease; 0 writes the audio through.

The reported reduction compares the noise floor (the quietest 10% of 30 ms frames, where a
call has no speech) before and after; the output is 16 kHz mono PCM16 WAV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trio

from cofid.backends.base import AudioRef, DenoiseResult
from cofid.backends.cpu.audio import WHISPER_SR, load_mono, write_wav

DEFAULT_STRENGTH = 0.5
_FLOOR_FRAME_S = 0.030
_FLOOR_QUANTILE = 0.10


def noise_floor(samples: np.ndarray, sr: int) -> float:
    """Mean power of the quietest frames: the noise between words."""
    size = int(_FLOOR_FRAME_S * sr)
    count = len(samples) // size
    if count == 0:
        return float(np.mean(np.square(samples, dtype=np.float64))) if len(samples) else 0.0
    power = np.mean(np.square(samples[: count * size].reshape(count, size), dtype=np.float64), 1)
    quiet = np.sort(power)[: max(1, int(count * _FLOOR_QUANTILE))]
    return float(np.mean(quiet))


def noise_reduction_db(before: np.ndarray, after: np.ndarray, sr: int) -> float:
    """How much the noise floor dropped, in dB (0 when nothing changed)."""
    floor_before, floor_after = noise_floor(before, sr), noise_floor(after, sr)
    if floor_before <= 0.0:
        return 0.0
    return float(10.0 * np.log10(floor_before / max(floor_after, 1e-20)))


def spectral_gate(samples: np.ndarray, sr: int, strength: float = DEFAULT_STRENGTH) -> np.ndarray:
    """Stationary spectral gating; `strength` is the share of gated energy removed."""
    if strength <= 0.0 or len(samples) == 0:
        return samples
    import noisereduce  # heavy import (scipy); only when denoising is on

    cleaned = noisereduce.reduce_noise(
        y=samples, sr=sr, stationary=True, prop_decrease=min(strength, 1.0), n_jobs=1
    )
    return np.asarray(cleaned, dtype=np.float32)


class CpuDenoise:
    """DenoiseBackend on the CPU."""

    def __init__(
        self, *, strength: float = DEFAULT_STRENGTH, limiter: trio.CapacityLimiter | None = None
    ) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"denoise strength must be within 0..1, got {strength}")
        self.strength = strength
        self._limiter = limiter

    def _denoise_sync(self, audio: AudioRef, output: Path) -> DenoiseResult:
        samples, sr = load_mono(audio.path, WHISPER_SR)
        cleaned = spectral_gate(samples, sr, self.strength)
        write_wav(output, cleaned, sr)
        reduction = round(noise_reduction_db(samples, cleaned, sr), 2)
        return DenoiseResult(
            output=output,
            noise_reduction_db=reduction,
            request={
                "engine": "cpu-noisereduce",
                "stationary": True,
                "prop_decrease": self.strength,
            },
            response={
                "noise_reduction_db": reduction,
                "duration_s": round(len(samples) / sr, 3),
                "sample_rate": sr,
            },
        )

    async def denoise(self, audio: AudioRef, output: Path) -> DenoiseResult:
        return await trio.to_thread.run_sync(
            self._denoise_sync, audio, Path(output), limiter=self._limiter
        )
