"""Language identification on the CPU with faster-whisper: en / hi / hinglish, or "other".

LID abstains: it names en, hi or hinglish only on evidence, else the call is "other"
(UnsupportedLanguage), never forced into an allowed language. Thresholds (`LidThresholds`,
set from [backends.cpu] lid_* in cofid.toml) were calibrated with `bench/lid.py` on the
labelled espeak-ng set (cofid.testing.speech_set: 88 clips, en in 4 accents, hi, romanized
Hinglish and 14 unsupported languages) with Whisper base; the README has the table.

1. Whisper's language detection on the first `lid_seconds` gives probabilities; p_hi is
   Hindi's plus Urdu's (one spoken language to Whisper, see cofid.domain.language).
2. A confident language other than en / hi / ur (p >= `confident_p`, e.g. German at 0.98)
   is "other" with no decoding, unless p_en reaches `weak_en_p` (step 5): Whisper base put
   espeak-ng's Caribbean English voice at Latin 0.54 with p_en 0.18, while no confident
   foreign clip had p_en above 0.07.
3. Hindi: p_hi >= `min_hi_p` (and at least p_en). Measured: Whisper base gives espeak-ng's
   Hindi voice p_hi <= 0.10 and put Kannada at 0.11, so no lower bar separates them; the
   earlier rule (decode as en and as hi, keep the better) labelled every Indian language
   hi or en, since a Devanagari decode of any speech scores as well as of Hindi (-0.6 to
   -1.1 mean log-probability; Nepali even echoed the prompt at -0.32).
4. English-like: p_en >= `min_en_p` (0.22: midpoint of the unsupported clips' highest,
   Gujarati 0.18, and the lowest en / Hinglish clip above the weak zone, 0.26). The head is
   decoded as English: fluent (mean token log-probability >= `min_en_logprob`: English
   -0.22 to -0.82) is en; otherwise the speech sounds English but is not English words,
   which is how code-mixed Hinglish comes out (Hinglish clips -0.92 to -1.40 on an AMD
   EPYC, -0.83 to -1.23 on an Intel Xeon, or looping, even at p_en 0.75), so it is
   hinglish. An English call too noisy to decode fluently is therefore hinglish: an
   allowed label, transcribed as English too. The bar (-0.87) favours en over hinglish
   where the two machines' ranges touch.
5. Weak English evidence, `weak_en_p` <= p_en < `min_en_p`: the head is decoded as English
   and is en only when it is clearly fluent (>= `weak_en_logprob`), else other (never
   hinglish: here non-fluent is what foreign speech gives). Measured on an AMD EPYC: the
   Caribbean English clips sit at p_en 0.12-0.18, among Gujarati 0.18, Nepali 0.14,
   Malayalam 0.13 and Hindi 0.11-0.18; their decodes score -0.38 to -0.61, every other
   clip there -0.76 or worse (Hindi read as "Namaste, your call to ..." -0.76, Gujarati
   -1.16); -0.69 is the midpoint. Below `weak_en_p` (0.10) no en clip was seen.
6. Anything else abstains: "other", the detector's top guess recorded as `detected`.
7. The head transcript (Hindi decoded with the Devanagari prompt, so Hindi comes out in
   Devanagari rather than Urdu or Roman letters) goes to
   `cofid.domain.language.label_language`, which applies the hinglish text rules.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import trio

from cofid.backends.base import AudioRef, LidResult
from cofid.backends.cpu.audio import WHISPER_SR, load_mono
from cofid.backends.cpu.whisper import (
    DEVANAGARI_PROMPT,
    TEXT_HEAD_CHARS,
    WhisperEngine,
    decode_segments,
    mean_token_logprob,
)
from cofid.domain.language import LABEL_HINGLISH, LABEL_OTHER, label_language

SUPPORTED_CODES = ("en", "hi", "ur")


@dataclass(frozen=True)
class LidThresholds:
    """The evidence the CPU LID needs to name en / hi / hinglish (module docstring, 2-4).

    Defaults: calibrated with bench/lid.py on cofid.testing.speech_set with Whisper base,
    each bar at the midpoint between the classes it separates (measured effect beside the
    settings in cofid/config/model.py and in the README).
    """

    confident_p: float = 0.5
    min_en_p: float = 0.22
    min_hi_p: float = 0.3
    min_en_logprob: float = -0.87
    weak_en_p: float = 0.1
    weak_en_logprob: float = -0.69


def top_languages(probabilities: Mapping[str, float], n: int = 3) -> list[list[Any]]:
    """The `n` most probable languages as [code, p] pairs, p rounded to 4 places."""
    ranked = sorted(probabilities.items(), key=lambda item: item[1], reverse=True)[:n]
    return [[lang, round(prob, 4)] for lang, prob in ranked]


class CpuLid:
    """LidBackend on the CPU: Whisper's detection plus an English decode, abstaining on
    weak evidence (module docstring)."""

    def __init__(
        self,
        engine: WhisperEngine,
        *,
        lid_seconds: float = 30.0,
        text_seconds: float = 10.0,
        devanagari_prompt: str = DEVANAGARI_PROMPT,
        thresholds: LidThresholds | None = None,
    ) -> None:
        self.engine = engine
        self.lid_seconds = lid_seconds
        self.text_seconds = text_seconds
        self.devanagari_prompt = devanagari_prompt
        self.thresholds = thresholds or LidThresholds()

    def _head_text(self, model: Any, head: np.ndarray, language: str) -> tuple[str, float]:
        """The head decoded in `language` (greedy) and its mean token log-probability."""
        prompt = self.devanagari_prompt if language == "hi" else None
        segments = decode_segments(
            model, head, language, initial_prompt=prompt, temperature=0.0,
            without_timestamps=True, max_new_tokens=96,
        )  # fmt: skip
        return " ".join(s.text.strip() for s in segments).strip(), mean_token_logprob(segments)

    def _identify_sync(self, model: Any, samples: np.ndarray) -> dict[str, Any]:
        """Detection and decoding in a worker thread: the evidence and the decision."""
        bars = self.thresholds
        lid_head = samples[: int(self.lid_seconds * WHISPER_SR)]
        text_head = samples[: int(self.text_seconds * WHISPER_SR)]
        _lang, _p, ranked = model.detect_language(lid_head, vad_filter=True)
        probabilities = {lang: float(p) for lang, p in ranked}
        top, p_top = max(probabilities.items(), key=lambda item: item[1])
        p_en = probabilities.get("en", 0.0)
        p_hi = probabilities.get("hi", 0.0) + probabilities.get("ur", 0.0)
        found: dict[str, Any] = {
            "probabilities": probabilities, "whisper_top": top, "p_en": p_en, "p_hi": p_hi,
            "detected": top, "text": "", "abstained": False,
        }  # fmt: skip
        confident_other = top not in SUPPORTED_CODES and p_top >= bars.confident_p
        if confident_other and p_en < bars.weak_en_p:
            return {**found, "method": "whisper-confident-other"}
        if p_hi >= bars.min_hi_p and p_hi >= p_en:
            text, _score = self._head_text(model, text_head, "hi")
            return {**found, "detected": "hi", "text": text, "method": "whisper"}
        if p_en >= bars.min_en_p:
            text, score = self._head_text(model, text_head, "en")
            found.update(text=text, en_logprob=score if score > float("-inf") else None)
            if score >= bars.min_en_logprob:
                return {**found, "detected": "en", "method": "english-decode"}
            return {**found, "detected": LABEL_HINGLISH, "method": "english-like-not-english"}
        if p_en >= bars.weak_en_p:
            text, score = self._head_text(model, text_head, "en")
            found.update(text=text, en_logprob=score if score > float("-inf") else None)
            if score >= bars.weak_en_logprob:
                return {**found, "detected": "en", "method": "weak-english-fluent-decode"}
            return {**found, "abstained": True, "method": "abstain-weak-english-not-fluent"}
        return {**found, "abstained": True, "method": "abstain-weak-evidence"}

    async def identify(self, audio: AudioRef) -> LidResult:
        """The call's label (en / hi / hinglish / other) from the head of its audio."""
        samples, sr = await trio.to_thread.run_sync(load_mono, audio.path, WHISPER_SR)
        duration = round(len(samples) / sr, 3)
        started = time.perf_counter()
        found = await self.engine.run(self._identify_sync, samples)
        if found["abstained"]:
            # Weak evidence for every allowed label: the confidence is that it is none of them.
            label, confidence = LABEL_OTHER, max(0.0, 1.0 - found["p_en"] - found["p_hi"])
        else:
            # The engine weighed the evidence itself (above); the text rules still apply.
            label, confidence = label_language(
                found["detected"], found["probabilities"], found["text"], min_supported_p=0.0
            )
        request = {
            "engine": "cpu-faster-whisper",
            "model": self.engine.model_name,
            "compute_type": self.engine.compute_type,
            "lid_seconds": self.lid_seconds,
            "text_seconds": self.text_seconds,
        }
        response = {
            "language": label,
            "confidence": round(confidence, 4),
            "detected": found["detected"],
            "method": found["method"],
            "language_probs": top_languages(found["probabilities"]),
            "evidence": {
                "p_en": round(found["p_en"], 4),
                "p_hi": round(found["p_hi"], 4),
                "en_logprob": _rounded(found.get("en_logprob")),
            },
            "thresholds": asdict(self.thresholds),
            "decoder": self.engine.describe(),
            "duration_s": duration,
            "text_head": found["text"][:TEXT_HEAD_CHARS],
            "elapsed_s": round(time.perf_counter() - started, 3),
        }
        return LidResult(
            language=label,
            confidence=confidence,
            duration_s=duration,
            request=request,
            response=response,
            detected=found["detected"],
        )


def _rounded(value: float | None) -> float | None:
    """`value` to 3 places, None kept."""
    return None if value is None else round(value, 3)
