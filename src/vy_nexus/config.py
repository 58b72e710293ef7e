"""Typed settings from ``<home>/config.yaml`` and ``VY_NEXUS_*`` environment variables.

Precedence, lowest first: built-in defaults, the YAML file, environment variables, keyword arguments. An environment
variable names a key path with double underscores: ``VY_NEXUS_ROUTING__CACHE__TTL_SECONDS=60`` sets
``routing.cache.ttl_seconds``. Values get their natural types (``true``, ``3``, ``0.5``); lists are YAML flow
values (``[data, /srv/docs]``).

Every path is derived from the home directory (``--home``, else ``$VY_NEXUS_HOME``, else ``~/.vy-nexus``).

When only the file sets values (the common case), ``load_settings`` validates the file's mapping itself;
pydantic-settings, which merges environment variables and arguments over it (``config_sources.py``), loads only
when one of them is set: its import, with the asyncio it pulls in, is a large share of a CLI command's start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vy_nexus.config_parse_cache import cached_parse, remember_parse
from vy_nexus.errors import ConfigError

ENV_PREFIX = "VY_NEXUS_"
HOME_ENV = "VY_NEXUS_HOME"
CONFIG_FILENAME = "config.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ReasoningCoreSettings(_Section):
    provider: Literal["embedded", "ollama", "openai"] = "embedded"
    model: str = "smollm2-135m-instruct"
    model_path: str | None = Field(default=None, description="GGUF file for the embedded backend")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=256, ge=1, le=32768)
    context_window: int = Field(default=2048, ge=128)
    base_url: str | None = None
    timeout_seconds: float = Field(default=120.0, gt=0)
    api_key_env: str = "OPENAI_API_KEY"
    threads: int | None = Field(default=None, ge=1)


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warn", "error"] = "info"
    daily_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    flush_interval_seconds: float = Field(default=1.0, gt=0)
    ship_to_store: bool = Field(
        default=True,
        description="with a PostgreSQL store.url, also write journal entries to its journal table (vy-nexus logs)",
    )
    store_retention_days: float = Field(
        default=14.0, gt=0, description="journal entries older than this are deleted from the store's journal table"
    )


class SafetySettings(_Section):
    critical_error_threshold: int = Field(default=3, ge=1)
    window_seconds: float = Field(default=300.0, gt=0)
    grace_period_seconds: float = Field(default=10.0, ge=0)
    stop_poll_seconds: float = Field(default=1.0, gt=0)


class FileSystemSettings(_Section):
    allowed_paths: list[str] = Field(default_factory=lambda: ["."])
    max_file_size: int = Field(default=10 * 1024 * 1024, ge=1)
    backup_on_overwrite: bool = True


class HeartbeatSettings(_Section):
    interval_minutes: float = Field(default=5.0, gt=0)
    verification_timeout_seconds: float = Field(default=30.0, gt=0)


class CacheSettings(_Section):
    enabled: bool = True
    ttl_seconds: float = Field(default=300.0, gt=0)
    max_size: int = Field(default=1000, ge=1)


class SemanticSettings(_Section):
    model_path: str | None = Field(default=None, description="ONNX sentence encoder; default: packaged MiniLM int8")
    tokenizer_path: str | None = Field(default=None, description="tokenizer.json; default: packaged MiniLM")
    routes_file: str | None = Field(default=None, description="YAML/JSON routes, relative to home")
    max_length: int = Field(default=128, ge=8, le=512)
    threads: int = Field(default=1, ge=1, le=64, description="onnxruntime intra-op threads per encoder session")
    int8_matmul: bool = Field(
        default=True, description="run an int8-weight encoder's products on integers (about 2x faster per query)"
    )
    builtin_routes: bool = Field(default=True, description="add the packaged utterances of the built-in experts")


class RoutingSettings(_Section):
    strategy: Literal["keyword", "semantic", "hybrid"] = "hybrid"
    confidence_threshold: float = Field(default=0.3, ge=0.0, le=1.0)
    fallback_expert: str = "general"
    top_k: int = Field(default=1, ge=1, le=16)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    semantic: SemanticSettings = Field(default_factory=SemanticSettings)


class GovernanceSettings(_Section):
    max_concurrent_tasks: int = Field(default=10, ge=1)
    max_task_duration_seconds: float = Field(default=300.0, gt=0)
    max_queue_size: int = Field(default=100, ge=0)
    min_routing_confidence: float = Field(default=0.7, ge=0.0, le=1.0)
    low_confidence_action: Literal["fallback", "ask", "deny"] = "fallback"
    max_retries: int = Field(default=3, ge=0)
    require_approval_for_destructive: bool = True
    approval_ttl_seconds: float = Field(default=86400.0, gt=0)


class MetricsSettings(_Section):
    enabled: bool = True
    system_sample_seconds: float = Field(default=15.0, gt=0)
    retention_days: int = Field(default=30, ge=1)


class ExecutorSettings(_Section):
    expert_timeout_seconds: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    backoff_base_seconds: float = Field(default=0.2, ge=0)
    backoff_max_seconds: float = Field(default=5.0, ge=0)
    aggregation: Literal["single", "confidence_weighted", "majority_vote", "ensemble"] = "confidence_weighted"
    worker_threads: int = Field(default=8, ge=1, le=256, description="threads for blocking experts")
    kind: Literal["local", "celery"] = Field(default="local", description="where experts run: this process or Celery")
    broker_url: str = Field(default="redis://127.0.0.1:6379/0", description="Celery broker: redis://... or amqp://...")
    queues: dict[str, str] = Field(default_factory=dict, description="expert id -> Celery queue (default per expert)")
    max_redeliveries: int = Field(default=2, ge=0, le=100, description="redeliveries after a lost worker")
    visibility_timeout_seconds: float = Field(default=3600.0, gt=0, description="Redis: unacked message redelivery")

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://")):
            raise ValueError("must start with redis://, rediss://, amqp:// or amqps://")
        return value


class StoreSettings(_Section):
    url: str | None = Field(default=None, description="SQLAlchemy URL; default: sqlite file tasks/tasks.db in home")
    retention_days: float = Field(default=7.0, gt=0, description="finished tasks older than this are deleted")
    flush_interval_seconds: float = Field(default=0.05, gt=0, le=10, description="write-behind interval")


class ApiSettings(_Section):
    host: str = Field(default="127.0.0.1", description="address `vy-nexus serve` binds; loopback unless you say so")
    port: int = Field(default=8000, ge=1, le=65535)
    rate_limit_per_minute: int = Field(default=100, ge=1, description="requests per API key per minute")
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, description="larger request bodies get 413")
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed by CORS; empty: CORS off")
    server_url: str | None = Field(default=None, description="CLI: talk to this server instead of running in-process")
    key_env: str = Field(default="VY_NEXUS_API_KEY", description="environment variable the CLI reads its key from")


class AlertsSettings(_Section):
    """The dashboard's alerts (docs/dashboard.md): thresholds over the last ``window_seconds`` of metrics."""

    enabled: bool = True
    window_seconds: float = Field(default=300.0, gt=0, description="how far back error rate and latency look")
    error_rate: float = Field(default=0.2, ge=0.0, le=1.0, description="failed share of finished tasks")
    latency_p95_ms: float = Field(default=60000.0, gt=0, description="p95 task duration")
    min_tasks: int = Field(default=5, ge=1, description="tasks in the window before rate and latency alert")
    expert_failures: int = Field(default=3, ge=1, description="an expert's failures in a row")
    kill_switch: bool = Field(default=True, description="alert while a shutdown is under way")


