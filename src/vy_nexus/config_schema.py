"""How the settings dataclasses (``config.py``) declare their fields, and what is read from those declarations
without pydantic: the config keys, the settings as JSON and back, the keys a mapping gives, and the schema's
fingerprint. ``config_validation.py`` builds the pydantic models from the same declarations.

A field is declared once, with ``dataclasses.field``: its default, and in its metadata (``rules(...)``) the
constraints pydantic checks (``ge``, ``gt``, ``le``, ``lt``), a description and, where needed, one more check (a
function from value to value, raising ``ValueError``). A field whose default factory is a dataclass is a section.
Fields marked ``runtime`` (``home``, ``given_keys``) are not config keys: they are never read from the file nor
written to the cache."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

# Bumped when a check's code or the meaning of a declaration changes in a way the declarations do not show: settings
# cached as validated by an earlier schema are then validated again.
SCHEMA_VERSION = 3


def rules(
    *, description: str | None = None, check: Callable[[Any], Any] | None = None, **constraints: float
) -> dict[str, Any]:
    """A field's validation, as its metadata: ``field(default=0.7, metadata=rules(ge=0.0, le=2.0))``."""
    metadata: dict[str, Any] = {"constraints": constraints}
    if description is not None:
        metadata["description"] = description
    if check is not None:
        metadata["check"] = check
    return metadata


def setting_fields(cls: type) -> Iterator[dataclasses.Field[Any]]:
    """The fields of a settings dataclass that are config keys, in declaration order."""
    return (field for field in dataclasses.fields(cls) if not field.metadata.get("runtime"))


def section_of(field: dataclasses.Field[Any]) -> type | None:
    """The dataclass of a section field; None for a value."""
    factory = field.default_factory
    return factory if isinstance(factory, type) and dataclasses.is_dataclass(factory) else None


def to_json(instance: Any) -> dict[str, Any]:
    """A settings dataclass's keys and values as JSON values (sections as mappings), without the runtime fields."""
    values: dict[str, Any] = {}
    for field in setting_fields(type(instance)):
        value = getattr(instance, field.name)
        if section_of(field) is not None:
            values[field.name] = to_json(value)
        else:
            values[field.name] = (
                list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value
            )
    return values


def from_json(cls: type[T], values: Mapping[str, Any], **runtime: Any) -> T:
    """The dataclass ``to_json`` made ``values`` from, built as it is: no validation (``KeyError`` or ``TypeError``
    when ``values`` does not fit the class)."""
    arguments: dict[str, Any] = {}
    for field in setting_fields(cls):
        section = section_of(field)
        value = values[field.name]
        arguments[field.name] = from_json(section, value) if section is not None else value
    if len(values) != len(arguments):
        raise TypeError(f"{cls.__name__}: unexpected keys")
    return cls(**arguments, **runtime)


def given_keys(cls: type, values: Mapping[str, Any], prefix: str = "") -> frozenset[str]:
    """The dotted keys that ``values`` (a file's mapping, say) sets, sections included: ``routing``,
    ``routing.cache``, ``routing.cache.ttl_seconds``."""
    keys: set[str] = set()
    for field in setting_fields(cls):
        if field.name not in values:
            continue
        key = prefix + field.name
        keys.add(key)
        section = section_of(field)
        value = values[field.name]
        if section is not None and isinstance(value, Mapping):
            keys |= given_keys(section, value, f"{key}.")
    return frozenset(keys)


def schema_fingerprint(cls: type) -> str:
    """Names, types, defaults and validation of every key, and ``SCHEMA_VERSION``: equal fingerprints mean that
    settings validated under one are valid under the other. Kept whole (a few KB), not hashed: hashlib's import
    would cost a command more than reading and comparing the text."""
    return f"{SCHEMA_VERSION}:{_describe(cls)}"


def _describe(cls: type) -> str:
    parts = []
    for field in setting_fields(cls):
        section = section_of(field)
        if section is not None:
            parts.append(f"{field.name}:{{{_describe(section)}}}")
            continue
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        metadata = field.metadata
        check = metadata.get("check")
        checked = f"{check.__module__}.{check.__qualname__}" if check is not None else ""
        parts.append(
            f"{field.name}:{field.type}={default!r}{metadata.get('constraints')}{checked}|{metadata.get('description')}"
        )
    return ";".join(parts)
