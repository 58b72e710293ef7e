"""Pydantic models built from the settings dataclasses' declarations (``config_schema.py``), once per process, and the
validation of a mapping of values into the dataclasses. Imported only where values may be wrong: a changed or new
config file, environment variables, arguments, ``vy-nexus configure``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, Field, fields
from functools import cache
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError, create_model
from pydantic import Field as ModelField

from vy_nexus.config import Settings
from vy_nexus.config_schema import given_keys, section_of, setting_fields
from vy_nexus.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


class _Strict(BaseModel):
    # No number key means infinity or NaN: an interval or a limit of either breaks whatever waits or compares on it.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def validate(values: Mapping[str, Any], home: Path, source: str) -> Settings:
    """``values`` over the defaults, checked; a ``ConfigError`` names each bad key and ``source``."""
    try:
        model = settings_model(_Strict).model_validate({**values, "home": home})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc
    return settings_of(model)


def settings_of(model: BaseModel) -> Settings:
    """The dataclasses holding a validated settings model's values (``home`` included)."""
    settings: Settings = _dataclass_of(Settings, model)
    settings.given_keys = given_keys(Settings, model.model_dump(exclude_unset=True))
    return settings


def _dataclass_of(cls: type, model: BaseModel) -> Any:
    values: dict[str, Any] = {}
    for declared in fields(cls):
        if declared.name in type(model).model_fields:
            section = section_of(declared)
            value = getattr(model, declared.name)
            values[declared.name] = _dataclass_of(section, value) if section is not None else value
    return cls(**values)


@cache
def settings_model(base: type[ModelT]) -> type[ModelT]:
    """The model of ``Settings``, ``home`` included, on ``base`` (which sets the model's config)."""
    hints = get_type_hints(Settings)
    home = next(declared for declared in fields(Settings) if declared.name == "home")
    definitions = {**_definitions(Settings), "home": _definition(home, hints["home"])}
    return create_model("Settings", __base__=base, __module__=__name__, **definitions)


@cache
def _section_model(cls: type) -> type[_Strict]:
    return create_model(cls.__name__, __base__=_Strict, __module__=__name__, **_definitions(cls))


def _definitions(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {declared.name: _definition(declared, hints[declared.name]) for declared in setting_fields(cls)}


def _definition(declared: Field[Any], annotation: Any) -> tuple[Any, Any]:
    metadata = declared.metadata
    section = section_of(declared)
    if section is not None:
        model = _section_model(section)
        return model, ModelField(default_factory=model, description=metadata.get("description"))
    check = metadata.get("check")
    if check is not None:
        annotation = Annotated[annotation, AfterValidator(check)]
    if annotation in (int, float):
        annotation = Annotated[annotation, BeforeValidator(_not_a_bool)]
    default: dict[str, Any] = (
        {"default": declared.default}
        if declared.default is not MISSING
        else {"default_factory": declared.default_factory}
    )
    constraints = metadata.get("constraints", {})
    return annotation, ModelField(**default, **constraints, description=metadata.get("description"))


def _not_a_bool(value: Any) -> Any:
    """Pydantic reads ``true`` as 1 for a number: ``configure governance.max_concurrent_tasks true`` stored 1."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not {str(value).lower()}")
    return value


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


def format_validation_error(error: ValidationError, source: str) -> str:
    return f"invalid configuration in {source}: " + "; ".join(describe_error(item) for item in error.errors())
