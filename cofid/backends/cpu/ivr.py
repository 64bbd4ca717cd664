"""IVR trimming on the CPU: find where the automated part of a call ends and cut it off.

Three detectors, all on the opening `max_ivr_s` seconds:

1. Known prompts: the IVR plays the same recordings every time, so a prompt from the
   library is found by normalized cross-correlation (FFT, at 8 kHz) → end of the prompt.
2. DTMF: key presses are two pure tones; the Goertzel algorithm measures the eight DTMF
   frequencies on 40 ms frames → end of the last digit.
3. Voice activity (webrtcvad): the first sustained speech after the last IVR marker. It
   cannot find IVR by itself (prompts are speech too); it tells whether anyone speaks after
   the IVR. Markers but no speech after them → the call is all IVR.

The trim offset is the end of the last marker. No marker → offset 0 and the output is a
copy of the input. The trimmed output is 16 kHz mono PCM16 WAV.

The signal functions are pure (numpy in, numbers out); `CpuIvr` runs them in a worker
thread.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trio
import webrtcvad

from cofid.backends.base import AudioRef, IvrResult
from cofid.backends.cpu.audio import (
    WHISPER_SR,
    audio_duration,
    load_mono,
    resample,
    write_tail,
    write_wav,
)

MATCH_SR = 8000  # prompts and DTMF live in the telephone band; 8 kHz is enough and cheap

DTMF_LOW = (697.0, 770.0, 852.0, 941.0)
DTMF_HIGH = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")  # rows: low group, columns: high group

# Frame geometry and thresholds for DTMF. Q.24 asks for digits of >= 40 ms; 40 ms frames
# resolve 25 Hz, finer than the 73 Hz between the closest DTMF frequencies.
DTMF_FRAME_S = 0.040
DTMF_HOP_S = 0.010
DTMF_MIN_FRAMES = 3  # a digit must hold for 3 hops (40 + 20 ms of tone)
DTMF_MIN_RMS = 10 ** (-40 / 20)  # frames quieter than -40 dBFS carry no digit
DTMF_MIN_PURITY = 0.6  # the two tones hold >= 60% of the frame's energy (speech: far less)
DTMF_MAX_TWIST_DB = 8.0  # level difference allowed between the two tones
DTMF_GROUP_MARGIN_DB = 10.0  # winning tone over the runner-up in its group

# Audio decoded past max_ivr_s, so speech right after a late marker is still heard.
_SPEECH_WINDOW_S = 30.0

PROMPT_MIN_SCORE = 0.5  # normalized cross-correlation that counts as "this prompt played"

VAD_FRAME_S = 0.030
VAD_AGGRESSIVENESS = 2
SPEECH_MIN_S = 0.6  # sustained speech: this long ...
SPEECH_MIN_VOICED = 0.8  # ... with this share of voiced frames


def goertzel_power(frames: np.ndarray, sr: int, freqs: Sequence[float]) -> np.ndarray:
    """Power of each frequency in each frame (generalized Goertzel, exact frequencies).

    `frames` has shape (..., n); the result has shape (..., len(freqs)). For a sinusoid of
    amplitude A that fills the frame, the power is about (A * n / 2) ** 2.
    """
    frames = np.asarray(frames, dtype=np.float64)
    coeff = 2.0 * np.cos(2.0 * np.pi * np.asarray(freqs, dtype=np.float64) / sr)
    shape = frames.shape[:-1] + (len(coeff),)
    s_prev = np.zeros(shape)
    s_prev2 = np.zeros(shape)
    for n in range(frames.shape[-1]):
        s = frames[..., n, None] + coeff * s_prev - s_prev2
        s_prev2, s_prev = s_prev, s
    return s_prev**2 + s_prev2**2 - coeff * s_prev * s_prev2


def _frames(samples: np.ndarray, size: int, hop: int) -> np.ndarray:
    if len(samples) < size:
        return np.zeros((0, size), dtype=samples.dtype)
    return np.lib.stride_tricks.sliding_window_view(samples, size)[::hop]


def _dtmf_frame_digits(frames: np.ndarray, sr: int) -> list[str | None]:
    """The digit each frame carries, or None."""
    n = frames.shape[-1]
    window = np.hanning(n)
    windowed = frames * window
    energy = np.sum(windowed**2, axis=-1)
    power = goertzel_power(windowed, sr, DTMF_LOW + DTMF_HIGH)
    # Scale so a pure tone that fills the frame scores ~1 of the frame energy.
    scale = 2.0 * np.sum(window**2) / np.sum(window) ** 2
    share = power * scale / np.maximum(energy, 1e-20)[:, None]
    low, high = share[:, :4], share[:, 4:]
    low_best, high_best = low.argmax(axis=1), high.argmax(axis=1)
    rows = np.arange(len(frames))
    low_peak, high_peak = low[rows, low_best], high[rows, high_best]
    low_second = np.sort(low, axis=1)[:, -2]
    high_second = np.sort(high, axis=1)[:, -2]
    margin = 10 ** (DTMF_GROUP_MARGIN_DB / 10)
    twist = 10 ** (DTMF_MAX_TWIST_DB / 10)
    rms = np.sqrt(np.mean(frames**2, axis=-1))
    ok = (
        (rms >= DTMF_MIN_RMS)
        & (low_peak + high_peak >= DTMF_MIN_PURITY)
        & (low_peak >= margin * low_second)
        & (high_peak >= margin * high_second)
        & (high_peak <= twist * low_peak)
        & (low_peak <= twist * high_peak)
    )
    return [
        DTMF_KEYS[lo][hi] if good else None
        for good, lo, hi in zip(ok.tolist(), low_best.tolist(), high_best.tolist(), strict=True)
    ]


def detect_dtmf(samples: np.ndarray, sr: int) -> list[tuple[str, float, float]]:
    """DTMF digits in `samples` as (digit, start_s, end_s), in order."""
    audio = resample(np.asarray(samples, dtype=np.float32), sr, MATCH_SR)
    size, hop = int(DTMF_FRAME_S * MATCH_SR), int(DTMF_HOP_S * MATCH_SR)
    frames = _frames(audio.astype(np.float64), size, hop)
    if len(frames) == 0:
        return []
    digits: list[tuple[str, float, float]] = []
    run_digit, run_start, run_len = None, 0, 0
    for index, digit in enumerate([*_dtmf_frame_digits(frames, MATCH_SR), None]):
        if digit == run_digit and digit is not None:
            run_len += 1
            continue
        if run_digit is not None and run_len >= DTMF_MIN_FRAMES:
            start = run_start * hop / MATCH_SR
            end = ((run_start + run_len - 1) * hop + size) / MATCH_SR
            digits.append((run_digit, round(start, 3), round(end, 3)))
        run_digit, run_start, run_len = digit, index, 1
    return digits


def normalized_xcorr(signal: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Pearson-style correlation of `template` with every window of `signal` (FFT)."""
    m = len(template)
    template = template - template.mean()
    template_norm = np.linalg.norm(template)
    if m == 0 or len(signal) < m or template_norm == 0:
        return np.zeros(0)
    size = 1 << int(np.ceil(np.log2(len(signal) + m - 1)))
    spectrum = np.fft.rfft(signal, size) * np.conj(np.fft.rfft(template, size))
    dot = np.fft.irfft(spectrum, size)[: len(signal) - m + 1]
    # Window sums via cumulative sums: sum and energy of each length-m window.
    csum = np.concatenate(([0.0], np.cumsum(signal)))
    csum2 = np.concatenate(([0.0], np.cumsum(signal.astype(np.float64) ** 2)))
    window_sum = csum[m:] - csum[:-m]
    window_energy = csum2[m:] - csum2[:-m] - window_sum**2 / m
    # A zero-mean template makes the window mean drop out of the dot product.
    return dot / (template_norm * np.sqrt(np.maximum(window_energy, 1e-12)))


