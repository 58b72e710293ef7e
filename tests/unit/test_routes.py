from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from vy_nexus.errors import ConfigError
from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.routes import (
    LabeledExample,
    Route,
    check_targets,
    load_routes,
    merge_routes,
    parse_routes,
    read_labeled,
    routes_fingerprint,
    routes_from_declarations,
    routes_from_experts,
    routes_from_labeled,
    save_routes,
)
from vy_nexus.tasks import Task

FIXTURE = Path(__file__).parents[1] / "fixtures" / "routing"


class _Travel(BaseExpert):
    id = "travel"
    name = "Travel"
    capabilities = ("flight",)
    examples: ClassVar[tuple[str, ...]] = ("book me a flight to rome", "find a hotel in paris")

    async def execute(self, task: Task) -> ExpertOutput:
        return ExpertOutput("ok")


class _Silent(_Travel):
    id = "silent"
    name = "Silent"
    examples: ClassVar[tuple[str, ...]] = ()


@pytest.fixture
def registry() -> ExpertRegistry:
    registry = ExpertRegistry()
    registry.register(_Travel())
    registry.register(_Silent())
    return registry


def test_yaml_and_json_files_load_the_same(tmp_path: Path) -> None:
    data = {
        "routes": [
            {"name": "greet", "target": "travel", "threshold": 0.4, "utterances": ["hi", "hello"]},
            {"name": "travel", "utterances": ["a trip"], "metadata": {"domain": "travel"}},
        ]
    }
    (tmp_path / "r.json").write_text(json.dumps(data))
    (tmp_path / "r.yaml").write_text("routes:\n" + "".join(f"  - {json.dumps(item)}\n" for item in data["routes"]))
    from_json, from_yaml = load_routes(tmp_path / "r.json"), load_routes(tmp_path / "r.yaml")
    assert from_json == from_yaml
    assert from_json[0] == Route("greet", ("hi", "hello"), target="travel", threshold=0.4)
    assert from_json[1].expert_id == "travel" and from_json[1].metadata == {"domain": "travel"}


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_save_then_load_round_trips(tmp_path: Path, suffix: str) -> None:
    routes = [Route("a", ("x", "y"), target="t", threshold=0.5, metadata={"d": "1"}), Route("b", ("z",))]
    path = tmp_path / f"routes{suffix}"
    save_routes(path, routes)
    assert load_routes(path) == routes


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"utterances": ["x"]}, "'name'"),
        ({"name": "a"}, "at least one utterance"),
        ({"name": "a", "utterances": "x"}, "list of non-empty strings"),
        ({"name": "a", "utterances": ["x"], "threshold": 2}, "between 0 and 1"),
        ({"name": "a", "utterances": ["x"], "threshold": True}, "between 0 and 1"),
        ({"name": "a", "utterances": ["x"], "target": 3}, "expert id"),
        ({"name": "a", "utterances": ["x"], "colour": "red"}, "unknown key(s) colour"),
        ({"name": "a", "utterances": ["x"], "metadata": []}, "'metadata'"),
        ("just a string", "a mapping"),
    ],
)
def test_bad_routes_name_the_problem(item: object, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_routes({"routes": [item]}, "routes.yaml")


def test_duplicate_and_malformed_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="defined twice"):
        parse_routes([{"name": "a", "utterances": ["x"]}, {"name": "a", "utterances": ["y"]}], "f")
    with pytest.raises(ConfigError, match="expected a list"):
        parse_routes({"routes": {"a": 1}}, "f")
    broken = tmp_path / "broken.yaml"
    broken.write_text("routes: [unclosed")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        load_routes(broken)
    repeated = tmp_path / "repeated.yaml"  # the first list of utterances would be dropped without a word
    repeated.write_text("routes:\n  - name: a\n    utterances: [x]\n    utterances: [y]\n")
    with pytest.raises(ConfigError, match="'utterances' twice"):
        load_routes(repeated)
    with pytest.raises(ConfigError, match="not found"):
        load_routes(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="is a directory: name a file"):
        load_routes(tmp_path)


def test_labeled_data_that_is_not_a_regular_file_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="labeled data file /dev/null is not a regular file"):
        read_labeled(Path("/dev/null"))
    with pytest.raises(ConfigError, match="is a directory"):
        read_labeled(tmp_path)
    with pytest.raises(ConfigError, match="labeled data file not found"):
        read_labeled(tmp_path / "missing.jsonl")


