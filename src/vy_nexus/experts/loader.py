"""Discover experts beyond the built-ins: Python files in the experts directory and installed plugin packages.

Two sources, loaded in this order after the built-ins:

* **directory** — every ``*.py`` file directly inside ``settings.experts_dir`` (files starting with ``_`` or
  ``test_`` and ``conftest.py`` are skipped). Each ``BaseExpert`` subclass *defined* in a file is instantiated and
  registered with source ``dir:<absolute path>``. A directory expert may replace a built-in of the same id (that is
  how ``create-expert --force`` overrides one); two user experts with one id is a problem.
* **plugins** — entry points in the group ``vy_nexus.experts`` of any installed distribution. Discovery reads
  package metadata only; the plugin module is imported when the loader runs (never at import time of vy-nexus).
  An entry point names a ``BaseExpert`` subclass, an instance, or a zero-argument factory returning one or a list.
  Source: ``plugin:<distribution name>``. A plugin never replaces an expert that is already registered.

Anything that goes wrong with one file or plugin (import error, no expert inside, invalid declaration, id clash)
becomes one line in ``registry.problems`` naming the source and the cause; everything else still loads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from vy_nexus.errors import VyNexusError
from vy_nexus.experts.base import BaseExpert

if TYPE_CHECKING:
    from vy_nexus.config import Settings
    from vy_nexus.experts.registry import ExpertRegistry

ENTRY_POINT_GROUP = "vy_nexus.experts"
DIR_SOURCE_PREFIX = "dir:"
PLUGIN_SOURCE_PREFIX = "plugin:"
BUILTIN_SOURCE = "builtin"


class ExpertLoadError(VyNexusError):
    """One expert file or plugin could not be turned into experts."""


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """An entry point in the experts group, known from metadata alone (nothing imported yet)."""

    name: str
    value: str
    distribution: str
    entry_point: EntryPoint

    @property
    def source(self) -> str:
        return PLUGIN_SOURCE_PREFIX + self.distribution

    def resolve(self) -> Any:
        """Import the plugin's module and return the object the entry point names."""
        return self.entry_point.load()


@dataclass
class LoadReport:
    """What one loader run registered (expert id -> source) and what it could not load."""

    loaded: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def discover_plugins(group: str = ENTRY_POINT_GROUP) -> list[PluginSpec]:
    """Entry points in ``group`` from every distribution on ``sys.path``; reads metadata, imports nothing."""
    specs: list[PluginSpec] = []
    seen: set[tuple[str, str]] = set()
    for entry_point in entry_points(group=group):
        dist = entry_point.dist
        dist_name = dist.metadata["Name"] if dist is not None and dist.metadata["Name"] else "unknown"
        key = (dist_name, entry_point.name)
        if key in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(key)
        specs.append(PluginSpec(entry_point.name, entry_point.value, dist_name, entry_point))
    return sorted(specs, key=lambda spec: (spec.distribution, spec.name))


def expert_files(directory: Path) -> list[Path]:
    """The candidate expert modules directly inside ``directory`` (none when it does not exist)."""
    if not directory.is_dir():
        return []
    return sorted(
        path
        for path in directory.glob("*.py")
        if path.is_file() and not path.name.startswith(("_", "test_")) and path.name != "conftest.py"
    )


def module_name_for(path: Path) -> str:
    """A private, per-path module name so two homes with a ``weather.py`` each never collide in ``sys.modules``."""
    digest = hashlib.sha1(str(path.resolve()).encode("utf-8"), usedforsecurity=False).hexdigest()[:10]
    return f"vy_nexus_user_expert_{path.stem}_{digest}"


def load_module_from_file(path: Path) -> ModuleType:
    """Import one Python file as a fresh module; raise ``ExpertLoadError`` with the cause when it fails."""
    name = module_name_for(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ExpertLoadError("not an importable Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise ExpertLoadError(f"import failed: {type(exc).__name__}: {exc}") from exc
    return module


def expert_classes_in(module: ModuleType) -> list[type[BaseExpert]]:
    """Concrete ``BaseExpert`` subclasses defined in ``module`` itself (imported ones are ignored)."""
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, BaseExpert)
        and obj is not BaseExpert
        and obj.__module__ == module.__name__
        and not inspect.isabstract(obj)
    ]


