"""Per-server dialects of the OpenAI-compatible protocols cofi speaks (configuration presets).

The servers sites run all say "OpenAI-compatible" and differ in the details that decide
whether a request works. Each `Dialect` writes those details down; `[[gpus]]` entries name
one per URL (`dialect`, `chat_dialect`, ...) and may override any option
(`[gpus.options]`, `[gpus.chat_options]`). What was checked against each server's source
(see README "Model servers"):

- openai: the reference shape (also cofi-simworker): `model` form field, verbose_json,
  `json_schema` response_format, `/v1/models`.
- vllm: OpenAI's shape; errors `{"error": {...}}` (older: `{"object": "error", "message"}`);
  transcription scores are placeholders (no LID probabilities); the served model must be
  named exactly, so the probe checks it is listed. `/health`.
- speaches: faster-whisper behind `model` (a Hugging Face id, `whisper-1` maps to its
  default); one temperature per request, so cofi does the fallback (`temperatures`).
- faster-whisper-server (0.0.x, speaches' predecessor): as speaches, but some releases
  read the model from `model_name`: both fields are sent. Errors come as
  `{"detail": {"error": {...}}}`; it serves one request at a time (use slots = 1).
  0.0.3 serves `/health` and no `/v1/models` (HTTP 404), so the probe asks `/health` only.
- whisper.cpp: `whisper-server` answers on `/inference` unless started with
  `--inference-path`; no model field; its language defaults to "en", so LID must send
  `language=auto`; it falls back on temperature itself (`temperature_inc`); errors
  `{"error": "text"}`; `/health`, no `/v1/models`.
- llama.cpp (llama-server): `{"type": "json_object", "schema": {...}}` is the one
  schema shape every release accepts (json_schema only since late 2024); errors
  `{"error": {"code", "message", "type"}}`; `/health` is 503 while loading.
- llama-cpp-python: refuses `json_schema` with HTTP 500 ("Input should be 'text' or
  'json_object'"): json_object + schema; errors `{"error": {...}}`, most as HTTP 500.
- ollama: OpenAI's `json_schema`; the model name must be listed; `/api/version` is up.

Every dialect sends `max_tokens`: a model that loops inside its grammar otherwise runs
until the context is full (482 s on llama-server, issue 20).

The presets live with the configuration (config/load.py checks names and options at load);
the request shapes they lead to are built in cofid.backends.dialects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RESPONSE_FORMATS = ("json_schema", "json_object_schema")
DEFAULT_MAX_TOKENS = 2048


@dataclass(frozen=True)
class Dialect:
    """How one server is spoken to. Speech options apply to LID/STT URLs, chat options to
    chat URLs, probe options to both."""

    name: str = "openai"
    # -- speech (POST multipart to transcriptions_path) ----------------------------------
    transcriptions_path: str = "/v1/audio/transcriptions"
    model_fields: tuple[str, ...] = ("model",)  # form fields that carry the STT model
    lid_language: str = ""  # `language` sent with LID requests ("" sends none)
    send_temperature: bool = True
    # The first is sent; when its transcript has a repetition loop (compression ratio over
    # 2.4) the request is repeated with the next one, as Whisper's own fallback does.
    temperatures: tuple[float, ...] = (0.0,)
    temperature_inc: float | None = None  # whisper.cpp's server-side fallback step
    # -- chat (POST JSON to /v1/chat/completions) ----------------------------------------
    response_format: str = "json_schema"  # or "json_object_schema"
    max_tokens: int = DEFAULT_MAX_TOKENS
    chat_temperature: float | None = 0.0  # None: not sent (the server's default applies)
    # -- probe ---------------------------------------------------------------------------
    health_path: str = ""  # "" when the server has none
    models_path: str = "/v1/models"
    model_listed: bool = False  # the configured model must appear in models_path's list
    # The server answers any model name with the one model it serves (llama-server, and
    # llama-cpp-python's LlamaProxy, which falls back to its default alias): a name not
    # listed is no finding while the list has exactly one model.
    any_model_name: bool = False
    # -- model names (empty: backends.remote.stt_model / chat_model) ---------------------
    model: str = ""


_FASTER_WHISPER_LADDER = (0.0, 0.4, 0.8)

DIALECTS: Mapping[str, Dialect] = {
    d.name: d
    for d in (
        Dialect(name="openai"),
        Dialect(name="vllm", health_path="/health", model_listed=True),
        Dialect(name="speaches", health_path="/health", temperatures=_FASTER_WHISPER_LADDER),
        Dialect(
            name="faster-whisper-server",
            model_fields=("model", "model_name"),
            health_path="/health",
            models_path="",
            temperatures=_FASTER_WHISPER_LADDER,
        ),
        Dialect(
            name="whisper.cpp",
            transcriptions_path="/inference",
            model_fields=(),
            lid_language="auto",
            temperature_inc=0.2,
            health_path="/health",
            models_path="",
        ),
        Dialect(
            name="llama.cpp",
            response_format="json_object_schema",
            health_path="/health",
            any_model_name=True,
        ),
        Dialect(
            name="llama-cpp-python", response_format="json_object_schema", any_model_name=True
        ),
        Dialect(name="ollama", health_path="/api/version", model_listed=True),
    )
}
ALIASES: Mapping[str, str] = {
    "llama-server": "llama.cpp",
    "whisper-server": "whisper.cpp",
    "cofi-simworker": "openai",
}
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Dialect) if f.name != "name")


class DialectError(ValueError):
    """An unknown dialect name or an option value a dialect cannot take."""


def dialect_names() -> tuple[str, ...]:
    return tuple(DIALECTS) + tuple(ALIASES)


def resolve_dialect(name: str, overrides: Mapping[str, Any] | None = None) -> Dialect:
    """The named dialect ("" is openai) with `overrides` applied; None values are skipped."""
    key = ALIASES.get(name or "openai", name or "openai")
    if key not in DIALECTS:
        raise DialectError(f"unknown dialect {name!r} (known: {', '.join(dialect_names())})")
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(changes) - set(OPTION_NAMES))
    if unknown:
        raise DialectError(f"unknown dialect option {unknown[0]!r} (known: {', '.join(OPTION_NAMES)})")
    for k in ("model_fields", "temperatures"):
        if k in changes:
            changes[k] = tuple(changes[k])
    dialect = dataclasses.replace(DIALECTS[key], **changes)
    check_dialect(dialect)
    return dialect


def check_dialect(d: Dialect) -> None:
    """Refuse option values no server could be spoken to with."""
    if d.response_format not in RESPONSE_FORMATS:
        raise DialectError(
            f"response_format {d.response_format!r} is not one of {', '.join(RESPONSE_FORMATS)}"
        )
    if d.max_tokens < 1:
        raise DialectError(f"max_tokens must be at least 1, got {d.max_tokens}")
    if not d.temperatures or any(not 0.0 <= t <= 1.0 for t in d.temperatures):
        raise DialectError(f"temperatures must be 1+ values within 0..1, got {list(d.temperatures)}")
    if d.chat_temperature is not None and not 0.0 <= d.chat_temperature <= 2.0:
        raise DialectError(f"chat_temperature must be within 0..2, got {d.chat_temperature}")
    for key in ("transcriptions_path", "health_path", "models_path"):
        path = getattr(d, key)
        if path and not path.startswith("/"):
            raise DialectError(f"{key} must start with '/', got {path!r}")
