"""Typed settings loaded from ``<home>/config.yaml`` with ``VY_NEXUS_*`` environment overrides.

Precedence, lowest first: built-in defaults, the YAML file, environment variables. An environment variable names a
key path with double underscores: ``VY_NEXUS_ROUTING__CACHE__TTL_SECONDS=60`` sets ``routing.cache.ttl_seconds``.
Values from the environment are parsed as YAML scalars, so ``true``, ``3`` and ``0.5`` get their natural types.

Every path is derived from the home directory (``--home``, else ``$VY_NEXUS_HOME``, else ``~/.vy-nexus``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


class RoutingSettings(_Section):
    strategy: Literal["keyword", "semantic", "hybrid"] = "keyword"
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


class StoreSettings(_Section):
    url: str | None = Field(default=None, description="SQLAlchemy URL; default: sqlite file tasks/tasks.db in home")
    retention_days: float = Field(default=7.0, gt=0, description="finished tasks older than this are deleted")
    flush_interval_seconds: float = Field(default=0.05, gt=0, le=10, description="write-behind interval")


class ExpertsSettings(_Section):
    directory: str = "experts"
    disabled: list[str] = Field(default_factory=list)
    documents_dir: str = "documents"


class Settings(_Section):
    """All settings. ``home`` is not read from the file; it is where the file lives."""

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

    home: Path = Field(default_factory=lambda: default_home(), exclude=True)

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
    env = os.environ if environ is None else environ
    value = env.get(HOME_ENV)
    return Path(value).expanduser() if value else Path.home() / ".vy-nexus"


def _format_validation_error(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(root)"
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'")
        else:
            lines.append(f"key '{key}': {item['msg']} (got {item.get('input')!r})")
    return f"invalid configuration in {source}: " + "; ".join(lines)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == HOME_ENV:
            continue
        parts = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if not parts:
            continue
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = overrides
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name} conflicts with another VY_NEXUS_ variable")
        node[parts[-1]] = value
    return overrides


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_file(path: Path) -> dict[str, Any]:
    """The raw mapping in a config file; an absent or empty file is an empty mapping."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, not {type(data).__name__}")
    return data


def load_settings(home: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load settings for ``home`` (default: ``$VY_NEXUS_HOME`` or ``~/.vy-nexus``). Reads, never writes."""
    env = os.environ if environ is None else environ
    home_path = Path(home).expanduser() if home is not None else default_home(env)
    config_path = home_path / CONFIG_FILENAME
    data = read_config_file(config_path)
    if "home" in data:
        raise ConfigError(f"unknown key 'home' in {config_path}: the home directory is where the file lives")
    try:
        Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, str(config_path))) from exc
    merged = _deep_merge(data, _env_overrides(env))
    try:
        return Settings.model_validate({**merged, "home": home_path.resolve()})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, "VY_NEXUS_* environment variables")) from exc


def get_key(settings: Settings, key: str) -> Any:
    """The value at a dotted key path such as ``routing.cache.ttl_seconds``."""
    node: Any = settings
    for part in key.split("."):
        if not isinstance(node, BaseModel) or part not in type(node).model_fields or part == "home":
            raise ConfigError(f"unknown config key '{key}'")
        node = getattr(node, part)
    return node.model_dump(mode="json") if isinstance(node, BaseModel) else node
