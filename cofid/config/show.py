"""Showing the configuration (`cofid check-config`) and reading secrets from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from cofid.config.model import Config, ConfigError, TokenConfig

SECRET_KEYS = ("token", "api_key", "password")


def effective_config(cfg: Config) -> dict[str, Any]:
    """The configuration as plain data with secrets masked, derived paths filled in."""

    def conv(obj: Any, key: str = "") -> Any:
        if dataclasses.is_dataclass(obj):
            return {f.name: conv(getattr(obj, f.name), f.name) for f in dataclasses.fields(obj)}
        if isinstance(obj, tuple | list):
            return [conv(v, key) for v in obj]
        if isinstance(obj, dict):
            return {k: conv(v, k) for k, v in obj.items()}
        if key in SECRET_KEYS and isinstance(obj, str) and obj:
            return "****"
        return obj

    out = conv(cfg)
    out["database"]["url"] = mask_url(cfg.database_url)
    out["paths"] = {
        "data": str(cfg.data_dir),
        "uploads": str(cfg.uploads_dir),
        "work": str(cfg.work_dir),
    }
    out["grpc"]["listen"] = list(cfg.listen_addresses)
    if not cfg.audit.question_sets:
        out["audit"]["question_sets"] = [conv(q) for q in cfg.all_question_sets()]
    return out


def mask_url(url: str) -> str:
    """Hide the password of a database URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user, _, _pw = creds.partition(":")
    return f"{scheme}://{user}:****@{host}" if _pw else url


def token_value(t: TokenConfig) -> str:
    if t.token:
        return t.token
    try:
        return Path(t.token_file).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(f"grpc.tokens '{t.name}': cannot read token_file {t.token_file}: {e.strerror}") from None
