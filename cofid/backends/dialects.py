"""Request shapes of a server's dialect (the presets: cofid.config.dialects)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cofid.config.dialects import (
    ALIASES,
    DEFAULT_MAX_TOKENS,
    DIALECTS,
    OPTION_NAMES,
    RESPONSE_FORMATS,
    Dialect,
    DialectError,
    check_dialect,
    dialect_names,
    resolve_dialect,
)

__all__ = ["ALIASES", "DEFAULT_MAX_TOKENS", "DIALECTS", "OPTION_NAMES", "RESPONSE_FORMATS",
           "Dialect", "DialectError", "check_dialect", "dialect_names", "resolve_dialect",
           "response_format", "transcription_form"]


def response_format(d: Dialect, name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The response_format that asks this server for JSON matching `schema`."""
    if d.response_format == "json_object_schema":
        return {"type": "json_object", "schema": dict(schema)}
    return {"type": "json_schema", "json_schema": {"name": name, "schema": dict(schema), "strict": True}}


def transcription_form(d: Dialect, model: str, temperature: float) -> dict[str, str]:
    """The multipart fields every transcription request of this dialect carries."""
    form = {field: model for field in d.model_fields}
    form["response_format"] = "verbose_json"
    if d.send_temperature:
        form["temperature"] = str(temperature)
        if d.temperature_inc is not None:
            form["temperature_inc"] = str(d.temperature_inc)
    return form
