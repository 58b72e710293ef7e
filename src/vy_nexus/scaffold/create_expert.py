"""Generate a new expert from the packaged Jinja2 templates: the module, its tests and its doc.

Layout, relative to the target directory (default ``settings.experts_dir``, i.e. ``<home>/experts``)::

    <module>.py                   the BaseExpert subclass, discovered by the loader on the next start
    tests/test_<module>.py        pytest tests that pass as generated
    docs/experts/<expert-id>.md   capabilities, inputs, outputs, example commands

Everything is validated and rendered in memory first; only then are the files written, each atomically. If a
write fails part-way, the files written so far are restored (or removed), so a refused or failed run leaves the
directory as it was.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vy_nexus import json_text
from vy_nexus.config import Settings
from vy_nexus.experts.builtin import BUILTIN_EXPERTS
from vy_nexus.experts.loader import ExpertLoader, discover_plugins
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.foundation.atomic import atomic_write_text
from vy_nexus.routing.keyword import tokenize
from vy_nexus.scaffold.naming import (
    MAX_DESCRIPTION_CHARS,
    ExpertName,
    ScaffoldError,
    check_description,
    normalise_name,
    parse_capabilities,
)

if TYPE_CHECKING:
    import jinja2

MAX_EXAMPLES = 50
MAX_EXAMPLES_FILE_BYTES = 256 * 1024
DEFAULT_EXAMPLE_COUNT = 3


@dataclass(frozen=True, slots=True)
class ExpertSpec:
    """What the user asked for, validated."""

    name: ExpertName
    capabilities: tuple[str, ...]
    description: str
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PlannedFile:
    kind: str
    path: Path
    content: str


@dataclass(frozen=True)
class ScaffoldResult:
    spec: ExpertSpec
    directory: Path
    files: tuple[PlannedFile, ...]
    overwritten: tuple[Path, ...]
    discovered_automatically: bool
    """True when ``directory`` is the configured experts directory, so vy-nexus loads the expert by itself."""
    replaces: dict[str, str] = field(default_factory=dict)
    """Existing experts (id -> source) this one overrides because of ``--force``."""

    @property
    def module_path(self) -> Path:
        return self._path("module")

    @property
    def test_path(self) -> Path:
        return self._path("test")

    @property
    def doc_path(self) -> Path:
        return self._path("doc")

    def _path(self, kind: str) -> Path:
        return next(f.path for f in self.files if f.kind == kind)

    def as_dict(self) -> dict[str, Any]:
        return {
            "expert_id": self.spec.name.expert_id,
            "class_name": self.spec.name.class_name,
            "name": self.spec.name.title,
            "capabilities": list(self.spec.capabilities),
            "description": self.spec.description,
            "examples": list(self.spec.examples),
            "directory": str(self.directory),
            "files": {f.kind: str(f.path) for f in self.files},
            "overwritten": [str(p) for p in self.overwritten],
            "replaces": self.replaces,
            "discovered_automatically": self.discovered_automatically,
        }


def layout(directory: Path, name: ExpertName) -> dict[str, Path]:
    """Where each generated file goes inside ``directory``."""
    return {
        "module": directory / f"{name.module}.py",
        "test": directory / "tests" / f"test_{name.module}.py",
        "doc": directory / "docs" / "experts" / f"{name.expert_id}.md",
    }


def read_examples(path: Path) -> tuple[str, ...]:
    """Sample requests from a file: a JSON list of strings (``.json``) or one request per line (``#`` comments)."""
    file = path.expanduser()
    if not file.is_file():
        raise ScaffoldError(f"examples file not found: {file}")
    if file.stat().st_size > MAX_EXAMPLES_FILE_BYTES:
        raise ScaffoldError(f"examples file {file} is larger than {MAX_EXAMPLES_FILE_BYTES // 1024} KiB")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScaffoldError(f"examples file {file} is not UTF-8 text") from exc
    if file.suffix.lower() == ".json":
        try:
            data = json_text.loads(text)
        except json.JSONDecodeError as exc:
            raise ScaffoldError(f"examples file {file} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            raise ScaffoldError(f"examples file {file} must hold a JSON list of strings")
        raw: list[str] = data
    else:
        raw = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    examples = tuple(dict.fromkeys(" ".join(item.split()) for item in raw if item.strip()))
    if not examples:
        raise ScaffoldError(f"examples file {file} holds no examples (one request per line)")
    if len(examples) > MAX_EXAMPLES:
        raise ScaffoldError(f"examples file {file} holds {len(examples)} examples; use at most {MAX_EXAMPLES}")
    for example in examples:
        check_description(example)
        if len(example) > MAX_DESCRIPTION_CHARS:
            raise ScaffoldError(f"example {example[:40]!r}... is longer than {MAX_DESCRIPTION_CHARS} characters")
    return examples


def build_spec(
    name: str,
    capabilities: str,
    description: str | None = None,
    examples_file: Path | None = None,
) -> ExpertSpec:
    """Validate the user's input into an ``ExpertSpec`` (raises ``ScaffoldError`` naming the first problem)."""
    expert_name = normalise_name(name)
    caps = parse_capabilities(capabilities)
    text = check_description(description) if description is not None else ""
    text = text or f"Handles {', '.join(caps)} tasks."
    examples = (
        read_examples(examples_file)
        if examples_file is not None
        else tuple(f"Work on this {cap}" for cap in caps[:DEFAULT_EXAMPLE_COUNT])  # no word of another expert
    )
    return ExpertSpec(expert_name, caps, text, examples)


def existing_experts(settings: Settings, directory: Path) -> dict[str, str]:
    """Every expert id vy-nexus would know (id -> source): built-ins, experts-directory files, plugin names.

    Experts-directory files are imported (they are the user's own code); plugins are known from their entry-point
    names alone, without importing them.
    """
    known: dict[str, str] = {cls.id: "builtin" for cls in BUILTIN_EXPERTS}
    for folder in dict.fromkeys([settings.experts_dir, directory]):
        scratch = ExpertRegistry()
        ExpertLoader(folder, load_plugins=False).load_into(scratch)
        for expert in scratch:
            known.setdefault(expert.id, scratch.source(expert.id))
    for spec in discover_plugins():
        known.setdefault(spec.name, spec.source)
    return known


def _pystr(value: str) -> str:
    """A double-quoted Python string literal (JSON string syntax is valid Python)."""
    return json.dumps(value, ensure_ascii=False)


def template_environment() -> jinja2.Environment:
    import jinja2  # imported on first use: every other CLI command starts without it

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vy_nexus.scaffold", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    filters: dict[str, Callable[[str], str]] = {"pystr": _pystr, "shquote": shlex.quote}
    env.filters.update(filters)
    return env


def render(spec: ExpertSpec, directory: Path) -> tuple[PlannedFile, ...]:
    """Render the three files in memory; the module is compiled to prove it is valid Python."""
    from vy_nexus import __version__

    paths = layout(directory, spec.name)
    context = {
        "name": spec.name,
        "capabilities": spec.capabilities,
        "description": spec.description,
        "examples": spec.examples,
        "directory": str(directory),
        "module_filename": paths["module"].name,
        "test_filename": paths["test"].name,
        "test_relpath": paths["test"].relative_to(directory).as_posix(),
        "doc_relpath": paths["doc"].relative_to(directory).as_posix(),
        "route_example": route_example(spec),
        "vy_nexus_version": __version__,
    }
    env = template_environment()
    files = (
        PlannedFile("module", paths["module"], env.get_template("expert.py.j2").render(context)),
        PlannedFile("test", paths["test"], env.get_template("test_expert.py.j2").render(context)),
        PlannedFile("doc", paths["doc"], env.get_template("expert_doc.md.j2").render(context)),
    )
    for planned in files[:2]:
        compile(planned.content, str(planned.path), "exec")
    return files


def route_example(spec: ExpertSpec) -> str:
    """The first example, with a capability appended when it names none (so the keyword router matches it)."""
    example = spec.examples[0]
    words = set(tokenize(example))
    if any(set(tokenize(cap)) <= words for cap in spec.capabilities):
        return example
    return f"{example} ({spec.capabilities[0]})"


def _check_target(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise ScaffoldError(f"the target {directory} exists and is not a directory")
    for parent in [directory, *directory.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise ScaffoldError(f"cannot create {directory}: {parent} is not a directory")
            return


def write_files(files: tuple[PlannedFile, ...]) -> None:
    """Write each file atomically; on failure put back what was there before and re-raise as ``ScaffoldError``."""
    previous = {f.path: f.path.read_bytes() if f.path.is_file() else None for f in files}
    new_dirs = sorted(
        {d for f in files for d in [f.path.parent, *f.path.parent.parents] if not d.exists()},
        key=lambda d: len(d.parts),
        reverse=True,
    )
    written: list[Path] = []
    try:
        for planned in files:
            atomic_write_text(planned.path, planned.content)
            written.append(planned.path)
    except OSError as exc:
        for path in written:
            old = previous[path]
            if old is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(old)
        for folder in new_dirs:  # deepest first; only the folders this run created, and only when empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise ScaffoldError(f"could not write {exc.filename or 'the expert files'}: {exc.strerror or exc}") from exc


def create_expert(
    settings: Settings,
    *,
    name: str,
    capabilities: str,
    description: str | None = None,
    examples_file: Path | None = None,
    directory: Path | None = None,
    force: bool = False,
) -> ScaffoldResult:
    """Validate, check for clashes, render and write a new expert. Writes nothing when anything is refused."""
    spec = build_spec(name, capabilities, description, examples_file)
    target = (directory.expanduser() if directory is not None else settings.experts_dir).resolve()
    _check_target(target)
    files = render(spec, target)
    expert_id = spec.name.expert_id
    module_path = files[0].path
    known = existing_experts(settings, target)
    replaces: dict[str, str] = {}
    if expert_id in known:
        source = known[expert_id]
        if source.startswith("dir:") and Path(source[4:]) != module_path:
            raise ScaffoldError(
                f"an expert with id '{expert_id}' already exists in {source[4:]}; two files cannot define one id, "
                "so choose another --name (or remove that file)"
            )
        if not force:
            raise ScaffoldError(
                f"an expert named '{expert_id}' already exists ({source}); choose another --name, "
                "or pass --force to replace it"
            )
        replaces[expert_id] = source
    existing = tuple(f.path for f in files if f.path.exists())
    if existing and not force:
        raise ScaffoldError(
            f"{existing[0]} already exists; pass --force to overwrite "
            f"{'it' if len(existing) == 1 else f'the {len(existing)} existing files'}"
        )
    for path in existing:
        if not path.is_file():
            raise ScaffoldError(f"{path} exists and is not a file; remove it first")
    write_files(files)
    return ScaffoldResult(
        spec=spec,
        directory=target,
        files=files,
        overwritten=existing,
        discovered_automatically=target == settings.experts_dir.resolve(),
        replaces=replaces,
    )
