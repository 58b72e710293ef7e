"""``vy-nexus configure KEY VALUE``: change one key in config.yaml, keeping its comments, atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from vy_nexus.config import CONFIG_FILENAME, Settings, _format_validation_error
from vy_nexus.errors import ConfigError
from vy_nexus.foundation.atomic import atomic_write_text


def parse_value(raw: str) -> Any:
    """Parse a command-line value as a YAML scalar or flow collection: ``3``, ``true``, ``[a, b]``, ``text``."""
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def _check_key(key: str) -> list[str]:
    parts = key.split(".")
    model: type[BaseModel] = Settings
    for index, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None or part == "home":
            raise ConfigError(f"unknown config key '{key}' (no '{part}' in '{'.'.join(parts[:index]) or 'root'}')")
        annotation = field.annotation
        if index < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                raise ConfigError(f"unknown config key '{key}': '{'.'.join(parts[: index + 1])}' is not a section")
            model = annotation
    return parts


def set_config_value(home: Path, key: str, raw_value: str) -> Any:
    """Set ``key`` to the parsed ``raw_value`` in ``home/config.yaml``; returns the stored value.

    The whole file is validated before it is written; on any error nothing changes.
    """
    parts = _check_key(key)
    value = parse_value(raw_value)
    path = home / CONFIG_FILENAME
    yaml_rt = YAML()
    yaml_rt.preserve_quotes = True
    if path.exists():
        try:
            document = yaml_rt.load(path.read_text(encoding="utf-8"))
        except Exception as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        if document is None:
            document = CommentedMap()
        if not isinstance(document, dict):
            raise ConfigError(f"{path} must hold a mapping of sections")
    else:
        document = CommentedMap()
    node = document
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = CommentedMap()
            node[part] = child
        elif not isinstance(child, dict):
            raise ConfigError(f"{path}: '{part}' must be a section, found {type(child).__name__}")
        node = child
    node[parts[-1]] = value
    plain = yaml.safe_load(_dump(yaml_rt, document)) or {}
    try:
        validated = Settings.model_validate(plain)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, f"{path} (after setting {key})")) from exc
    atomic_write_text(path, _dump(yaml_rt, document))
    stored: Any = validated
    for part in parts:
        stored = getattr(stored, part)
    return stored.model_dump(mode="json") if isinstance(stored, BaseModel) else stored


def _dump(yaml_rt: YAML, document: Any) -> str:
    buffer = io.StringIO()
    yaml_rt.dump(document, buffer)
    return buffer.getvalue()
