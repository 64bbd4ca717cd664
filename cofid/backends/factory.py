"""Backends from configuration: one HostBackends (slots + backends + breaker) per GPU host.

With no remote capability configured, the whole pipeline runs on one pseudo-GPU named
"cpu" whose slots are the CPU threads; CPU engines are shared by every slot (they hold
their own lock around inference).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cofid.backends.base import AudioRef, Backends, DenoiseResult, IvrResult
from cofid.backends.health import CircuitBreaker
from cofid.config import Config

if TYPE_CHECKING:
    import httpx

    from cofid.backends.remote import RemoteOptions

CAPABILITIES = ("denoise", "ivr", "lid", "stt", "chat")


class _Off:
    """A disabled optional capability (denoise/ivr = "off"): the stage is never enabled."""

    async def denoise(self, audio: AudioRef, output: Path) -> DenoiseResult:
        raise RuntimeError("denoise backend is off")

    async def trim(self, audio: AudioRef, output: Path) -> IvrResult:
        raise RuntimeError("ivr backend is off")


def _local_backends(cfg: Config) -> dict[str, Any]:
    """The non-remote backend of each capability (built once, shared by every GPU)."""
    kinds = {cap: getattr(cfg.backends, cap) for cap in CAPABILITIES}
    out: dict[str, Any] = {}
    if "fake" in kinds.values():
        from cofid.backends.fake import FakeBackends

        fake = FakeBackends(latency_s=cfg.backends.fake_latency_s)
        for cap, kind in kinds.items():
            if kind == "fake":
                out[cap] = fake
    cpu = cfg.backends.cpu
    if kinds["lid"] == "cpu" or kinds["stt"] == "cpu":
        from cofid.backends.cpu.whisper import CpuStt, WhisperEngine
        from cofid.backends.cpu.whisper_lid import CpuLid, LidThresholds
        from cofid.backends.cpu.whisper_model import resolve_model

        engine = WhisperEngine(resolve_model(cpu.whisper_model, cfg.model_cache_dir), cpu_threads=cpu.cpu_threads)
        if kinds["lid"] == "cpu":
            thresholds = LidThresholds(
                cpu.lid_confident_p, cpu.lid_min_en_p, cpu.lid_min_hi_p, cpu.lid_min_en_logprob,
                cpu.lid_weak_en_p, cpu.lid_weak_en_logprob,
            )  # fmt: skip
            out["lid"] = CpuLid(engine, lid_seconds=cpu.lid_seconds, thresholds=thresholds)
        if kinds["stt"] == "cpu":
            out["stt"] = CpuStt(engine, stt_options=cfg.backends.stt_options)
    if kinds["denoise"] == "cpu":
        from cofid.backends.cpu.denoise import CpuDenoise

        out["denoise"] = CpuDenoise(strength=cpu.denoise_strength)
    if kinds["ivr"] == "cpu":
        from cofid.backends.cpu.ivr import CpuIvr

        out["ivr"] = CpuIvr(Path(cpu.ivr_prompts_dir) if cpu.ivr_prompts_dir else None, max_ivr_s=cpu.max_ivr_s)
    if kinds["chat"] == "rules":
        from cofid.backends.rules import RulesChat

        out["chat"] = RulesChat()
    for cap, kind in kinds.items():
        if kind == "off":
            out[cap] = _Off()
    return out


@dataclass(frozen=True)
class HostBackends:
    """One configured host's backends and breaker; the service wraps each into an engine
    Gpu (the backends layer knows nothing of slots being scheduled)."""

    name: str
    slots: int  # of the main `url`
    backends: Backends
    breaker: CircuitBreaker
    # Servers besides the main `url` (a separate chat_url, ...): URL -> its slots, and
    # capability -> the URL whose slots its calls take (unnamed: the main url's slots).
    lanes: Mapping[str, int] = field(default_factory=dict)
    lane_of: Mapping[str, str] = field(default_factory=dict)


def build_hosts(cfg: Config, *, clock: Callable[[], float]) -> list[HostBackends]:
    local = _local_backends(cfg)
    remote_caps = [c for c in CAPABILITIES if getattr(cfg.backends, c) == "remote"]
    rc = cfg.backends.remote

    def breaker() -> CircuitBreaker:
        return CircuitBreaker(failure_threshold=rc.failure_threshold, cooldown_s=rc.cooldown_s, clock=clock)

    if not remote_caps:
        b = Backends(**{c: local[c] for c in CAPABILITIES})
        return [HostBackends("cpu", max(1, cfg.backends.cpu.cpu_threads), b, breaker())]

    import dataclasses

    import httpx

    from cofid.backends.endpoints import gpu_endpoints, lane_of, lanes
    from cofid.backends.remote import RemoteOptions, make_remote_backends
    from cofid.backends.remote_audio import RemoteDenoise, RemoteIvr

    options = RemoteOptions(
        timeout_s=rc.timeout_s, connect_timeout_s=rc.connect_timeout_s, stt_model=rc.stt_model,
        chat_model=rc.chat_model, lid_seconds=rc.lid_seconds, stt_options=cfg.backends.stt_options,
        no_speech_threshold=rc.no_speech_threshold, logprob_threshold=rc.logprob_threshold,
        lid_min_confidence=rc.lid_min_confidence,
        compression_ratio_threshold=rc.compression_ratio_threshold,
        max_reply_bytes=rc.max_reply_bytes, max_audio_reply_bytes=rc.max_audio_reply_bytes,
    )
    gpus: list[HostBackends] = []
    for g in cfg.gpus:
        eps = gpu_endpoints(g, rc)  # URL and dialect of each capability
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(rc.timeout_s, connect=rc.connect_timeout_s),
            limits=httpx.Limits(max_connections=sum(lanes(eps).values()) * 2 + 2),
        )
        opts = options if not g.api_key else _with_key(options, g.api_key)

        spoken = {c: dataclasses.replace(opts, dialect=eps[c].dialect) for c in ("lid", "stt", "chat")}
        per_cap = {
            # cofi's own contract (docs/gpu-audio-contract.md), on the GPU's main url
            "denoise": RemoteDenoise(g.url, client, opts),
            "ivr": RemoteIvr(g.url, client, opts, max_ivr_s=cfg.backends.cpu.max_ivr_s),
            "lid": make_remote_backends(eps["lid"].url, client, spoken["lid"])["lid"],
            "stt": make_remote_backends(eps["stt"].url, client, spoken["stt"])["stt"],
            "chat": make_remote_backends(eps["chat"].url, client, spoken["chat"])["chat"],
        }
        caps = {c: (per_cap[c] if c in remote_caps and c in per_cap else local.get(c)) for c in CAPABILITIES}
        backends = _ClosingBackends(client=client, **caps)
        # Only remote capabilities get a lane of their own server; local ones (and the
        # main url) share the entry's `slots`, so one URL for everything is one lane.
        remote_eps = {c: eps[c] for c in remote_caps}
        own = {u: n for u, n in lanes(remote_eps).items() if u != g.url}
        lane_by_cap = {c: u for c, u in lane_of(remote_eps).items() if u in own}
        gpus.append(HostBackends(g.name, g.slots, backends, breaker(), own, lane_by_cap))
    return gpus


def _with_key(options: RemoteOptions, key: str) -> RemoteOptions:
    import dataclasses

    return dataclasses.replace(options, api_key=key)


class _ClosingBackends(Backends):
    """Backends that own an HTTP client, closed with them."""

    def __init__(self, *, client: httpx.AsyncClient, **caps: Any) -> None:
        super().__init__(**caps)
        self._client = client

    async def aclose(self) -> None:
        await self._client.aclose()
