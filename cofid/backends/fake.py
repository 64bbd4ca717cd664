"""Deterministic in-process backends: `backends = "fake"` in cofid.toml, tests and benchmarks.

Every answer is a function of the audio name (and a script, when a test wants a
particular call to be Hindi, short, or broken), so runs are reproducible and a crashed and
resumed run must end with exactly the rows of an uninterrupted one.

Name conventions of the default script (a test can pass its own):
  *_hi*  Hindi            *_fr* / *_de*   an unsupported language
  *_short*  2.5 s long    *corrupt*       undecodable (PermanentBackendError)
  *_flaky*  fails the first attempt of every stage (BackendError), then succeeds
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from cofid.backends.base import (
    AudioRef,
    BackendError,
    Backends,
    ChatRequest,
    ChatResult,
    DenoiseResult,
    IvrResult,
    LidResult,
    PermanentBackendError,
    Segment,
    SttResult,
)


def _copy(src: Path, dst: Path) -> None:
    """The "processed" audio is the input's bytes (a hard link when possible: benchmarks
    run thousands of files), so later stages — fake or remote — can read it."""
    try:
        # The common case in one system call (a link appears whole, so it is atomic too):
        # the general case's four cost ~55 µs a file against ~19 µs (ext4, KVM).
        os.link(src, dst)
        return
    except OSError:
        pass  # there already (a re-run), no directory yet, or no hard links here
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    tmp.replace(dst)


@dataclass(frozen=True)
class FakeCall:
    language: str = "en"
    duration_s: float = 60.0
    segments: int = 6
    corrupt: bool = False
    flaky: bool = False
    ivr_offset_s: float = 0.0
    # What the detector "said" (LidResult.detected): "fr" for a *_fr* call labelled other.
    detected: str | None = None


def default_script(name: str) -> FakeCall:
    low = name.lower()
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    lang = "hi" if "_hi" in low else "other" if ("_fr" in low or "_de" in low) else "en"
    detected = "fr" if "_fr" in low else "de" if "_de" in low else lang
    duration = 2.5 if "_short" in low else 30.0 + (h % 600) / 10.0
    return FakeCall(
        language=lang,
        duration_s=duration,
        segments=3 + h % 5,
        corrupt="corrupt" in low,
        flaky="_flaky" in low,
        ivr_offset_s=float(h % 7),
        detected=detected,
    )


# Who says what: the client places the order and says yes to the agent's read-back, so a
# transcript of five segments or more confirms its order (cofid.domain.verdict_confirm).
SENTENCES = (
    ("agent", "This call is being recorded for quality and compliance."),
    ("agent", "May I have your client code please?"),
    ("client", "I want to buy {q} shares of INFY at market price."),
    ("agent", "Just to confirm, you want to buy {q} shares of INFY at market price."),
    ("client", "Yes, I confirm."),
    ("agent", "Thank you, your order has been placed."),
    ("agent", "Is there anything else I can help you with?"),
)


@dataclass
class FakeBackends:
    """One shared state for all capabilities: call counts, optional latency, failures."""

    script: Callable[[str], FakeCall] = default_script
    latency_s: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    fail_names: set[str] = field(default_factory=set)  # always fail (retryable)

    def _enter(self, cap: str, audio_name: str) -> FakeCall:
        self.calls[cap] = self.calls.get(cap, 0) + 1
        fc = self.script(audio_name)
        if fc.corrupt:
            raise PermanentBackendError(f"{audio_name}: cannot decode audio (not a WAV/FLAC/OGG/MP3 stream)")
        if audio_name in self.fail_names:
            raise BackendError(f"{audio_name}: simulated GPU error (HTTP 500)")
        if fc.flaky:
            # Attempts are counted for flaky calls only: an entry per call and capability
            # for every file grew a long-running fake daemon by ~0.6 KB a file.
            n = self.attempts.get((cap, audio_name), 0) + 1
            self.attempts[(cap, audio_name)] = n
            if n == 1:
                raise BackendError(f"{audio_name}: simulated transient error on first attempt")
        return fc

    async def _sleep(self) -> None:
        if self.latency_s:
            await trio.sleep(self.latency_s)
        else:
            await trio.lowlevel.checkpoint()

    # capabilities -------------------------------------------------------------------------
    async def denoise(self, audio: AudioRef, output: Path) -> DenoiseResult:
        self._enter("denoise", audio.name)
        await self._sleep()
        _copy(audio.path, output)
        return DenoiseResult(output=output, noise_reduction_db=6.0,
                             request={"file": audio.name}, response={"noise_reduction_db": 6.0})

    async def trim(self, audio: AudioRef, output: Path) -> IvrResult:
        fc = self._enter("ivr", audio.name)
        await self._sleep()
        if fc.ivr_offset_s > 0:  # like the real engines: a derived file only when trimmed
            _copy(audio.path, output)
        return IvrResult(output=output if fc.ivr_offset_s > 0 else audio.path,
                         trim_offset_s=fc.ivr_offset_s,
                         request={"file": audio.name}, response={"trim_offset_s": fc.ivr_offset_s})

    async def identify(self, audio: AudioRef) -> LidResult:
        fc = self._enter("lid", audio.name)
        await self._sleep()
        return LidResult(language=fc.language, confidence=0.9, duration_s=fc.duration_s,
                         request={"file": audio.name},
                         response={"language": fc.language, "duration": fc.duration_s},
                         detected=fc.detected)

    async def transcribe(self, audio: AudioRef, language: str) -> SttResult:
        fc = self._enter("stt", audio.name)
        await self._sleep()
        q = 100 + (len(audio.name) % 9) * 50
        step = fc.duration_s / max(1, fc.segments)
        segs = tuple(
            Segment(start=round(i * step, 3), end=round((i + 1) * step, 3),
                    text=SENTENCES[i % len(SENTENCES)][1].format(q=q), avg_logprob=-0.2,
                    no_speech_prob=0.01, speaker=SENTENCES[i % len(SENTENCES)][0])
            for i in range(fc.segments)
        )
        return SttResult(segments=segs, language=language, duration_s=fc.duration_s,
                         request={"file": audio.name, "language": language},
                         response={"segments": len(segs)})

    async def complete(self, request: ChatRequest) -> ChatResult:
        self.calls["chat"] = self.calls.get("chat", 0) + 1
        await self._sleep()
        from cofid.backends.rules import RulesChat

        return await RulesChat().complete(request)

    def backends(self) -> Backends:
        return Backends(denoise=self, ivr=self, lid=self, stt=self, chat=self)
