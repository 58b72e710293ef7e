"""Routes: named sets of example utterances that point at an expert, read from experts and from a YAML/JSON file.

A route is plain data: ``name``, ``utterances``, the expert it sends tasks to (``target``; by default the route's
name is the expert id) and an optional ``threshold`` (the least calibrated confidence for which the route may be
chosen). Many routes may target one expert, so a user can route 150 intents to a handful of experts without
writing 150 classes. The routes file (``routing.semantic.routes_file``, relative to home) looks like::

    routes:
      - name: translate
        target: research          # optional: expert id (default: the route name)
        threshold: 0.4            # optional
        metadata: {domain: travel}
        utterances: ["how do i say hello in french", "translate 'thank you' to german"]

Labeled data for ``routes fit`` / ``routes eval`` is JSON Lines, one ``{"text": ..., "<label field>": ...}`` a line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vy_nexus import json_text
from vy_nexus.errors import ConfigError
from vy_nexus.experts.registry import ExpertRegistry

OUT_OF_SCOPE_LABEL = "oos"


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    utterances: tuple[str, ...]
    target: str | None = None
    threshold: float | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def expert_id(self) -> str:
        return self.target or self.name

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.target is not None:
            data["target"] = self.target
        if self.threshold is not None:
            data["threshold"] = self.threshold
        if self.metadata:
            data["metadata"] = dict(self.metadata)
        data["utterances"] = list(self.utterances)
        return data


@dataclass(frozen=True, slots=True)
class LabeledExample:
    text: str
    label: str
    fields: Mapping[str, str] = field(default_factory=dict)


def _route_from_data(item: Any, where: str) -> Route:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: a route must be a mapping with 'name' and 'utterances'")
    unknown = set(item) - {"name", "target", "threshold", "metadata", "utterances"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: 'name' must be a non-empty string")
    utterances = item.get("utterances", [])
    if not isinstance(utterances, list) or not all(isinstance(u, str) and u.strip() for u in utterances):
        raise ConfigError(f"{where} ('{name}'): 'utterances' must be a list of non-empty strings")
    if not utterances:
        raise ConfigError(f"{where} ('{name}'): a route needs at least one utterance")
    target = item.get("target")
    if target is not None and (not isinstance(target, str) or not target.strip()):
        raise ConfigError(f"{where} ('{name}'): 'target' must be an expert id")
    threshold = item.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0
    ):
        raise ConfigError(f"{where} ('{name}'): 'threshold' must be a number between 0 and 1")
    metadata = item.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ConfigError(f"{where} ('{name}'): 'metadata' must be a mapping")
    return Route(
        name=name.strip(),
        utterances=tuple(u.strip() for u in utterances),
        target=target.strip() if isinstance(target, str) else None,
        threshold=float(threshold) if threshold is not None else None,
        metadata={str(k): str(v) for k, v in metadata.items()},
    )


def parse_routes(data: Any, source: str) -> list[Route]:
    """Routes from the parsed content of a routes file (a mapping with ``routes``, or a bare list)."""
    items = data.get("routes") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ConfigError(f"{source}: expected a list of routes under 'routes'")
    routes = [_route_from_data(item, f"{source}: route #{i + 1}") for i, item in enumerate(items)]
    seen: set[str] = set()
    for route in routes:
        if route.name in seen:
            raise ConfigError(f"{source}: route '{route.name}' is defined twice")
        seen.add(route.name)
    return routes


def require_file(path: Path, what: str, where: str = "") -> None:
    """A ``ConfigError`` naming what is wrong unless ``path`` is a regular file: missing, a directory, or a device
    or pipe (``/dev/null``), each said as such."""
    if path.is_file():
        return
    if path.is_dir():
        raise ConfigError(f"{what} {path}{where} is a directory: name a file")
    if path.exists():
        raise ConfigError(f"{what} {path}{where} is not a regular file (a device or a pipe): name a file")
    raise ConfigError(f"{what} not found: {path}{where}")


def load_routes(path: Path) -> list[Route]:
    """Routes from a YAML (``.yaml``/``.yml``) or JSON file."""
    require_file(path, "routes file", " (routing.semantic.routes_file)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read routes file {path}: {exc}") from exc
    if path.suffix.lower() != ".json":
        return parse_routes(_parsed_yaml(text, path), str(path))
    try:
        data = json_text.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"routes file {path} cannot be parsed: {exc}") from exc
    return parse_routes(data, str(path))


def _parsed_yaml(text: str, path: Path) -> Any:
    # PyYAML loads here: the packaged routes are JSON, so a home without a routes file never loads it.
    import yaml

    from vy_nexus.yaml_reader import describe_yaml_error, load_yaml

    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"routes file {path} cannot be parsed: {describe_yaml_error(exc)}") from exc


def save_routes(path: Path, routes: Sequence[Route]) -> None:
    """Write routes as YAML or JSON (by suffix), atomically."""
    payload = {"routes": [route.as_dict() for route in routes]}
    if path.suffix.lower() == ".json":
        text = json.dumps(payload, indent=1, ensure_ascii=False)
    else:
        import yaml

        from vy_nexus.yaml_reader import SafeDumper

        text = yaml.dump(payload, Dumper=SafeDumper, sort_keys=False, allow_unicode=True, width=120)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def routes_from_experts(registry: ExpertRegistry) -> list[Route]:
    """One route per registered expert that declares ``examples``; the route is named after the expert."""
    return [
        Route(name=expert.id, utterances=tuple(expert.examples), target=expert.id)
        for expert in sorted(registry, key=lambda e: e.id)
        if expert.examples
    ]


def routes_from_declarations(registry: ExpertRegistry, routes: Iterable[Route]) -> list[Route]:
    """A route for each registered expert that no route in ``routes`` reaches, from its description and
    capabilities. Semantic routing only knows experts it has a route for, and the hybrid strategy gives an expert
    the semantic side does not know almost no weight: a hand-written expert without ``examples`` was never chosen,
    even for a task that named its capability."""
    reached = {route.expert_id for route in routes}
    declared = []
    for expert in sorted(registry, key=lambda e: e.id):
        texts = (expert.description, *expert.capabilities)
        utterances = tuple(dict.fromkeys(text.strip() for text in texts if text.strip()))
        if expert.id not in reached and utterances:
            declared.append(Route(name=expert.id, utterances=utterances, target=expert.id))
    return declared


def merge_routes(*groups: Iterable[Route]) -> list[Route]:
    """Routes by name, in first-seen order; a later route with the same name adds utterances and overrides
    target, threshold and metadata where it sets them."""
    merged: dict[str, Route] = {}
    for group in groups:
        for route in group:
            previous = merged.get(route.name)
            if previous is None:
                merged[route.name] = route
                continue
            merged[route.name] = Route(
                name=route.name,
                utterances=tuple(dict.fromkeys([*previous.utterances, *route.utterances])),
                target=route.target if route.target is not None else previous.target,
                threshold=route.threshold if route.threshold is not None else previous.threshold,
                metadata={**previous.metadata, **route.metadata},
            )
    return list(merged.values())


def check_targets(routes: Iterable[Route], registry: ExpertRegistry, source: str) -> None:
    """Every route must send tasks to a registered expert."""
    for route in routes:
        if route.expert_id not in registry:
            known = ", ".join(sorted(e.id for e in registry)) or "none registered"
            raise ConfigError(
                f"{source}: route '{route.name}' targets unknown expert '{route.expert_id}'"
                f" (set its 'target' to one of: {known})"
            )


def routes_fingerprint(routes: Sequence[Route]) -> str:
    """Changes whenever a route's name or utterances change (what a fitted model depends on)."""
    digest = hashlib.blake2b(digest_size=12)
    for route in routes:
        digest.update(route.name.encode("utf-8") + b"\x00")
        for utterance in route.utterances:
            digest.update(utterance.encode("utf-8") + b"\x01")
        digest.update(b"\x02")
    return digest.hexdigest()


