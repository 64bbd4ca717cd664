"""Which server serves each capability of a `[[gpus]]` entry: URL, dialect, model, slots.

One place answers it for the three users: the factory (the options each backend gets),
the probe (what to check at start and in `cofid check-config --probe`) and the engine's
slots per capability URL (`lanes`: with `url` and `chat_url` on different servers, a file's
STT must not wait for another file's LLM call).

Rules:

1. denoise and ivr (cofi's own contract) and lid / stt use `url` unless `lid_url` /
   `stt_url` is set; chat uses `chat_url`, else `url`.
2. Speech URLs speak `dialect` with `options`; the chat URL speaks `chat_dialect` (empty:
   `dialect`) with `chat_options`.
3. The model is the dialect's `model` option when set, else backends.remote.stt_model
   (denoise, ivr, lid, stt) or chat_model (chat).
4. A lane is one distinct URL. Its slots are `slots` for `url`, else the `*_slots` of the
   capability that names it (0: `slots`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cofid.backends.dialects import Dialect, resolve_dialect
from cofid.config.model import GpuConfig, RemoteBackendConfig

CAPABILITIES = ("denoise", "ivr", "lid", "stt", "chat")
SPEECH = ("denoise", "ivr", "lid", "stt")


@dataclass(frozen=True)
class Endpoint:
    """The server one capability of one GPU entry is sent to."""

    capability: str
    url: str
    dialect: Dialect
    model: str
    slots: int


def gpu_endpoints(
    g: GpuConfig, remote: RemoteBackendConfig, capabilities: Iterable[str] = CAPABILITIES
) -> dict[str, Endpoint]:
    """capability -> Endpoint for the given capabilities of one entry (rules 1-4)."""
    speech = resolve_dialect(g.dialect, dataclasses.asdict(g.options))
    chat = resolve_dialect(g.chat_dialect or g.dialect, dataclasses.asdict(g.chat_options))
    out: dict[str, Endpoint] = {}
    for cap in capabilities:
        own_url = getattr(g, f"{cap}_url", "")
        url = own_url or g.url
        slots = g.slots if not own_url or own_url == g.url else getattr(g, f"{cap}_slots") or g.slots
        dialect = chat if cap == "chat" else speech
        default_model = remote.chat_model if cap == "chat" else remote.stt_model
        out[cap] = Endpoint(cap, url, dialect, dialect.model or default_model, slots)
    return out


def lanes(endpoints: Mapping[str, Endpoint]) -> dict[str, int]:
    """Distinct URL -> its slots (rule 4); the first capability naming a URL decides."""
    out: dict[str, int] = {}
    for cap in CAPABILITIES:
        ep = endpoints.get(cap)
        if ep is not None and ep.url not in out:
            out[ep.url] = ep.slots
    return out


def lane_of(endpoints: Mapping[str, Endpoint]) -> dict[str, str]:
    """capability -> the URL (lane) whose slots its calls take."""
    return {cap: ep.url for cap, ep in endpoints.items()}
