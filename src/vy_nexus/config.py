"""Typed settings from ``<home>/config.yaml`` and ``VY_NEXUS_*`` environment variables.

Precedence, lowest first: built-in defaults, the YAML file, environment variables, keyword arguments. An environment
variable names a key path with double underscores: ``VY_NEXUS_ROUTING__CACHE__TTL_SECONDS=60`` sets
``routing.cache.ttl_seconds``. Values get their natural types (``true``, ``3``, ``0.5``); lists are YAML flow
values (``[data, /srv/docs]``).

Every path is derived from the home directory (``--home``, else ``$VY_NEXUS_HOME``, else ``~/.vy-nexus``).

The settings are dataclasses; pydantic checks them (``config_validation.py`` builds its models from the dataclasses'
declarations, ``config_schema.py``) only where values may be wrong. When only the file sets values (the common case)
and its text was validated before under the same declarations, ``load_settings`` builds the settings from what that
validation cached (``config_parse_cache.py``) without importing pydantic, whose import and model building were about
60 % of a CLI command's start-up (issue 16). Pydantic-settings, which merges environment variables and arguments
over the file (``config_sources.py``), loads only when one of them is set.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Literal

from vy_nexus.config_parse_cache import cached_entry, remember
from vy_nexus.config_schema import from_json, given_keys, rules, schema_fingerprint, setting_fields, to_json
from vy_nexus.errors import ConfigError

ENV_PREFIX = "VY_NEXUS_"
HOME_ENV = "VY_NEXUS_HOME"
CONFIG_FILENAME = "config.yaml"

LONGEST_WAIT_SECONDS = threading.TIMEOUT_MAX
"""The longest a thread can wait on this platform (about 292 years on 64-bit Linux): the bound of every interval a
thread waits on (a longer one is an ``OverflowError`` in that thread)."""


def absolute_home(home: Path) -> Path:
    return home.expanduser().resolve()


def _named(value: str) -> str:
    if not value.strip():
        raise ValueError("must name a model, not be blank")
    return value


@dataclass(slots=True)
class ReasoningCoreSettings:
    provider: Literal["embedded", "ollama", "openai"] = "embedded"
    model: str = field(default="smollm2-135m-instruct", metadata=rules(check=_named))
    model_path: str | None = field(default=None, metadata=rules(description="GGUF file for the embedded backend"))
    temperature: float = field(default=0.7, metadata=rules(ge=0.0, le=2.0))
    max_tokens: int = field(default=256, metadata=rules(ge=1, le=32768))
    context_window: int = field(default=2048, metadata=rules(ge=128))
    base_url: str | None = None
    timeout_seconds: float = field(default=120.0, metadata=rules(gt=0))
    api_key_env: str = "OPENAI_API_KEY"
    threads: int | None = field(default=None, metadata=rules(ge=1))


@dataclass(slots=True)
class LoggingSettings:
    level: Literal["debug", "info", "warn", "error"] = "info"
    daily_max_bytes: int = field(default=5 * 1024 * 1024, metadata=rules(ge=1024))
    flush_interval_seconds: float = field(default=1.0, metadata=rules(gt=0, le=LONGEST_WAIT_SECONDS))
    ship_to_store: bool = field(
        default=True,
        metadata=rules(
            description="with a PostgreSQL store.url, also write journal entries to its journal table (vy-nexus logs)"
        ),
    )
    store_retention_days: float = field(
        default=14.0,
        metadata=rules(gt=0, description="journal entries older than this are deleted from the store's journal table"),
    )


@dataclass(slots=True)
class SafetySettings:
    critical_error_threshold: int = field(default=3, metadata=rules(ge=1))
    window_seconds: float = field(default=300.0, metadata=rules(gt=0))
    grace_period_seconds: float = field(default=10.0, metadata=rules(ge=0))
    stop_poll_seconds: float = field(default=1.0, metadata=rules(gt=0, le=LONGEST_WAIT_SECONDS))


@dataclass(slots=True)
class FileSystemSettings:
    allowed_paths: list[str] = field(default_factory=lambda: ["."])
    max_file_size: int = field(default=10 * 1024 * 1024, metadata=rules(ge=1))
    backup_on_overwrite: bool = True


@dataclass(slots=True)
class HeartbeatSettings:
    interval_minutes: float = field(default=5.0, metadata=rules(gt=0, le=LONGEST_WAIT_SECONDS // 60))
    verification_timeout_seconds: float = field(default=30.0, metadata=rules(gt=0, le=LONGEST_WAIT_SECONDS))


@dataclass(slots=True)
class CacheSettings:
    enabled: bool = True
    ttl_seconds: float = field(default=300.0, metadata=rules(gt=0))
    max_size: int = field(default=1000, metadata=rules(ge=1))


@dataclass(slots=True)
class SemanticSettings:
    model_path: str | None = field(
        default=None, metadata=rules(description="ONNX sentence encoder; default: packaged MiniLM int8")
    )
    tokenizer_path: str | None = field(
        default=None, metadata=rules(description="tokenizer.json; default: packaged MiniLM")
    )
    routes_file: str | None = field(default=None, metadata=rules(description="YAML/JSON routes, relative to home"))
    max_length: int = field(default=128, metadata=rules(ge=8, le=512))
    threads: int = field(
        default=1, metadata=rules(ge=1, le=64, description="onnxruntime intra-op threads per encoder session")
    )
    int8_matmul: bool = field(
        default=True,
        metadata=rules(description="run an int8-weight encoder's products on integers (about 2x faster per query)"),
    )
    builtin_routes: bool = field(
        default=True, metadata=rules(description="add the packaged utterances of the built-in experts")
    )


@dataclass(slots=True)
class RoutingSettings:
    strategy: Literal["keyword", "semantic", "hybrid"] = "hybrid"
    confidence_threshold: float = field(default=0.3, metadata=rules(ge=0.0, le=1.0))
    fallback_expert: str = "general"
    top_k: int = field(default=1, metadata=rules(ge=1, le=16))
    cache: CacheSettings = field(default_factory=CacheSettings)
    semantic: SemanticSettings = field(default_factory=SemanticSettings)


@dataclass(slots=True)
class GovernanceSettings:
    max_concurrent_tasks: int = field(default=10, metadata=rules(ge=1))
    max_task_duration_seconds: float = field(default=300.0, metadata=rules(gt=0))
    max_queue_size: int = field(default=100, metadata=rules(ge=0))
    min_routing_confidence: float = field(default=0.7, metadata=rules(ge=0.0, le=1.0))
    low_confidence_action: Literal["fallback", "ask", "deny"] = "fallback"
    max_retries: int = field(default=3, metadata=rules(ge=0))
    require_approval_for_destructive: bool = True
    approval_ttl_seconds: float = field(default=86400.0, metadata=rules(gt=0))


@dataclass(slots=True)
class MetricsSettings:
    enabled: bool = True
    system_sample_seconds: float = field(default=15.0, metadata=rules(gt=0, le=LONGEST_WAIT_SECONDS))
    retention_days: int = field(default=30, metadata=rules(ge=1))


def _broker_scheme(value: str) -> str:
    if not value.startswith(("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://")):
        raise ValueError("must start with redis://, rediss://, amqp:// or amqps://")
    return value


@dataclass(slots=True)
class ExecutorSettings:
    expert_timeout_seconds: float = field(default=60.0, metadata=rules(gt=0))
    max_retries: int = field(default=2, metadata=rules(ge=0))
    backoff_base_seconds: float = field(default=0.2, metadata=rules(ge=0))
    backoff_max_seconds: float = field(default=5.0, metadata=rules(ge=0))
    aggregation: Literal["single", "confidence_weighted", "majority_vote", "ensemble"] = "confidence_weighted"
    worker_threads: int = field(default=8, metadata=rules(ge=1, le=256, description="threads for blocking experts"))
    kind: Literal["local", "celery"] = field(
        default="local", metadata=rules(description="where experts run: this process or Celery")
    )
    broker_url: str = field(
        default="redis://127.0.0.1:6379/0",
        metadata=rules(description="Celery broker: redis://... or amqp://...", check=_broker_scheme),
    )
    queues: dict[str, str] = field(
        default_factory=dict, metadata=rules(description="expert id -> Celery queue (default per expert)")
    )
    max_redeliveries: int = field(
        default=2, metadata=rules(ge=0, le=100, description="redeliveries after a lost worker")
    )
    visibility_timeout_seconds: float | None = field(
        default=None,
        metadata=rules(
            gt=0, description="Redis: unacked message redelivery (default: longest call budget + hard limit margin)"
        ),
    )


@dataclass(slots=True)
class StoreSettings:
    url: str | None = field(
        default=None, metadata=rules(description="SQLAlchemy URL; default: sqlite file tasks/tasks.db in home")
    )
    retention_days: float = field(
        default=7.0, metadata=rules(gt=0, description="finished tasks older than this are deleted")
    )
    flush_interval_seconds: float = field(
        default=0.05, metadata=rules(gt=0, le=10, description="write-behind interval")
    )


@dataclass(slots=True)
class ApiSettings:
    host: str = field(
        default="127.0.0.1", metadata=rules(description="address `vy-nexus serve` binds; loopback unless you say so")
    )
    port: int = field(default=8000, metadata=rules(ge=1, le=65535))
    rate_limit_per_minute: int = field(default=100, metadata=rules(ge=1, description="requests per API key per minute"))
    max_body_bytes: int = field(
        default=16 * 1024 * 1024, metadata=rules(ge=1024, description="larger request bodies get 413")
    )
    cors_origins: list[str] = field(
        default_factory=list, metadata=rules(description="origins allowed by CORS; empty: CORS off")
    )
    server_url: str | None = field(
        default=None, metadata=rules(description="CLI: talk to this server instead of running in-process")
    )
    key_env: str = field(
        default="VY_NEXUS_API_KEY", metadata=rules(description="environment variable the CLI reads its key from")
    )


@dataclass(slots=True)
class AlertsSettings:
    """The dashboard's alerts (docs/dashboard.md): thresholds over the last ``window_seconds`` of metrics."""

    enabled: bool = True
    window_seconds: float = field(
        default=300.0, metadata=rules(gt=0, description="how far back error rate and latency look")
    )
    error_rate: float = field(default=0.2, metadata=rules(ge=0.0, le=1.0, description="failed share of finished tasks"))
    latency_p95_ms: float = field(default=60000.0, metadata=rules(gt=0, description="p95 task duration"))
    min_tasks: int = field(
        default=5, metadata=rules(ge=1, description="tasks in the window before rate and latency alert")
    )
    expert_failures: int = field(default=3, metadata=rules(ge=1, description="an expert's failures in a row"))
    kill_switch: bool = field(default=True, metadata=rules(description="alert while a shutdown is under way"))


