"""Loading cofid.toml: parse, build the typed Config, validate across fields.

Every bad value fails with a ConfigError naming the key, the value and what is allowed.
Unknown keys are errors too (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from cofid.config.dialects import DialectError, dialect_names, resolve_dialect
from cofid.config.model import AuditConfig, Config, ConfigError, GpuConfig
from cofid.domain.questions import question_set_from_mapping

ROLES = ("viewer", "operator")
CHOICES: dict[str, tuple[str, ...]] = {
    "backends.denoise": ("cpu", "remote", "fake", "off"),
    "backends.ivr": ("cpu", "remote", "fake", "off"),
    "backends.lid": ("cpu", "remote", "fake"),
    "backends.stt": ("cpu", "remote", "fake"),
    "backends.chat": ("rules", "remote", "fake"),
    "service.log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
}
LANGUAGES = ("en", "hi", "hinglish", "other")


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load `path`, or the embedded default when path is None."""
    if path is None:
        return validate(Config())
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such configuration file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    return parse_config(raw, source=str(p))


def parse_config(raw: dict[str, Any], *, source: str = "<string>") -> Config:
    """Build a Config from parsed TOML. Relative paths are relative to the working
    directory (the systemd unit sets WorkingDirectory and the example uses absolute ones)."""
    raw = dict(raw)
    question_sets = _parse_question_sets(raw.pop("audit", {}) or {})
    cfg = _build(Config, raw, "")
    return validate(dataclasses.replace(cfg, audit=question_sets, source=source))


def _parse_question_sets(audit_raw: Any) -> AuditConfig:
    if not isinstance(audit_raw, dict):
        raise ConfigError(f"audit: expected a table, got {audit_raw!r}")
    audit_raw = dict(audit_raw)
    sets_raw = audit_raw.pop("question_sets", [])
    if not isinstance(sets_raw, list):
        raise ConfigError(f"audit.question_sets: expected an array of tables, got {sets_raw!r}")
    sets = []
    for i, s in enumerate(sets_raw):
        try:
            sets.append(question_set_from_mapping(s, f"audit.question_sets[{i}]"))
        except ValueError as e:
            raise ConfigError(str(e)) from None
    base = _build(AuditConfig, audit_raw, "audit.")
    return dataclasses.replace(base, question_sets=tuple(sets))


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'top level'}: expected a table, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        allowed = ", ".join(sorted(fields))
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key (allowed here: {allowed})")
    kwargs = {}
    for name, value in raw.items():
        kwargs[name] = _coerce(hints[name], value, f"{prefix}{name}")
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{prefix}{missing[0]}: required key is missing")
    return cls(**kwargs)


