"""Settings merged from keyword arguments, ``VY_NEXUS_*`` environment variables and ``<home>/config.yaml`` by
pydantic-settings (imported only when the environment or the arguments set a value: ``config.load_settings``)."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from vy_nexus.config import CONFIG_FILENAME, ENV_PREFIX, Settings, read_config_file
from vy_nexus.config_validation import describe_error, given_key, settings_model, settings_of
from vy_nexus.errors import ConfigError

_SOURCES: ContextVar[tuple[Path, Mapping[str, str]]] = ContextVar("vy_nexus_settings_sources")
"""The home and environment of the load in progress: pydantic-settings builds sources in a classmethod with no
per-call arguments, so they travel to it this way."""


class _Sourced(BaseSettings):
    """The base of the settings model whose construction reads the sources: arguments, then the environment, then
    the file (``sourced_model``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", env_ignore_empty=True, extra="forbid"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then ``VY_NEXUS_*`` variables, then ``<home>/config.yaml``; no dotenv, no secrets dir."""
        home, environ = _SOURCES.get()
        return (
            init_settings,
            EnvironmentSource(settings_cls, environ),
            _ConfigFileSource(settings_cls, yaml_file=home / CONFIG_FILENAME),
        )


def sourced_model() -> type[_Sourced]:
    """The settings model (``config_validation.settings_model``, built once) with the sources of ``_Sourced``."""
    return settings_model(_Sourced)


class EnvironmentSource(EnvSettingsSource):
    """``VY_NEXUS_*`` variables from a given mapping. Lists and sections are read as YAML flow values
    (``[data, /srv/docs]``), like ``vy-nexus configure`` values; scalars are left to pydantic's coercion."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._environ.items() if value != ""}

    def decode_complex_value(self, field_name: str, field: FieldInfo | None, value: Any) -> Any:
        import yaml  # loads only for list and section values

        from vy_nexus.yaml_reader import load_yaml

        try:
            return load_yaml(value)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "not a YAML value"
            raise ValueError(f"{field_name} = {value!r}: {problem}") from exc


class _ConfigFileSource(YamlConfigSettingsSource):
    """``<home>/config.yaml``, with errors that name the file."""

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        return read_config_file(Path(str(file_path)))


def load_from_sources(home: Path, environ: Mapping[str, str], overrides: Mapping[str, Any]) -> Settings:
    """Settings for ``home`` with ``environ``'s variables and ``overrides`` over the file; a ``ConfigError``
    names each bad key and where its value came from."""
    token = _SOURCES.set((home, environ))
    try:
        return settings_of(sourced_model()(**{"home": home, **overrides}))
    except ValidationError as exc:
        raise ConfigError(_describe_load_errors(exc, home, environ, overrides)) from exc
    except SettingsError as exc:
        detail = exc.__cause__ if exc.__cause__ is not None else exc
        raise ConfigError(f"invalid configuration in VY_NEXUS_* environment variables: {detail}") from exc
    finally:
        _SOURCES.reset(token)


def _describe_load_errors(
    error: ValidationError, home: Path, environ: Mapping[str, str], overrides: Mapping[str, Any]
) -> str:
    """Name each bad key and where its value came from: the arguments, an environment variable or the file."""
    env_values = EnvironmentSource(sourced_model(), environ)()
    by_source: dict[str, list[str]] = {}
    for item in error.errors():
        loc = tuple(str(part) for part in item["loc"])
        line = describe_error(item)
        if given_key(overrides, loc):
            source = "the arguments"
        elif key := given_key(env_values, loc):
            source = "VY_NEXUS_* environment variables"
            line += f" [{ENV_PREFIX}{'__'.join(key).upper()}]"
        else:
            source = str(home / CONFIG_FILENAME)
        by_source.setdefault(source, []).append(line)
    return "; ".join(f"invalid configuration in {source}: " + "; ".join(lines) for source, lines in by_source.items())