def find_prompt_end(
    samples: np.ndarray, sr: int, prompt: np.ndarray, *, min_score: float = PROMPT_MIN_SCORE
) -> float | None:
    """End (seconds) of the last place `prompt` (same rate `sr`) plays in `samples`."""
    score, end = match_prompt(samples, sr, prompt, min_score=min_score)
    return end if score is not None else None


def match_prompt(
    samples: np.ndarray, sr: int, prompt: np.ndarray, *, min_score: float = PROMPT_MIN_SCORE
) -> tuple[float | None, float | None]:
    """(score, end_s) of the last occurrence of `prompt` scoring >= min_score, else Nones."""
    signal = resample(np.asarray(samples, dtype=np.float32), sr, MATCH_SR).astype(np.float64)
    template = resample(np.asarray(prompt, dtype=np.float32), sr, MATCH_SR).astype(np.float64)
    ncc = normalized_xcorr(signal, template)
    hits = np.flatnonzero(ncc >= min_score)
    if len(hits) == 0:
        return None, None
    # A menu may be repeated: take the last occurrence, at its best lag.
    last = hits[hits > hits[-1] - len(template)]
    lag = int(last[np.argmax(ncc[last])])
    return float(ncc[lag]), (lag + len(template)) / MATCH_SR


def first_sustained_speech(
    samples: np.ndarray,
    sr: int,
    start_s: float = 0.0,
    *,
    min_speech_s: float = SPEECH_MIN_S,
    aggressiveness: int = VAD_AGGRESSIVENESS,
) -> float | None:
    """Start (seconds) of the first sustained speech at or after `start_s`, if any."""
    if sr not in (8000, 16000, 32000, 48000):
        samples, sr = resample(np.asarray(samples, dtype=np.float32), sr, WHISPER_SR), WHISPER_SR
    vad = webrtcvad.Vad(aggressiveness)
    frame_n = int(VAD_FRAME_S * sr)
    first = int(start_s * sr)
    pcm = (np.clip(samples[first:], -1.0, 1.0) * 32767).astype("<i2")
    count = len(pcm) // frame_n
    voiced = np.array(
        [vad.is_speech(pcm[i * frame_n : (i + 1) * frame_n].tobytes(), sr) for i in range(count)],
        dtype=bool,
    )
    window = max(1, int(round(min_speech_s / VAD_FRAME_S)))
    if len(voiced) < window:
        return None
    share = np.convolve(voiced.astype(float), np.ones(window) / window, mode="valid")
    candidates = np.flatnonzero(share >= SPEECH_MIN_VOICED)
    if len(candidates) == 0:
        return None
    begin = int(candidates[0])
    begin += int(np.argmax(voiced[begin : begin + window]))  # first voiced frame in the run
    return start_s + begin * VAD_FRAME_S


