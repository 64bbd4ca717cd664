"""cofid.toml: typed, validated at load, with an embedded default.

No file at all gives the embedded default: SQLite in the data directory, CPU backends,
the default audit question set. Every bad value fails with a ConfigError naming the key,
the value and what is allowed. Unknown keys are errors too (a typo must not silently
fall back to a default).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cofid.domain.questions import QuestionSet, default_question_set, question_set_from_mapping

DEFAULT_DATA_DIR = Path("var")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and what is allowed."""


@dataclass(frozen=True)
class DatabaseConfig:
    # Empty means SQLite at <paths.data>/cofi.db. MySQL/MariaDB:
    # "mysql+pymysql://user:password@host/db" or "...?unix_socket=/run/mysqld/mysqld.sock".
    url: str = ""
    pool_size: int = 5
    connect_timeout_s: float = 10.0
    # How long a write waits and retries while the database is unreachable before the
    # daemon gives up and exits non-zero (systemd restarts it).
    unavailable_retry_s: float = 300.0


@dataclass(frozen=True)
class TokenConfig:
    name: str
    role: str  # "viewer" | "operator"
    token: str = ""
    token_file: str = ""


@dataclass(frozen=True)
class TlsConfig:
    cert_file: str = ""
    key_file: str = ""
    # Refuse to listen on a non-loopback TCP address without TLS.
    require_for_remote: bool = True


@dataclass(frozen=True)
class GrpcConfig:
    # "unix:PATH" or "HOST:PORT". Empty means unix:<paths.data>/cofid.sock + 127.0.0.1:50051.
    listen: tuple[str, ...] = ()
    auth: bool = True
    tokens: tuple[TokenConfig, ...] = ()
    tls: TlsConfig = field(default_factory=TlsConfig)
    max_workers: int = 64
    max_concurrent_rpcs: int = 256
    max_upload_bytes: int = 2 * 1024**3
    max_upload_files: int = 1000
    max_file_bytes: int = 512 * 1024**2
    upload_idle_timeout_s: float = 60.0
    subscriber_buffer: int = 10_000
    heartbeat_s: float = 5.0


@dataclass(frozen=True)
class GpuConfig:
    name: str
    url: str
    slots: int = 2
    # Per-capability overrides of `url` (e.g. STT on one server, the LLM on another).
    lid_url: str = ""
    stt_url: str = ""
    chat_url: str = ""
    api_key: str = ""


@dataclass(frozen=True)
class RetryConfig:
    attempts: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0


@dataclass(frozen=True)
class TriagingConfig:
    margin_before_s: float = 300.0
    margin_after_s: float = 900.0
    assumed_duration_s: float = 600.0


@dataclass(frozen=True)
class StagesConfig:
    min_duration_s: float = 5.0
    allowed_languages: tuple[str, ...] = ("en", "hi", "hinglish")
    retry: RetryConfig = field(default_factory=RetryConfig)
    triaging: TriagingConfig = field(default_factory=TriagingConfig)
    # Zone of CSV times written without one (an IANA name).
    default_zone: str = "UTC"
    # Emit file_start events (with the request payload). Off halves the event rows of a
    # 10,000-file batch; file_complete events always carry payload and response.
    file_start_events: bool = True
    progress_every_files: int = 50
    progress_every_s: float = 2.0


@dataclass(frozen=True)
class BatchPipelineConfig:
    denoise: bool = False
    ivr: bool = True
    callmetadata: bool = True
    trademetadata: bool = True
    triaging: bool = True
    llm1: bool = True
    llm2: bool = True


@dataclass(frozen=True)
class UploadPipelineConfig:
    llm1: bool = True
    llm2: bool = True


@dataclass(frozen=True)
class PipelinesConfig:
    batch: BatchPipelineConfig = field(default_factory=BatchPipelineConfig)
    upload: UploadPipelineConfig = field(default_factory=UploadPipelineConfig)


@dataclass(frozen=True)
class CpuBackendConfig:
    whisper_model: str = "base"
    model_cache: str = ""  # empty: <paths.data>/models
    cpu_threads: int = 2
    lid_seconds: float = 30.0
    denoise_strength: float = 0.5
    ivr_prompts_dir: str = ""
    max_ivr_s: float = 120.0


