"""Change one key of ``<home>/config.yaml``: the whole file is validated with the new value before anything is
written, then replaced atomically, keeping its comments. Every interface (``vy-nexus configure``, the API) calls
these functions; nothing else writes the config file."""

from __future__ import annotations

import io
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from vy_nexus.config import CONFIG_FILENAME, Settings, validate_settings
from vy_nexus.config_parse_cache import remember
from vy_nexus.config_schema import schema_fingerprint, section_of, setting_fields, to_json
from vy_nexus.errors import ConfigError
from vy_nexus.foundation.atomic import atomic_write_text
from vy_nexus.foundation.file_lock import FileGuard
from vy_nexus.yaml_reader import load_yaml

LOCK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class ConfigEdit:
    """A validated change, not yet written: ``value`` is what the key will hold, ``text`` the new file."""

    path: Path
    key: str
    value: Any
    text: str
    parsed: dict[str, Any]
    """``text`` as the config loader parses it."""
    settings: Settings
    """What ``text`` validates to."""


def parse_value(raw: str) -> Any:
    """Parse a command-line value as a YAML scalar or flow collection: ``3``, ``true``, ``[a, b]``, ``text``."""
    try:
        return load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def check_key(key: str) -> list[str]:
    """The parts of a dotted key that names a setting or a section; ``ConfigError`` naming the first unknown part."""
    parts = key.split(".")
    section: type | None = Settings
    for index, part in enumerate(parts):
        if section is None:
            raise ConfigError(f"unknown config key '{key}': '{'.'.join(parts[:index])}' is not a section")
        field = next((declared for declared in setting_fields(section) if declared.name == part), None)
        if field is None:
            raise ConfigError(f"unknown config key '{key}' (no '{part}' in '{'.'.join(parts[:index]) or 'root'}')")
        section = section_of(field)
    return parts


def prepare_config_edit(home: Path, key: str, value: Any) -> ConfigEdit:
    """Validate setting ``key`` to ``value`` in ``home/config.yaml``; writes nothing. A ``str`` value is parsed
    with ``parse_value`` (``"3"`` is 3); other values are used as they are."""
    parts = check_key(key)
    path = home / CONFIG_FILENAME
    yaml_rt = YAML()
    yaml_rt.preserve_quotes = True
    document = _load_document(yaml_rt, path)
    node = document
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = CommentedMap()
            node[part] = child
        elif not isinstance(child, dict):
            raise ConfigError(f"{path}: '{part}' must be a section, found {type(child).__name__}")
        node = child
    node[parts[-1]] = parse_value(value) if isinstance(value, str) else value
    text = _dump(yaml_rt, document)
    parsed = load_yaml(text) or {}
    validated = validate_settings(parsed, home, source=f"{path} (after setting {key})")
    stored: Any = validated
    for part in parts:
        stored = getattr(stored, part)
    return ConfigEdit(path, key, to_json(stored) if is_dataclass(stored) else stored, text, parsed, validated)


def set_config_value(home: Path, key: str, value: Any) -> Any:
    """Set ``key`` to ``value`` in ``home/config.yaml``; returns the stored value. On any error nothing changes.

    The read, the change and the write happen under ``config.yaml.lock``: two processes changing different keys at
    once (a server and a CLI, say) each keep their change instead of the last writer erasing the other's."""
    with FileGuard(home / CONFIG_FILENAME, LOCK_TIMEOUT_SECONDS).locked():
        edit = prepare_config_edit(home, key, value)
        atomic_write_text(edit.path, edit.text)
        # Validated already: the next command loads the settings from the cache instead of validating again.
        remember(edit.path, edit.text, edit.parsed, to_json(edit.settings), schema_fingerprint(Settings))
    return edit.value


def _load_document(yaml_rt: YAML, path: Path) -> Any:
    if not path.exists():
        return CommentedMap()
    try:
        document = yaml_rt.load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except Exception as exc:  # ruamel's parser and scanner errors share no public base class
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if document is None:
        return CommentedMap()
    if not isinstance(document, dict):
        raise ConfigError(f"{path} must hold a mapping of sections")
    if "home" in document:
        raise ConfigError(f"unknown key 'home' in {path}: the home directory is where the file lives")
    return document


def _dump(yaml_rt: YAML, document: Any) -> str:
    buffer = io.StringIO()
    yaml_rt.dump(document, buffer)
    return buffer.getvalue()
