"""What a stage asks of a model, one interface per capability (the backend ports).

Stages call these and nothing else; a backend turns the call into an HTTP request to a
GPU host, a CPU engine run in a worker thread, or a deterministic answer in tests.

Every result carries `request` and `response`: small JSON-able summaries of what was
asked and answered, for the file_start / file_complete events (never audio bytes; long
text is truncated by the event layer).

A backend raises BackendError for a failure worth retrying (timeouts, 5xx, malformed
replies) and PermanentBackendError for one that no retry can fix (undecodable audio).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class BackendError(Exception):
    """A failure that may succeed on retry (timeout, connection, 5xx, invalid reply)."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class PermanentBackendError(BackendError):
    """A failure no retry can fix (the audio cannot be decoded, the input is refused)."""


class ModelOutputError(BackendError):
    """The server answered, but what the model wrote cannot be used (cut off, not JSON,
    off-schema, unstorable). The host is up: its circuit breaker counts it as an answer,
    not a failure (a weak model must not take a healthy server out of the pool)."""


# Statuses of a refused request that say the host itself is wrong, for every file: its
# credentials (401, 403), its address or model name (404), the method of its endpoint (405).
HOST_FAULT_STATUSES = frozenset({401, 403, 404, 405})


def host_answered(exc: BaseException | None) -> bool:
    """Whether a failed request still shows that its host works — for the circuit
    breaker a sign of life, not a failure: the model's output was refused
    (ModelOutputError), or this one input was (PermanentBackendError: undecodable audio,
    a file too large, a request the model cannot serve, a file that could not be read to
    send). A batch of corrupt recordings must not take healthy hosts out of the pool and
    stall the good files behind them; a host refusing everyone (bad credentials, a wrong
    address or model name) still does."""
    if isinstance(exc, ModelOutputError):
        return True
    return (isinstance(exc, PermanentBackendError)
            and exc.details.get("status") not in HOST_FAULT_STATUSES)


class BackendTimeout(BackendError):
    """No (complete) reply in time: the host may be hung, so it is suspect at once
    (:meth:`cofid.backends.health.CircuitBreaker.record_timeout`)."""


@dataclass(frozen=True)
class AudioRef:
    """One call's audio as a stage hands it to a backend.

    `path` is the file to read (the original, or the output of denoise/IVR);
    `name` is the call's audioName; `duration_s` is known after LID (0 before).
    """

    path: Path
    name: str
    duration_s: float = 0.0


@dataclass(frozen=True)
class DenoiseResult:
    output: Path
    noise_reduction_db: float | None = None
    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IvrResult:
    """Where the IVR part ends. `output` is the trimmed audio (the original when no IVR)."""

    output: Path
    trim_offset_s: float
    all_ivr: bool = False
    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LidResult:
    """`language` is one of en / hi / hinglish / other (cofid.domain.model.Language);
    `detected` is what the detector itself said ("fr", "french", "en-US"), as it said it,
    or None: unchecked here, the LID stage stores only a valid short code of it
    (cofid.domain.language.detected_code)."""

    language: str
    confidence: float
    duration_s: float
    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)
    detected: str | None = None


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    speaker: str | None = None
    # Whisper's gzip ratio of the text (a repetition loop scores high); None when unsent.
    compression_ratio: float | None = None


@dataclass(frozen=True)
class SttResult:
    segments: tuple[Segment, ...]
    language: str
    duration_s: float
    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatResult:
    """A chat completion whose content was parsed as JSON and validated against the schema."""

    data: dict[str, Any]
    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)


class DenoiseBackend(Protocol):
    async def denoise(self, audio: AudioRef, output: Path) -> DenoiseResult: ...


class IvrBackend(Protocol):
    async def trim(self, audio: AudioRef, output: Path) -> IvrResult: ...


class LidBackend(Protocol):
    async def identify(self, audio: AudioRef) -> LidResult: ...


class SttBackend(Protocol):
    async def transcribe(self, audio: AudioRef, language: str) -> SttResult: ...


@dataclass(frozen=True)
class ChatRequest:
    """One structured-output request: the reply must be a JSON object matching `schema`.

    `purpose` is "llm1" (trade extraction) or "llm2" (audit questions); `context` holds
    what the prompt was built from (transcript, call metadata, mapped trades, questions)
    so the deterministic `rules` backend can answer without parsing prompts.
    """

    purpose: str
    system: str
    user: str
    schema_name: str
    schema: dict[str, Any]
    context: dict[str, Any] = field(default_factory=dict)


class ChatBackend(Protocol):
    async def complete(self, request: ChatRequest) -> ChatResult: ...


@dataclass
class Backends:
    """The backends of one GPU host (or of the CPU), one per capability."""

    denoise: DenoiseBackend
    ivr: IvrBackend
    lid: LidBackend
    stt: SttBackend
    chat: ChatBackend
    # True when the host keeps a file on its own disk between stages, so a file must
    # stay on the GPU it was distributed to. OpenAI-compatible servers take the audio
    # with every request, so any healthy GPU can serve a file's next stage.
    needs_affinity: bool = False

    async def aclose(self) -> None:
        for backend in (self.denoise, self.ivr, self.lid, self.stt, self.chat):
            close = getattr(backend, "aclose", None)
            if close is not None:
                await close()