class ExpertsSettings(_Section):
    directory: str = "experts"
    disabled: list[str] = Field(default_factory=list)
    documents_dir: str = "documents"


class Settings(BaseModel):
    """All settings. ``home`` is not read from the file; it is where the file lives.

    ``Settings(**values)`` is exactly the values given over the defaults; ``load_settings`` reads the file and the
    environment, and turns problems into a ``ConfigError`` naming each bad key and where its value came from.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    reasoning_core: ReasoningCoreSettings = Field(default_factory=ReasoningCoreSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    file_system: FileSystemSettings = Field(default_factory=FileSystemSettings)
    heartbeat: HeartbeatSettings = Field(default_factory=HeartbeatSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    governance: GovernanceSettings = Field(default_factory=GovernanceSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    experts: ExpertsSettings = Field(default_factory=ExpertsSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)

    home: Path = Field(default_factory=lambda: default_home(), exclude=True)
    """Where the file lives: ``load_settings``'s home; by default ``$VY_NEXUS_HOME``, else ``~/.vy-nexus``."""

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    # Derived paths: every file vy-nexus writes lives under ``home``.
    @property
    def config_file(self) -> Path:
        return self.home / CONFIG_FILENAME

    @property
    def logs_dir(self) -> Path:
        return self.home / "research_logs"

    @property
    def metrics_dir(self) -> Path:
        return self.home / "metrics"

    @property
    def metrics_db(self) -> Path:
        return self.metrics_dir / "performance.db"

    @property
    def shared_database_url(self) -> str | None:
        """``store.url`` when it names a database server (PostgreSQL): the one database of a cluster, holding the
        tasks, the metrics and the shipped journal. None for the default SQLite file (and any ``sqlite://`` URL)."""
        url = self.store.url
        if url is None or url.split(":", 1)[0].split("+", 1)[0].lower() == "sqlite":
            return None
        return url

    @property
    def metrics_url(self) -> str:
        """Where metrics are recorded: the shared database when there is one, else ``metrics/performance.db``."""
        return self.shared_database_url or f"sqlite:///{self.metrics_db}"

    @property
    def state_file(self) -> Path:
        return self.home / "sovereign_state.json"

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.home / 'tasks' / 'tasks.db'}"

    @property
    def experts_dir(self) -> Path:
        return self.resolve(self.experts.directory)

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    def resolve(self, path: str | Path) -> Path:
        """A path from the config: absolute as given (``~`` expanded), else relative to home."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.home / candidate


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$VY_NEXUS_HOME``, else ``~/.vy-nexus``."""
    env = os.environ if environ is None else environ
    value = env.get(HOME_ENV)
    return Path(value).expanduser() if value else Path.home() / ".vy-nexus"