@dataclass(frozen=True)
class RemoteBackendConfig:
    timeout_s: float = 120.0
    connect_timeout_s: float = 5.0
    stt_model: str = "whisper-1"
    chat_model: str = "default"
    lid_seconds: float = 30.0
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    failure_threshold: int = 5
    cooldown_s: float = 30.0


@dataclass(frozen=True)
class BackendsConfig:
    # Which backend serves each capability: "cpu" (in-process engines), "remote" (the GPU
    # hosts in [[gpus]]), "rules" (chat only: the deterministic rule engine), "fake"
    # (deterministic instant answers, for tests and benchmarks).
    denoise: str = "cpu"
    ivr: str = "cpu"
    lid: str = "cpu"
    stt: str = "cpu"
    chat: str = "rules"
    cpu: CpuBackendConfig = field(default_factory=CpuBackendConfig)
    remote: RemoteBackendConfig = field(default_factory=RemoteBackendConfig)
    # Per-language STT options: {"hi": {"language": "hi", "prompt": "..."}}.
    stt_options: dict[str, dict[str, str]] = field(default_factory=dict)
    # Seconds each "fake" backend call takes (tests and benchmarks).
    fake_latency_s: float = 0.0


@dataclass(frozen=True)
class WatchConfig:
    roots: tuple[str, ...] = ()
    marker: str = ".ready"
    # When > 0, a directory without a marker is ready once nothing in it changed for this long.
    quiet_seconds: float = 0.0
    scan_interval_s: float = 10.0


@dataclass(frozen=True)
class PathsConfig:
    data: str = str(DEFAULT_DATA_DIR)
    uploads: str = ""  # empty: <data>/uploads
    work: str = ""  # empty: <data>/work


@dataclass(frozen=True)
class AuditConfig:
    default_process_id: int = 1
    default_category_mapping_id: int = 1
    question_sets: tuple[QuestionSet, ...] = ()
    prompts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceConfig:
    shutdown_deadline_s: float = 30.0
    log_level: str = "INFO"


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    grpc: GrpcConfig = field(default_factory=GrpcConfig)
    gpus: tuple[GpuConfig, ...] = ()
    stages: StagesConfig = field(default_factory=StagesConfig)
    pipelines: PipelinesConfig = field(default_factory=PipelinesConfig)
    backends: BackendsConfig = field(default_factory=BackendsConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    source: str = "<embedded default>"

    # Derived values, resolved against the data directory.
    @property
    def data_dir(self) -> Path:
        return Path(self.paths.data)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'cofi.db'}"

    @property
    def uploads_dir(self) -> Path:
        return Path(self.paths.uploads) if self.paths.uploads else self.data_dir / "uploads"

    @property
    def work_dir(self) -> Path:
        return Path(self.paths.work) if self.paths.work else self.data_dir / "work"

    @property
    def model_cache_dir(self) -> Path:
        c = self.backends.cpu.model_cache
        return Path(c) if c else self.data_dir / "models"

    @property
    def listen_addresses(self) -> tuple[str, ...]:
        if self.grpc.listen:
            return self.grpc.listen
        return (f"unix:{self.data_dir / 'cofid.sock'}", "127.0.0.1:50051")

    def question_set(self, process_id: int, category_mapping_id: int) -> QuestionSet | None:
        for qs in self.all_question_sets():
            if (qs.process_id, qs.category_mapping_id) == (process_id, category_mapping_id):
                return qs
        return None

    def all_question_sets(self) -> tuple[QuestionSet, ...]:
        if self.audit.question_sets:
            return self.audit.question_sets
        return (
            default_question_set(
                self.audit.default_process_id, self.audit.default_category_mapping_id
            ),
        )


# ---- loading ------------------------------------------------------------------------

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
    if dataclasses.is_dataclass(tp):
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
        raise ConfigError(f"{key}: unsupported type")  # not used in the config types
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
                "max_file_bytes", "subscriber_buffer"):
        v = getattr(cfg.grpc, key)
        _check(v >= 1, f"grpc.{key}", v, "an integer ≥ 1")
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
    seen = set()
    for i, qs in enumerate(cfg.audit.question_sets):
        k = (qs.process_id, qs.category_mapping_id)
        _check(k not in seen, f"audit.question_sets[{i}]", k,
               "one question set per (process_id, category_mapping_id)")
        seen.add(k)
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


# ---- showing ------------------------------------------------------------------------

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
