"""What a simulated GPU host is told at start (`SimConfig`, the manifest) and the one face
its endpoint handlers see of it (`JobRunner`): the handlers never import the worker, so the
package has no import circle."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cofid.simworker.http_server import Response


@dataclass(frozen=True)
class Latency:
    fixed_s: float
    per_audio_s: float = 0.0

    def seconds(self, audio_s: float, time_scale: float) -> float:
        return (self.fixed_s + self.per_audio_s * audio_s) * time_scale


def default_latency() -> dict[str, Latency]:
    return {
        "lid": Latency(0.2),
        "stt": Latency(0.3, 0.03),
        "chat": Latency(1.5),
        "denoise": Latency(0.2, 0.01),
        "ivr": Latency(0.1, 0.002),
    }


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 0
    time_scale: float = 1.0
    fail_rate: float = 0.0
    hang_rate: float = 0.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    slots: int | None = None  # None: no cap
    manifest: Mapping[str, Mapping[str, Any]] | None = None
    latency: Mapping[str, Latency] = field(default_factory=default_latency)


def load_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """Read and check a manifest: {audio name: {"language", "text" | "segments"}}."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a manifest is a JSON object of audio name -> entry")
    for name, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("language"), str):
            raise ValueError(f"{path}: entry {name!r} needs a string 'language'")
        if not isinstance(entry.get("text"), str) and not isinstance(entry.get("segments"), list):
            raise ValueError(f"{path}: entry {name!r} needs 'text' or 'segments'")
    return data


class JobRunner(Protocol):
    """What an endpoint handler needs of the worker (`cofid.simworker.server.SimWorker`)."""

    config: SimConfig

    async def run_job(
        self, endpoint: str, audio_s: float
    ) -> tuple[str | None, Response | None]: ...