def read_config_file(path: Path) -> dict[str, Any]:
    """The raw mapping in a config file; an absent or empty file is an empty mapping."""
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    found, data = cached_parse(path, text)
    if not found:
        data = _parse_yaml(path, text)
        remember_parse(path, text, data)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, not {type(data).__name__}")
    if "home" in data:
        raise ConfigError(f"unknown key 'home' in {path}: the home directory is where the file lives")
    return data


def _parse_yaml(path: Path, text: str) -> Any:
    import yaml  # loads only when the file changed since its last parse (config_parse_cache.py)

    from vy_nexus.yaml_reader import describe_yaml_error, load_yaml

    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {describe_yaml_error(exc)}") from exc


def load_settings(
    home: Path | str | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Load settings for ``home`` (default: ``$VY_NEXUS_HOME`` or ``~/.vy-nexus``). Writes nothing but the config
    file's parse cache (``config_parse_cache.py``).

    ``environ`` replaces ``os.environ`` as the source of ``VY_NEXUS_*`` variables; ``overrides`` (sections as
    mappings, e.g. ``routing={"top_k": 2}``) take precedence over everything else.
    """
    env = os.environ if environ is None else environ
    if isinstance(home, str) and not home.strip():
        raise ConfigError("the home directory is empty: name one (--home DIR or VY_NEXUS_HOME), or leave it unset")
    chosen = Path(home).expanduser() if home is not None else default_home(env)
    if chosen.exists() and not chosen.is_dir():
        raise ConfigError(f"the home directory {chosen} is not a directory (--home DIR or VY_NEXUS_HOME)")
    if overrides or environment_overrides(env):
        from vy_nexus.config_sources import load_from_sources

        return load_from_sources(chosen, env, overrides)
    config_file = chosen / CONFIG_FILENAME
    try:
        return Settings.model_validate({**read_config_file(config_file), "home": chosen})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, str(config_file))) from exc


def environment_overrides(environ: Mapping[str, str]) -> list[str]:
    """The ``VY_NEXUS_*`` variables that may set a key: all but ``VY_NEXUS_HOME``, and not empty ones (an empty
    variable means "not set")."""
    return [
        name
        for name, value in environ.items()
        if value and name.upper().startswith(ENV_PREFIX) and name.upper() != HOME_ENV
    ]


def given_key(data: Mapping[str, Any], loc: tuple[str, ...]) -> tuple[str, ...]:
    """The key path in ``data`` that holds the value at ``loc`` (which may point inside it: a list item);
    empty when ``data`` does not hold it."""
    node: Any = data
    for depth, part in enumerate(loc):
        if not isinstance(node, Mapping):
            return loc[:depth]
        if part not in node:
            return ()
        node = node[part]
    return loc


def describe_error(item: Any) -> str:
    key = ".".join(str(part) for part in item["loc"]) or "(root)"
    if item["type"] == "extra_forbidden":
        return f"unknown key '{key}'"
    return f"key '{key}': {item['msg']} (got {item.get('input')!r})"


def _format_validation_error(error: ValidationError, source: str) -> str:
    return f"invalid configuration in {source}: " + "; ".join(describe_error(item) for item in error.errors())


def get_key(settings: Settings, key: str) -> Any:
    """The value at a dotted key path such as ``routing.cache.ttl_seconds``."""
    node: Any = settings
    for part in key.split("."):
        if not isinstance(node, BaseModel) or part not in type(node).model_fields or part == "home":
            raise ConfigError(f"unknown config key '{key}'")
        node = getattr(node, part)
    return node.model_dump(mode="json") if isinstance(node, BaseModel) else node
