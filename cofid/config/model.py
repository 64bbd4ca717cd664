"""The configuration's shape: one frozen dataclass per TOML table, defaults included.

`Config()` is the embedded default (SQLite in the data directory, CPU backends, the
default audit question set); derived values (paths, the database URL, listeners) are
properties, so there is one place that resolves them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cofid.config.stage_rules import TriagingConfig, VerdictConfig
from cofid.domain.questions import QuestionSet, default_question_set

DEFAULT_DATA_DIR = Path("var")


__all__ = [
    "AuditConfig",
    "BackendsConfig",
    "BatchPipelineConfig",
    "Config",
    "ConfigError",
    "CpuBackendConfig",
    "DEFAULT_DATA_DIR",
    "DatabaseConfig",
    "DialectOptionsConfig",
    "GpuConfig",
    "GrpcConfig",
    "PathsConfig",
    "PipelinesConfig",
    "RemoteBackendConfig",
    "RetryConfig",
    "ServiceConfig",
    "StagesConfig",
    "TlsConfig",
    "TokenConfig",
    "TriagingConfig",
    "UploadPipelineConfig",
    "VerdictConfig",
    "WatchConfig",
]


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
    # daemon gives up and exits non-zero (systemd restarts it). A full disk under the
    # database is waited out with no limit (cofid.store.disk_full).
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
    # Streams hold a pool thread each (cofid.api.admission): caps per kind, a whole-upload
    # deadline, and pool threads no stream may take (0: max(4, max_workers // 4)).
    upload_deadline_s: float = 3600.0
    max_concurrent_uploads: int = 16
    max_event_streams: int = 32
    max_public_streams: int = 4
    reserved_workers: int = 0
    subscriber_buffer: int = 10_000
    heartbeat_s: float = 5.0


@dataclass(frozen=True)
class DialectOptionsConfig:
    """Overrides of a dialect's options (cofid.backends.dialects.Dialect, which documents
    each); a key left out keeps the dialect's value."""

    transcriptions_path: str | None = None
    model_fields: tuple[str, ...] | None = None
    lid_language: str | None = None
    send_temperature: bool | None = None
    temperatures: tuple[float, ...] | None = None
    temperature_inc: float | None = None
    response_format: str | None = None
    max_tokens: int | None = None
    chat_temperature: float | None = None
    health_path: str | None = None
    models_path: str | None = None
    model_listed: bool | None = None
    model: str | None = None


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
    # The server software behind the URLs (cofid.backends.dialects; README "Model
    # servers"): `dialect` for url / lid_url / stt_url, `chat_dialect` for chat_url (empty:
    # `dialect`). `options` / `chat_options` override single options of those dialects.
    dialect: str = "openai"
    chat_dialect: str = ""
    options: DialectOptionsConfig = field(default_factory=DialectOptionsConfig)
    chat_options: DialectOptionsConfig = field(default_factory=DialectOptionsConfig)
    # Slots of a separate lid_url / stt_url / chat_url server (0: `slots`); `slots` is
    # the slots of `url`'s server.
    lid_slots: int = 0
    stt_slots: int = 0
    chat_slots: int = 0


@dataclass(frozen=True)
class RetryConfig:
    attempts: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0


@dataclass(frozen=True)
class StagesConfig:
    min_duration_s: float = 5.0
    allowed_languages: tuple[str, ...] = ("en", "hi", "hinglish")
    retry: RetryConfig = field(default_factory=RetryConfig)
    triaging: TriagingConfig = field(default_factory=TriagingConfig)
    verdicts: VerdictConfig = field(default_factory=VerdictConfig)
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
    whisper_model: str = "base"  # or "small" (refused: README), or a model directory
    model_cache: str = ""  # empty: <paths.data>/models
    cpu_threads: int = 2
    lid_seconds: float = 30.0
    # LID abstention (cofid.backends.cpu.whisper_lid steps 2-5; bench/lid.py, README): 88
    # clips, base, AMD EPYC: 56/56 unsupported other, 16/16 en en. A non-en/hi guess at p >=
    # lid_confident_p with p_en < lid_weak_en_p is other (fr/de/es/it 0.5-0.98).
    lid_confident_p: float = 0.5
    # English-like from here (unsupported clips <= 0.18, en / Hinglish above the weak zone
    # >= 0.26: midpoint); fluent decode >= lid_min_en_logprob is en, else hinglish (English
    # -0.22..-0.82, Hinglish -0.92..-1.40; -0.83 on an Intel Xeon: the bar favours en).
    lid_min_en_p: float = 0.22
    lid_min_en_logprob: float = -0.87
    lid_min_hi_p: float = 0.3  # hi + ur: espeak-ng Hindi <= 0.10, Kannada 0.08: 0/8 pass
    # Weak zone (lid_weak_en_p <= p_en < lid_min_en_p): en only if the decode is >= this,
    # else other (Caribbean English -0.38..-0.61, all 12 others there <= -0.76).
    lid_weak_en_p: float = 0.1
    lid_weak_en_logprob: float = -0.69
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
    # LID on servers without language probabilities: the decode score below which a call
    # is "other" (cofid.backends.remote, "LID confidence").
    lid_min_confidence: float = 0.3
    # Whisper's repetition-loop line: segments above it are dropped (cofid.domain.segments).
    compression_ratio_threshold: float = 2.4
    # The most bytes read of one model reply (JSON), and of one denoised audio file: a
    # larger reply is refused as the model's error (cofid.backends.remote_http).
    max_reply_bytes: int = 16 * 1024 * 1024
    max_audio_reply_bytes: int = 1024 * 1024 * 1024
    # Check every configured URL and model when the daemon starts (cofid.backends.probe).
    probe_at_start: bool = True
    probe_timeout_s: float = 10.0


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