def _type_name(tp: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".")
    if origin is tuple:
        (item_tp, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected an array, got {value!r}")
        return tuple(_coerce(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {value!r}")
        return {k: _coerce(val_tp, v, f"{key}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        # Only `T | None` (an option a dialect fills in when unset); TOML has no null.
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise ConfigError(f"{key}: unsupported type")
        return _coerce(args[0], value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: cannot read a value of type {_type_name(tp)}")


def _check(cond: bool, key: str, value: Any, allowed: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {value!r} is not allowed ({allowed})")


def _validate_gpu_dialects(g: GpuConfig, key: str) -> None:
    """Dialect names and options of one [[gpus]] entry, and its per-URL slots."""
    for name_key, options_key in (("dialect", "options"), ("chat_dialect", "chat_options")):
        name = getattr(g, name_key)
        if name_key == "chat_dialect" and not name:
            name = g.dialect
        _check(name in dialect_names(), f"{key}.{name_key}", name, "one of " + ", ".join(dialect_names()))
        try:
            resolve_dialect(name, dataclasses.asdict(getattr(g, options_key)))
        except DialectError as e:
            raise ConfigError(f"{key}.{options_key}: {e}") from None
    for cap in ("lid", "stt", "chat"):
        slots = getattr(g, f"{cap}_slots")
        _check(0 <= slots <= 64, f"{key}.{cap}_slots", slots, "an integer from 0 (= slots) to 64")
        _check(slots == 0 or bool(getattr(g, f"{cap}_url")), f"{key}.{cap}_slots", slots,
               f"0 unless {cap}_url names a separate server")


def validate(cfg: Config) -> Config:
    """Cross-field and range checks the types cannot express."""
    _check(cfg.database.pool_size >= 1, "database.pool_size", cfg.database.pool_size, "an integer ≥ 1")
    url = cfg.database.url
    _check(
        url == "" or url.startswith(("sqlite://", "mysql+pymysql://")),
        "database.url",
        url,
        "empty for the embedded SQLite, sqlite:///PATH or mysql+pymysql://…",
    )
    for i, addr in enumerate(cfg.grpc.listen):
        ok = addr.startswith("unix:") or (addr.rpartition(":")[2].isdigit() and ":" in addr)
        _check(ok, f"grpc.listen[{i}]", addr, "unix:PATH or HOST:PORT")
    names = set()
    for i, t in enumerate(cfg.grpc.tokens):
        _check(t.role in ROLES, f"grpc.tokens[{i}].role", t.role, "viewer or operator")
        _check(bool(t.token) != bool(t.token_file), f"grpc.tokens[{i}]", t.name,
               "exactly one of token and token_file")
        _check(t.name not in names, f"grpc.tokens[{i}].name", t.name, "names must be unique")
        names.add(t.name)
    for key in ("max_workers", "max_concurrent_rpcs", "max_upload_bytes", "max_upload_files",
                "max_file_bytes", "subscriber_buffer", "max_concurrent_uploads",
                "max_event_streams", "max_public_streams"):
        v = getattr(cfg.grpc, key)
        _check(v >= 1, f"grpc.{key}", v, "an integer ≥ 1")
    _check(0 <= cfg.grpc.reserved_workers < cfg.grpc.max_workers, "grpc.reserved_workers",
           cfg.grpc.reserved_workers, "0 (automatic) or fewer than grpc.max_workers")
    for key in ("upload_idle_timeout_s", "upload_deadline_s"):
        v = getattr(cfg.grpc, key)
        _check(v > 0, f"grpc.{key}", v, "a number of seconds > 0")
    gpu_names = set()
    for i, g in enumerate(cfg.gpus):
        _check(bool(g.name), f"gpus[{i}].name", g.name, "a non-empty name")
        _check(g.name not in gpu_names, f"gpus[{i}].name", g.name, "GPU names must be unique")
        gpu_names.add(g.name)
        _check(g.url.startswith(("http://", "https://")), f"gpus[{i}].url", g.url,
               "an http:// or https:// base URL")
        for k in ("lid_url", "stt_url", "chat_url"):
            u = getattr(g, k)
            _check(u == "" or u.startswith(("http://", "https://")), f"gpus[{i}].{k}", u,
                   "empty or an http(s):// base URL")
        _check(1 <= g.slots <= 64, f"gpus[{i}].slots", g.slots, "an integer from 1 to 64")
        _validate_gpu_dialects(g, f"gpus[{i}]")
    st = cfg.stages
    _check(st.min_duration_s >= 0, "stages.min_duration_s", st.min_duration_s, "a number ≥ 0")
    for i, lang in enumerate(st.allowed_languages):
        _check(lang in LANGUAGES, f"stages.allowed_languages[{i}]", lang, ", ".join(LANGUAGES))
    _check(st.retry.attempts >= 1, "stages.retry.attempts", st.retry.attempts, "an integer ≥ 1")
    _check(st.retry.backoff_s >= 0, "stages.retry.backoff_s", st.retry.backoff_s, "a number ≥ 0")
    _check(st.retry.max_backoff_s >= st.retry.backoff_s, "stages.retry.max_backoff_s",
           st.retry.max_backoff_s, "a number ≥ stages.retry.backoff_s")
    for k in ("margin_before_s", "margin_after_s", "assumed_duration_s"):
        v = getattr(st.triaging, k)
        _check(v >= 0, f"stages.triaging.{k}", v, "a number ≥ 0")
    try:
        st.verdicts.rules()
    except ValueError as e:  # VerdictRules names the knob; say where it is set
        raise ConfigError(f"stages.verdicts: {e}") from None
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(st.default_zone)
    except Exception:
        _check(False, "stages.default_zone", st.default_zone, "an IANA zone name such as Asia/Kolkata")
    _check(st.progress_every_files >= 1, "stages.progress_every_files", st.progress_every_files,
           "an integer ≥ 1")
    for cap, allowed in CHOICES.items():
        section, _, name = cap.partition(".")
        v = getattr(getattr(cfg, section), name)
        _check(v in allowed, cap, v, "one of " + ", ".join(allowed))
    rc = cfg.backends.remote
    _check(0.0 <= rc.lid_min_confidence <= 1.0, "backends.remote.lid_min_confidence",
           rc.lid_min_confidence, "a number within 0..1")
    _check(rc.compression_ratio_threshold > 0, "backends.remote.compression_ratio_threshold",
           rc.compression_ratio_threshold, "a number > 0 (Whisper's is 2.4)")
    _check(rc.probe_timeout_s > 0, "backends.remote.probe_timeout_s", rc.probe_timeout_s,
           "a number > 0")
    for key in ("max_reply_bytes", "max_audio_reply_bytes"):
        _check(getattr(rc, key) >= 1024, f"backends.remote.{key}", getattr(rc, key),
               "a number of bytes >= 1024")
    remote_caps = [c for c in ("denoise", "ivr", "lid", "stt", "chat")
                   if getattr(cfg.backends, c) == "remote"]
    if remote_caps and not cfg.gpus:
        raise ConfigError(
            f"backends.{remote_caps[0]}: 'remote' needs at least one [[gpus]] entry with a url"
        )
    for lang, opts in cfg.backends.stt_options.items():
        _check(lang in LANGUAGES, f"backends.stt_options.{lang}", lang, ", ".join(LANGUAGES))
        for k in opts:
            _check(k in ("language", "prompt"), f"backends.stt_options.{lang}.{k}", k,
                   "language or prompt")
    _check(cfg.watch.quiet_seconds >= 0, "watch.quiet_seconds", cfg.watch.quiet_seconds, "a number ≥ 0")
    _check(bool(cfg.watch.marker) and "/" not in cfg.watch.marker, "watch.marker",
           cfg.watch.marker, "a plain file name")
    seen: set[tuple[int, int]] = set()
    for i, qs in enumerate(cfg.audit.question_sets):
        pair = (qs.process_id, qs.category_mapping_id)
        _check(pair not in seen, f"audit.question_sets[{i}]", pair,
               "one question set per (process_id, category_mapping_id)")
        seen.add(pair)
    if cfg.audit.question_sets:
        _check(
            cfg.question_set(cfg.audit.default_process_id, cfg.audit.default_category_mapping_id)
            is not None,
            "audit.default_process_id",
            (cfg.audit.default_process_id, cfg.audit.default_category_mapping_id),
            "a (process_id, category_mapping_id) that has a question set",
        )
    if cfg.audit.prompts:
        from cofid.domain.prompts import validate_templates

        try:
            validate_templates(cfg.audit.prompts, "audit.prompts")
        except ValueError as e:
            raise ConfigError(str(e)) from None
    _check(cfg.service.shutdown_deadline_s >= 0, "service.shutdown_deadline_s",
           cfg.service.shutdown_deadline_s, "a number ≥ 0")
    return cfg