def json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """The objects of a JSON Lines file with their line numbers; blank lines skipped, any other damage named."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{path}:{number}: not UTF-8 text (byte {exc.start} of the line)") from exc
            if not line.strip():
                continue
            try:
                row = json_text.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc
            except RecursionError:
                raise ConfigError(f"{path}:{number}: JSON nested too deeply") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{number}: each line must be a JSON object")
            yield number, row


def required_text(row: dict[str, Any], name: str, where: str, role: str) -> str:
    """``row[name]`` stripped; absent, blank or not a string is an error that says which of the three it is."""
    value = row.get(name)
    if value is None:
        raise ConfigError(f"{where}: missing {role} field '{name}'")
    if not isinstance(value, str):
        raise ConfigError(f"{where}: field '{name}' must be a string, not {type(value).__name__} ({value!r})")
    if not value.strip():
        raise ConfigError(f"{where}: {role} field '{name}' is empty")
    return value.strip()


def read_labeled(path: Path, label_field: str = "intent", text_field: str = "text") -> list[LabeledExample]:
    """Labeled examples from a JSON Lines file; every line needs ``text_field`` and ``label_field``."""
    require_file(path, "labeled data file")
    examples: list[LabeledExample] = []
    for number, row in json_lines(path):
        where = f"{path}:{number}"
        text = required_text(row, text_field, where, "text")
        label = required_text(row, label_field, where, "label")
        fields = {str(k): str(v) for k, v in row.items() if k != text_field and isinstance(v, str)}
        examples.append(LabeledExample(text=text, label=label, fields=fields))
    if not examples:
        raise ConfigError(f"labeled data file {path} holds no examples")
    return examples


def routes_from_labeled(examples: Iterable[LabeledExample], oos_label: str = OUT_OF_SCOPE_LABEL) -> list[Route]:
    """One route per label (out-of-scope examples excluded). A field whose value is the same for every example of
    a label (e.g. the ``domain`` of an ``intent``) is kept as route metadata, so evaluation can map routes to it."""
    texts: dict[str, list[str]] = {}
    shared: dict[str, dict[str, str]] = {}
    for example in examples:
        if example.label == oos_label:
            continue
        texts.setdefault(example.label, []).append(example.text)
        fields = {k: v for k, v in example.fields.items() if v != example.label}
        if example.label not in shared:
            shared[example.label] = dict(fields)
        else:
            kept = shared[example.label]
            for key in list(kept):
                if fields.get(key) != kept[key]:
                    del kept[key]
    return [
        Route(name=label, utterances=tuple(dict.fromkeys(utterances)), metadata=shared[label])
        for label, utterances in texts.items()
    ]