def experts_from_object(obj: Any) -> list[BaseExpert]:
    """Turn what an entry point names (class, instance, factory) into expert instances."""
    if isinstance(obj, BaseExpert):
        return [obj]
    if inspect.isclass(obj):
        if not issubclass(obj, BaseExpert):
            raise ExpertLoadError(f"it names the class {obj.__name__}, which is not a BaseExpert subclass")
        if inspect.isabstract(obj):
            raise ExpertLoadError(f"it names the abstract class {obj.__name__} (is execute implemented?)")
        return [instantiate(obj)]
    if callable(obj):
        try:
            produced = obj()
        except Exception as exc:
            raise ExpertLoadError(f"its factory raised {type(exc).__name__}: {exc}") from exc
        items: Iterable[Any] = [produced] if isinstance(produced, BaseExpert) else produced
        if not isinstance(items, Iterable) or isinstance(items, str | bytes):
            raise ExpertLoadError(f"its factory returned {type(produced).__name__}, not an expert")
        experts = list(items)
        if not experts or not all(isinstance(item, BaseExpert) for item in experts):
            raise ExpertLoadError("its factory must return a BaseExpert or a non-empty list of them")
        return experts
    raise ExpertLoadError(f"it names a {type(obj).__name__}, not an expert class, instance or factory")


def instantiate(cls: type[BaseExpert]) -> BaseExpert:
    try:
        return cls()
    except Exception as exc:
        raise ExpertLoadError(f"creating {cls.__name__}() raised {type(exc).__name__}: {exc}") from exc


class ExpertLoader:
    """Loads directory and plugin experts into a registry, collecting problems instead of stopping."""

    def __init__(
        self,
        experts_dir: Path | None,
        *,
        disabled: Collection[str] = (),
        group: str = ENTRY_POINT_GROUP,
        load_directory: bool = True,
        load_plugins: bool = True,
    ) -> None:
        self.experts_dir = experts_dir
        self.disabled = frozenset(disabled)
        self.group = group
        self.load_directory = load_directory
        self.load_plugins = load_plugins

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> ExpertLoader:
        return cls(settings.experts_dir, disabled=settings.experts.disabled, **kwargs)

    def load_into(self, registry: ExpertRegistry) -> LoadReport:
        report = LoadReport()
        if self.load_directory and self.experts_dir is not None:
            for path in expert_files(self.experts_dir):
                self._load_file(path, registry, report)
        if self.load_plugins:
            for spec in discover_plugins(self.group):
                self._load_plugin(spec, registry, report)
        registry.problems.extend(report.problems)
        return report

    def _load_file(self, path: Path, registry: ExpertRegistry, report: LoadReport) -> None:
        source = DIR_SOURCE_PREFIX + str(path.resolve())
        try:
            module = load_module_from_file(path)
            classes = expert_classes_in(module)
            if not classes:
                raise ExpertLoadError("it defines no BaseExpert subclass (start helper modules' names with '_')")
            experts = [instantiate(cls) for cls in classes]
        except ExpertLoadError as exc:
            report.problems.append(f"expert file {path}: {exc}")
            return
        for expert in experts:
            self._register(expert, source, f"expert file {path}", registry, report, may_replace_builtin=True)

    def _load_plugin(self, spec: PluginSpec, registry: ExpertRegistry, report: LoadReport) -> None:
        origin = f"plugin '{spec.name}' ({spec.value}) from {spec.distribution}"
        try:
            obj = spec.resolve()
        except (Exception, SystemExit) as exc:
            report.problems.append(f"{origin}: import failed: {type(exc).__name__}: {exc}")
            return
        try:
            experts = experts_from_object(obj)
        except ExpertLoadError as exc:
            report.problems.append(f"{origin}: {exc}")
            return
        for expert in experts:
            self._register(expert, spec.source, origin, registry, report, may_replace_builtin=False)

    def _register(
        self,
        expert: BaseExpert,
        source: str,
        origin: str,
        registry: ExpertRegistry,
        report: LoadReport,
        *,
        may_replace_builtin: bool,
    ) -> None:
        expert_id = getattr(expert, "id", None)
        if expert_id in self.disabled:
            return
        replace = (
            may_replace_builtin
            and isinstance(expert_id, str)
            and expert_id in registry
            and registry.source(expert_id) == BUILTIN_SOURCE
        )
        try:
            registry.register(expert, source=source, replace=replace)
        except VyNexusError as exc:
            report.problems.append(f"{origin}: {exc}")
            return
        report.loaded[expert.id] = source
