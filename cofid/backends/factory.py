"""Backends from configuration: one Gpu (slots + backends + breaker) per GPU host.

With no remote capability configured, the whole pipeline runs on one pseudo-GPU named
"cpu" whose slots are the CPU threads; CPU engines are shared by every slot (they hold
their own lock around inference).
"""

from __future__ import annotations

from collections.abc import Callable

from cofid.backends.base import Backends
from cofid.backends.health import CircuitBreaker
from cofid.config import Config
from cofid.engine.gpus import Gpu

CAPABILITIES = ("denoise", "ivr", "lid", "stt", "chat")


class _Off:
    """A disabled optional capability (denoise/ivr = "off"): the stage is never enabled."""

    async def denoise(self, audio, output):
        raise RuntimeError("denoise backend is off")

    async def trim(self, audio, output):
        raise RuntimeError("ivr backend is off")


def _local_backends(cfg: Config) -> dict[str, object]:
    """The non-remote backend of each capability (built once, shared by every GPU)."""
    kinds = {cap: getattr(cfg.backends, cap) for cap in CAPABILITIES}
    out: dict[str, object] = {}
    if "fake" in kinds.values():
        from cofid.testing.fake_backends import FakeBackends

        fake = FakeBackends(latency_s=cfg.backends.fake_latency_s)
        for cap, kind in kinds.items():
            if kind == "fake":
                out[cap] = fake
    cpu = cfg.backends.cpu
    if kinds["lid"] == "cpu" or kinds["stt"] == "cpu":
        from cofid.backends.cpu.whisper import CpuLid, CpuStt, WhisperEngine
        from cofid.backends.cpu.whisper_model import resolve_model

        engine = WhisperEngine(resolve_model(cpu.whisper_model, cfg.model_cache_dir), cpu_threads=cpu.cpu_threads)
        if kinds["lid"] == "cpu":
            out["lid"] = CpuLid(engine, lid_seconds=cpu.lid_seconds)
        if kinds["stt"] == "cpu":
            out["stt"] = CpuStt(engine, stt_options=cfg.backends.stt_options)
    if kinds["denoise"] == "cpu":
        from cofid.backends.cpu.denoise import CpuDenoise

        out["denoise"] = CpuDenoise(strength=cpu.denoise_strength)
    if kinds["ivr"] == "cpu":
        from pathlib import Path

        from cofid.backends.cpu.ivr import CpuIvr

        out["ivr"] = CpuIvr(Path(cpu.ivr_prompts_dir) if cpu.ivr_prompts_dir else None, max_ivr_s=cpu.max_ivr_s)
    if kinds["chat"] == "rules":
        from cofid.backends.rules import RulesChat

        out["chat"] = RulesChat()
    for cap, kind in kinds.items():
        if kind == "off":
            out[cap] = _Off()
    return out


def build_gpus(cfg: Config, *, clock: Callable[[], float]) -> list[Gpu]:
    local = _local_backends(cfg)
    remote_caps = [c for c in CAPABILITIES if getattr(cfg.backends, c) == "remote"]
    rc = cfg.backends.remote

    def breaker() -> CircuitBreaker:
        return CircuitBreaker(failure_threshold=rc.failure_threshold, cooldown_s=rc.cooldown_s, clock=clock)

    if not remote_caps:
        b = Backends(**{c: local[c] for c in CAPABILITIES})
        return [Gpu("cpu", max(1, cfg.backends.cpu.cpu_threads), b, breaker())]

    import httpx

    from cofid.backends.remote import RemoteOptions, make_remote_backends
    from cofid.backends.remote_audio import RemoteDenoise, RemoteIvr

    options = RemoteOptions(
        timeout_s=rc.timeout_s, connect_timeout_s=rc.connect_timeout_s, stt_model=rc.stt_model,
        chat_model=rc.chat_model, lid_seconds=rc.lid_seconds, stt_options=cfg.backends.stt_options,
        no_speech_threshold=rc.no_speech_threshold, logprob_threshold=rc.logprob_threshold,
    )
    gpus = []
    for g in cfg.gpus:
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(rc.timeout_s, connect=rc.connect_timeout_s),
            limits=httpx.Limits(max_connections=g.slots * 2 + 2),
        )
        opts = options if not g.api_key else _with_key(options, g.api_key)
        per_cap = {
            # cofi's own contract (docs/gpu-audio-contract.md), on the GPU's main url
            "denoise": RemoteDenoise(g.url, client, opts),
            "ivr": RemoteIvr(g.url, client, opts, max_ivr_s=cfg.backends.cpu.max_ivr_s),
            "lid": make_remote_backends(g.lid_url or g.url, client, opts)["lid"],
            "stt": make_remote_backends(g.stt_url or g.url, client, opts)["stt"],
            "chat": make_remote_backends(g.chat_url or g.url, client, opts)["chat"],
        }
        caps = {c: (per_cap[c] if c in remote_caps and c in per_cap else local.get(c)) for c in CAPABILITIES}
        backends = _ClosingBackends(client=client, **caps)
        gpus.append(Gpu(g.name, g.slots, backends, breaker()))
    return gpus


def _with_key(options, key: str):
    import dataclasses

    return dataclasses.replace(options, api_key=key)


class _ClosingBackends(Backends):
    """Backends that own an HTTP client, closed with them."""

    def __init__(self, *, client, **caps) -> None:
        super().__init__(**caps)
        self._client = client

    async def aclose(self) -> None:
        await self._client.aclose()
