"""The configuration's shape: one frozen dataclass per TOML table, defaults included.

`Config()` is the embedded default (SQLite in the data directory, CPU backends, the
default audit question set); derived values (paths, the database URL, listeners) are
properties, so there is one place that resolves them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
