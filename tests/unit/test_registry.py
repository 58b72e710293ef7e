from __future__ import annotations

import threading

import pytest

from spine_experts import make_expert
from vy_nexus.errors import ExpertRegistrationError, UnknownExpertError
from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.tasks import Task


def test_register_get_list_and_index() -> None:
    registry = ExpertRegistry()
    registry.register(make_expert("alpha", ("csv", "json"), priority=1))
    registry.register(make_expert("beta", ("json",), task_types=("data",)), source="dir:/x.py")
    assert registry.get("alpha").id == "alpha"
    assert [e.id for e in registry.list()] == ["alpha", "beta"]
    assert registry.by_capability("JSON") == {"alpha", "beta"}
    assert registry.by_task_type("data") == {"beta"}
    assert registry.source("beta") == "dir:/x.py"
    assert "alpha" in registry and len(registry) == 2
    assert registry.stats()["by_source"] == {"builtin": 1, "dir": 1}


def test_version_changes_on_every_change_and_listeners_hear() -> None:
    registry = ExpertRegistry()
    heard: list[tuple[str, str]] = []
    registry.on_change(lambda action, expert_id: heard.append((action, expert_id)))
    v0 = registry.version
    registry.register(make_expert("alpha", ("csv",)))
    v1 = registry.version
    registry.register(make_expert("alpha", ("tsv",)), replace=True)
    v2 = registry.version
    registry.unregister("alpha")
    assert v0 < v1 < v2 < registry.version
    assert heard == [("registered", "alpha"), ("updated", "alpha"), ("unregistered", "alpha")]
    assert registry.by_capability("csv") == frozenset()
    assert registry.capabilities() == frozenset()


def test_duplicate_is_a_clear_error() -> None:
    registry = ExpertRegistry()
    registry.register(make_expert("alpha", ("csv",)))
    with pytest.raises(ExpertRegistrationError, match="already registered"):
        registry.register(make_expert("alpha", ("csv",)))


def test_unknown_expert_suggests_a_name() -> None:
    registry = ExpertRegistry()
    registry.register(make_expert("research", ("find",)))
    with pytest.raises(UnknownExpertError, match="did you mean 'research'"):
        registry.get("reserch")
    with pytest.raises(UnknownExpertError):
        registry.unregister("nobody")
    with pytest.raises(UnknownExpertError):
        registry.source("nobody")


@pytest.mark.parametrize(
    ("expert_id", "name", "caps", "message"),
    [
        ("Bad Id", "n", ("x",), "invalid id"),
        ("ok", "  ", ("x",), "no name"),
        ("ok", "n", (), "no capabilities"),
        ("ok", "n", ("UPPER",), "invalid capability"),
    ],
)
def test_invalid_declarations(expert_id: str, name: str, caps: tuple[str, ...], message: str) -> None:
    class Broken(BaseExpert):
        async def execute(self, task: Task) -> ExpertOutput:
            return ExpertOutput(None)

    Broken.id = expert_id
    Broken.name = name
    Broken.capabilities = caps
    with pytest.raises(ExpertRegistrationError, match=message):
        ExpertRegistry().register(Broken())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("capabilities", "invoice", r"capabilities must be a tuple of strings, not 'invoice': write \('invoice',\)"),
        ("examples", "check my invoice", r"examples must be a tuple of strings, not 'check my invoice'"),
        ("task_types", ("invoice", 3), r"task_types must be a tuple of strings, not \('invoice', 3\)"),
        ("description", 42, "description must be a string"),
    ],
)
def test_a_declaration_of_the_wrong_type_is_named_not_read_letter_by_letter(
    field: str, value: object, message: str
) -> None:
    # Before, a string of capabilities said "declares no capabilities", and a string of examples became one route
    # utterance per character.
    class Broken(BaseExpert):
        id = "broken"
        name = "Broken"
        capabilities = ("invoice",)

        async def execute(self, task: Task) -> ExpertOutput:
            return ExpertOutput(None)

    setattr(Broken, field, value)
    with pytest.raises(ExpertRegistrationError, match=message):
        ExpertRegistry().register(Broken())


def test_concurrent_registration_is_consistent() -> None:
    registry = ExpertRegistry()

    def worker(start: int) -> None:
        for i in range(start, start + 200):
            registry.register(make_expert(f"e{i}", ("shared", f"cap{i}")))

    threads = [threading.Thread(target=worker, args=(n * 200,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(registry) == 800
    assert len(registry.by_capability("shared")) == 800
    assert registry.version == 800
