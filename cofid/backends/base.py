"""The backend ports, as backends implement them: defined in :mod:`cofid.domain.ports`
(pure, so the domain's prompt and segment rules can name them) and re-exported here for
the backends that implement them."""

from cofid.domain.ports import (
    AudioRef,
    BackendError,
    Backends,
    ChatBackend,
    ChatRequest,
    ChatResult,
    DenoiseBackend,
    DenoiseResult,
    IvrBackend,
    IvrResult,
    LidBackend,
    LidResult,
    ModelOutputError,
    PermanentBackendError,
    Segment,
    SttBackend,
    SttResult,
)

__all__ = [
    "BackendError",
    "PermanentBackendError",
    "ModelOutputError",
    "AudioRef",
    "DenoiseResult",
    "IvrResult",
    "LidResult",
    "Segment",
    "SttResult",
    "ChatResult",
    "DenoiseBackend",
    "IvrBackend",
    "LidBackend",
    "SttBackend",
    "ChatRequest",
    "ChatBackend",
    "Backends",
]