def test_expert_examples_become_routes(registry: ExpertRegistry) -> None:
    assert routes_from_experts(registry) == [
        Route("travel", ("book me a flight to rome", "find a hotel in paris"), target="travel")
    ]


def test_an_expert_no_route_reaches_is_routed_by_its_description_and_capabilities(registry: ExpertRegistry) -> None:
    class Invoices(_Silent):
        id = "invoices"
        description = "Checks invoices for missing fields. "
        capabilities = ("invoice", "invoice", "billing run")

    registry.register(Invoices())
    reached = [*routes_from_experts(registry), Route("quiet", ("shh",), target="silent")]
    assert routes_from_declarations(registry, reached) == [
        Route("invoices", ("Checks invoices for missing fields.", "invoice", "billing run"), target="invoices")
    ]
    assert [r.name for r in routes_from_declarations(registry, [])] == ["invoices", "silent", "travel"]


def test_unknown_target_is_a_clear_error(registry: ExpertRegistry) -> None:
    check_targets([Route("trip", ("x",), target="travel")], registry, "routes.yaml")
    with pytest.raises(ConfigError, match=r"route 'weather' targets unknown expert 'weather'.*silent, travel"):
        check_targets([Route("weather", ("rain?",))], registry, "routes.yaml")


def test_merge_extends_utterances_and_overrides_settings() -> None:
    merged = merge_routes(
        [Route("a", ("x",), target="t1"), Route("b", ("y",))],
        [Route("a", ("x", "z"), threshold=0.3, metadata={"k": "v"})],
    )
    assert merged == [Route("a", ("x", "z"), target="t1", threshold=0.3, metadata={"k": "v"}), Route("b", ("y",))]


def test_fingerprint_follows_names_and_utterances() -> None:
    base = [Route("a", ("x", "y"))]
    assert routes_fingerprint(base) == routes_fingerprint([Route("a", ("x", "y"), target="other", threshold=0.9)])
    assert routes_fingerprint(base) != routes_fingerprint([Route("a", ("x", "y2"))])
    assert routes_fingerprint(base) != routes_fingerprint([Route("b", ("x", "y"))])


def test_labeled_fixture_reads_and_groups_by_label() -> None:
    examples = read_labeled(FIXTURE / "train.jsonl", "intent")
    routes = routes_from_labeled(examples)
    assert len(routes) == 8 and all(len(r.utterances) == 24 for r in routes)
    translate = next(r for r in routes if r.name == "translate")
    assert translate.metadata == {"domain": "travel"}  # shared field kept, label field itself dropped
    by_domain = routes_from_labeled(read_labeled(FIXTURE / "train.jsonl", "domain"))
    assert {r.name for r in by_domain} == {"travel", "banking", "utility", "kitchen_and_dining", "home", "credit_cards"}
    travel = next(r for r in by_domain if r.name == "travel")
    assert len(travel.utterances) == 48 and "intent" not in travel.metadata  # two intents: intent is not shared


def test_metadata_that_varies_within_a_label_is_dropped() -> None:
    routes = routes_from_labeled(
        [
            LabeledExample("a", "x", {"domain": "d1", "source": "s"}),
            LabeledExample("b", "x", {"domain": "d2", "source": "s"}),
        ]
    )
    assert routes[0].metadata == {"source": "s"}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json}\n", "not valid JSON"),
        ("[1, 2]\n", "JSON object"),
        ('{"intent": "x"}\n', "missing text field"),
        ('{"text": "hi"}\n', "missing label field 'intent'"),
        ('{"text": "hi", "intent": null}\n', "missing label field 'intent'"),
        ('{"text": "hi", "intent": "  "}\n', "label field 'intent' is empty"),
        ('{"text": "", "intent": "x"}\n', "text field 'text' is empty"),
        ('{"text": "hi", "intent": 3}\n', "field 'intent' must be a string, not int"),
        ("\n\n", "holds no examples"),
    ],
)
def test_bad_labeled_data_names_the_line(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError, match=problem):
        read_labeled(path)
    with pytest.raises(ConfigError, match="not found"):
        read_labeled(tmp_path / "absent.jsonl")