@dataclass(frozen=True)
class IvrFindings:
    """What the detectors found in one call; `trim_offset_s` is where the agent begins."""

    trim_offset_s: float
    all_ivr: bool
    prompt: str | None = None
    prompt_score: float | None = None
    prompt_end_s: float | None = None
    dtmf: str = ""
    dtmf_end_s: float | None = None
    speech_start_s: float | None = None

    @property
    def found(self) -> bool:
        return self.prompt_end_s is not None or self.dtmf_end_s is not None


def analyse_ivr(
    samples: np.ndarray,
    sr: int,
    prompts: dict[str, np.ndarray],
    *,
    max_ivr_s: float = 120.0,
    min_score: float = PROMPT_MIN_SCORE,
) -> IvrFindings:
    """Run the three detectors on a call; `prompts` are at MATCH_SR (8 kHz)."""
    opening = resample(np.asarray(samples[: int(max_ivr_s * sr)], np.float32), sr, MATCH_SR)
    prompt_name, prompt_score, prompt_end = None, None, None
    for name, prompt in prompts.items():
        score, end = match_prompt(opening, MATCH_SR, prompt, min_score=min_score)
        if end is not None and (prompt_end is None or end > prompt_end):
            prompt_name, prompt_score, prompt_end = name, score, end
    digits = detect_dtmf(opening, MATCH_SR)
    dtmf_end = digits[-1][2] if digits else None
    markers = [t for t in (prompt_end, dtmf_end) if t is not None]
    offset = max(markers) if markers else 0.0
    speech = first_sustained_speech(samples, sr, offset)
    return IvrFindings(
        trim_offset_s=round(offset, 3),
        all_ivr=bool(markers) and speech is None,
        prompt=prompt_name,
        prompt_score=None if prompt_score is None else round(prompt_score, 3),
        prompt_end_s=None if prompt_end is None else round(prompt_end, 3),
        dtmf="".join(d for d, _, _ in digits),
        dtmf_end_s=dtmf_end,
        speech_start_s=None if speech is None else round(speech, 3),
    )