@dataclass(slots=True)
class ExpertsSettings:
    directory: str = "experts"
    disabled: list[str] = field(default_factory=list)
    documents_dir: str = "documents"


@dataclass(slots=True)
class Settings:
    """All settings. ``home`` is not read from the file; it is where the file lives.

    ``Settings(...)`` takes the sections as they are, unchecked; ``validate_settings(values)`` checks a mapping of
    values over the defaults, and ``load_settings`` reads the file and the environment, turning problems into a
    ``ConfigError`` naming each bad key and where its value came from.
    """

    reasoning_core: ReasoningCoreSettings = field(default_factory=ReasoningCoreSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    safety: SafetySettings = field(default_factory=SafetySettings)
    file_system: FileSystemSettings = field(default_factory=FileSystemSettings)
    heartbeat: HeartbeatSettings = field(default_factory=HeartbeatSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    governance: GovernanceSettings = field(default_factory=GovernanceSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    experts: ExpertsSettings = field(default_factory=ExpertsSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    alerts: AlertsSettings = field(default_factory=AlertsSettings)

    home: Path = field(
        default_factory=lambda: absolute_home(default_home()), metadata={"runtime": True, "check": absolute_home}
    )
    """Where the file lives: ``load_settings``'s home; by default ``$VY_NEXUS_HOME``, else ``~/.vy-nexus``."""
    given_keys: frozenset[str] = field(default=frozenset(), compare=False, repr=False, metadata={"runtime": True})
    """The dotted keys the file, the environment or the arguments set (``routing``, ``routing.strategy``); the
    others hold their defaults. A default routing strategy may fall back to keyword; a chosen one may not."""

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
    text = _read_text(path)
    if text is None:
        return {}
    entry = cached_entry(path, text)
    if entry is not None:
        return _checked_mapping(path, entry.value)
    value = _parse_yaml(path, text)
    remember(path, text, value)
    return _checked_mapping(path, value)


def _read_text(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def _checked_mapping(path: Path, data: Any) -> dict[str, Any]:
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
    file's cache (``config_parse_cache.py``).

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
    return _load_file(chosen, chosen / CONFIG_FILENAME)


def _load_file(home: Path, config_file: Path) -> Settings:
    """The file's settings: as cached when its text was validated under this schema, else validated (and cached)."""
    text = _read_text(config_file)
    if text is None:
        return Settings(home=absolute_home(home))
    entry = cached_entry(config_file, text)
    schema = schema_fingerprint(Settings)
    if entry is not None and entry.settings is not None and entry.schema == schema:
        data = _checked_mapping(config_file, entry.value)
        try:
            return from_json(Settings, entry.settings, home=absolute_home(home), given_keys=given_keys(Settings, data))
        except (KeyError, TypeError):
            pass  # a damaged entry: validated again, and replaced
    parse = entry.value if entry is not None else _parse_yaml(config_file, text)
    validated: dict[str, Any] | None = None
    try:
        data = _checked_mapping(config_file, parse)
        settings = (
            validate_settings(data, home, source=str(config_file)) if data else Settings(home=absolute_home(home))
        )
        validated = to_json(settings)
        return settings
    finally:
        if entry is None or validated is not None:
            remember(config_file, text, parse, validated, schema)


def validate_settings(
    values: Mapping[str, Any], home: Path | str | None = None, *, source: str = "the arguments"
) -> Settings:
    """Settings holding ``values`` (sections as mappings) over the defaults, checked by pydantic; a ``ConfigError``
    names each bad key and ``source``. ``home`` defaults to ``$VY_NEXUS_HOME``, else ``~/.vy-nexus``."""
    from vy_nexus.config_validation import validate

    return validate(values, default_home() if home is None else Path(home), source)


def environment_overrides(environ: Mapping[str, str]) -> list[str]:
    """The ``VY_NEXUS_*`` variables that may set a key: all but ``VY_NEXUS_HOME``, and not empty ones (an empty
    variable means "not set")."""
    return [
        name
        for name, value in environ.items()
        if value and name.upper().startswith(ENV_PREFIX) and name.upper() != HOME_ENV
    ]


def get_key(settings: Settings, key: str) -> Any:
    """The value at a dotted key path such as ``routing.cache.ttl_seconds``; a section as a JSON mapping."""
    node: Any = settings
    for part in key.split("."):
        if not is_dataclass(node) or part not in {declared.name for declared in setting_fields(type(node))}:
            raise ConfigError(f"unknown config key '{key}'")
        node = getattr(node, part)
    return to_json(node) if is_dataclass(node) else node