def load_prompt_library(directory: Path | None, sr: int = MATCH_SR) -> dict[str, np.ndarray]:
    """Every WAV/FLAC in `directory` as mono at `sr`, by file name."""
    if directory is None or not Path(directory).is_dir():
        return {}
    library = {}
    for path in sorted(Path(directory).iterdir()):
        if path.suffix.lower() in (".wav", ".flac") and path.is_file():
            library[path.name], _ = load_mono(path, sr)
    return library


class CpuIvr:
    """IvrBackend on the CPU. `prompts_dir` holds the known IVR prompt recordings."""

    # Output for a call with nothing after its IVR: a short silence, so the file decodes.
    _EMPTY_TAIL_S = 0.5

    def __init__(
        self,
        prompts_dir: Path | None,
        *,
        max_ivr_s: float = 120.0,
        min_prompt_score: float = PROMPT_MIN_SCORE,
        limiter: trio.CapacityLimiter | None = None,
    ) -> None:
        self.prompts_dir = None if prompts_dir is None else Path(prompts_dir)
        self.max_ivr_s = max_ivr_s
        self.min_prompt_score = min_prompt_score
        self._limiter = limiter
        self._prompts: dict[str, np.ndarray] | None = None
        self._prompts_lock = threading.Lock()

    def _library(self) -> dict[str, np.ndarray]:
        with self._prompts_lock:
            if self._prompts is None:
                self._prompts = load_prompt_library(self.prompts_dir, MATCH_SR)
            return self._prompts

    def _trim_sync(self, audio: AudioRef, output: Path) -> IvrResult:
        # Only the opening can hold IVR: decode max_ivr_s plus room to hear speech after
        # the last marker; the trimmed tail is streamed, so a 3-hour call stays cheap.
        duration = audio_duration(audio.path)
        samples, sr = load_mono(audio.path, WHISPER_SR, max_seconds=self.max_ivr_s + _SPEECH_WINDOW_S)
        library = self._library()
        findings = analyse_ivr(
            samples, sr, library, max_ivr_s=self.max_ivr_s, min_score=self.min_prompt_score
        )
        if not findings.found:
            # Nothing to trim: later stages read the original (no copy, no re-encoding).
            output = Path(audio.path)
        elif findings.all_ivr or findings.trim_offset_s >= duration:
            write_wav(output, np.zeros(int(self._EMPTY_TAIL_S * sr), dtype=np.float32), sr)
        else:
            write_tail(audio.path, output, findings.trim_offset_s, sr)
        request = {
            "engine": "cpu-ivr",
            "max_ivr_s": self.max_ivr_s,
            "prompts": len(library),
            "min_prompt_score": self.min_prompt_score,
        }
        response = {
            "trim_offset_s": findings.trim_offset_s,
            "all_ivr": findings.all_ivr,
            "prompt": findings.prompt,
            "prompt_score": findings.prompt_score,
            "prompt_end_s": findings.prompt_end_s,
            "dtmf": findings.dtmf,
            "dtmf_end_s": findings.dtmf_end_s,
            "speech_start_s": findings.speech_start_s,
            "duration_s": round(duration, 3),
        }
        return IvrResult(
            output=output,
            trim_offset_s=findings.trim_offset_s,
            all_ivr=findings.all_ivr,
            request=request,
            response=response,
        )

    async def trim(self, audio: AudioRef, output: Path) -> IvrResult:
        return await trio.to_thread.run_sync(
            self._trim_sync, audio, Path(output), limiter=self._limiter
        )
