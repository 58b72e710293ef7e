"""The expert loader: experts-directory files and ``vy_nexus.experts`` entry-point plugins."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from textwrap import dedent

import pytest
from typer.testing import CliRunner

from conftest import FakeSite
from vy_nexus.config import Settings
from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.experts.loader import (
    ENTRY_POINT_GROUP,
    ExpertLoader,
    ExpertLoadError,
    discover_plugins,
    expert_files,
    experts_from_object,
    load_module_from_file,
    module_name_for,
)
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.interfaces.cli import app
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

PLUGIN_PKG = Path(__file__).resolve().parents[1] / "fixtures" / "plugin_pkg"


def expert_source(expert_id: str, capabilities: tuple[str, ...] = ("widget",), class_name: str = "WidgetExpert") -> str:
    return dedent(
        f"""
        from vy_nexus.experts.base import BaseExpert, ExpertOutput
        from vy_nexus.tasks import Task


        class {class_name}(BaseExpert):
            id = {expert_id!r}
            name = "Widget"
            capabilities = {capabilities!r}

            async def execute(self, task: Task) -> ExpertOutput:
                return ExpertOutput({{"echo": task.description}}, confidence=0.9)
        """
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def install_example_plugin(site: FakeSite) -> None:
    """The fixture package as pip would lay it out: the package plus a dist-info with its real entry points."""
    project = tomllib.loads((PLUGIN_PKG / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    site.add_package_tree(PLUGIN_PKG / "src" / "vy_nexus_example_plugin")
    site.add_distribution(project["name"], project["entry-points"][ENTRY_POINT_GROUP], version=project["version"])


class Echo(BaseExpert):
    id = "echo"
    name = "Echo"
    capabilities = ("echo",)

    async def execute(self, task: Task) -> ExpertOutput:
        return ExpertOutput(task.description)


# --- experts directory -------------------------------------------------------------------------------------------


def test_expert_files_skips_private_test_and_missing(tmp_path: Path) -> None:
    for name in ("b.py", "a.py", "_helper.py", "test_a.py", "conftest.py", "notes.txt"):
        write(tmp_path / name, "")
    (tmp_path / "dir.py").mkdir()
    assert [p.name for p in expert_files(tmp_path)] == ["a.py", "b.py"]
    assert expert_files(tmp_path / "missing") == []


def test_directory_experts_are_registered_with_their_source(tmp_path: Path) -> None:
    path = write(tmp_path / "widget.py", expert_source("widget"))
    registry = ExpertRegistry()
    report = ExpertLoader(tmp_path, load_plugins=False).load_into(registry)
    assert report.loaded == {"widget": f"dir:{path.resolve()}"}
    assert registry.source("widget") == f"dir:{path.resolve()}"
    assert registry.by_capability("widget") == {"widget"}
    assert registry.problems == []


def test_a_broken_file_is_reported_and_the_others_still_load(tmp_path: Path) -> None:
    write(tmp_path / "a_broken.py", "def oops(:\n")
    write(tmp_path / "b_raises.py", "raise RuntimeError('no database')\n")
    write(tmp_path / "c_exits.py", "import sys\nsys.exit(3)\n")
    write(tmp_path / "d_empty.py", "VALUE = 1\n")
    write(tmp_path / "e_badid.py", expert_source("Bad Id"))
    write(tmp_path / "z_good.py", expert_source("widget"))
    registry = ExpertRegistry()
    ExpertLoader(tmp_path, load_plugins=False).load_into(registry)
    assert "widget" in registry
    problems = "\n".join(registry.problems)
    assert len(registry.problems) == 5, problems
    assert "a_broken.py: import failed: SyntaxError" in problems
    assert "b_raises.py: import failed: RuntimeError: no database" in problems
    assert "c_exits.py: import failed: SystemExit: 3" in problems
    assert "d_empty.py: it defines no BaseExpert subclass" in problems
    assert "e_badid.py: expert WidgetExpert has an invalid id 'Bad Id'" in problems
    assert not [name for name in sys.modules if name.startswith("vy_nexus_user_expert_a_broken")]


def test_imported_experts_are_not_registered_twice(tmp_path: Path) -> None:
    write(tmp_path / "reexport.py", "from vy_nexus.experts.builtin.general import GeneralExpert\n")
    registry = ExpertRegistry()
    ExpertLoader(tmp_path, load_plugins=False).load_into(registry)
    assert len(registry) == 0
    assert "defines no BaseExpert subclass" in registry.problems[0]


def test_a_directory_expert_overrides_a_builtin_but_not_another_user_expert(settings: Settings) -> None:
    first = write(settings.experts_dir / "a.py", expert_source("general", ("chat",), "MyGeneral"))
    write(settings.experts_dir / "b.py", expert_source("general", ("chat",), "OtherGeneral"))
    system = VyNexus(settings)
    assert system.registry.source("general") == f"dir:{first.resolve()}"
    assert type(system.registry.get("general")).__name__ == "MyGeneral"
    assert len(system.registry.problems) == 1
    assert "b.py" in system.registry.problems[0]
    assert "already registered (from dir:" in system.registry.problems[0]


def test_disabled_experts_are_skipped(home: Path) -> None:
    write(home / "config.yaml", "experts:\n  disabled: [widget]\n")
    write(home / "experts" / "widget.py", expert_source("widget"))
    system = VyNexus.from_home(home)
    assert "widget" not in system.registry
    assert system.registry.problems == []


def test_load_plugins_false_skips_the_directory_and_plugins(settings: Settings, fake_site: FakeSite) -> None:
    write(settings.experts_dir / "widget.py", expert_source("widget"))
    install_example_plugin(fake_site)
    system = VyNexus(settings, load_plugins=False)
    assert "widget" not in system.registry
    assert "unit-converter" not in system.registry
    system.load_experts(plugins=False)
    assert "widget" in system.registry
    assert "unit-converter" not in system.registry


def test_same_file_name_in_two_homes_gets_two_module_names(tmp_path: Path) -> None:
    one = write(tmp_path / "one" / "widget.py", expert_source("widget-one"))
    two = write(tmp_path / "two" / "widget.py", expert_source("widget-two"))
    assert module_name_for(one) != module_name_for(two)
    assert load_module_from_file(one).WidgetExpert.id == "widget-one"
    assert load_module_from_file(two).WidgetExpert.id == "widget-two"


def test_load_module_from_a_non_python_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExpertLoadError, match="not an importable Python module"):
        load_module_from_file(write(tmp_path / "data.txt", "x"))


# --- plugins -----------------------------------------------------------------------------------------------------


def test_the_example_plugin_is_discovered_through_importlib_metadata(fake_site: FakeSite, settings: Settings) -> None:
    install_example_plugin(fake_site)
    specs = [s for s in discover_plugins() if s.distribution == "vy-nexus-example-plugin"]
    assert [(s.name, s.value) for s in specs] == [("unit-converter", "vy_nexus_example_plugin:UnitConverterExpert")]
    assert "vy_nexus_example_plugin" not in sys.modules, "discovery must not import the plugin"
    system = VyNexus(settings)
    assert system.registry.source("unit-converter") == "plugin:vy-nexus-example-plugin"
    result = system.run(Task(description="please convert 10 km to miles"))
    assert result.experts == ["unit-converter"]
    assert result.output["value"] == pytest.approx(6.2137119, rel=1e-6)


def test_a_broken_plugin_is_reported_and_the_rest_load(fake_site: FakeSite, settings: Settings) -> None:
    install_example_plugin(fake_site)
    fake_site.add_distribution(
        "vy-nexus-broken-plugins",
        {
            "ghost": "vy_nexus_no_such_module:Expert",
            "explodes": "explodes_on_import:Expert",
            "missing-attr": "plain_module:Nope",
            "not-an-expert": "plain_module:NOT_AN_EXPERT",
            "wrong-class": "plain_module:NotAnExpert",
            "bad-factory": "plain_module:bad_factory",
            "clash": "plain_module:CodeClash",
        },
        modules={
            "explodes_on_import": "raise ImportError('needs libfoo')\n",
            "plain_module": dedent(
                """
                from vy_nexus.experts.base import BaseExpert, ExpertOutput

                NOT_AN_EXPERT = 42

                class NotAnExpert:
                    pass

                def bad_factory():
                    return ["not an expert"]

                class CodeClash(BaseExpert):
                    id = "code"
                    name = "Impostor"
                    capabilities = ("code",)

                    async def execute(self, task):
                        return ExpertOutput("hijacked")
                """
            ),
        },
    )
    system = VyNexus(settings)
    assert system.registry.source("unit-converter") == "plugin:vy-nexus-example-plugin"
    assert system.registry.source("code") == "builtin"
    problems = {p.split("'")[1]: p for p in system.registry.problems}
    expected = {"ghost", "explodes", "missing-attr", "not-an-expert", "wrong-class", "bad-factory", "clash"}
    assert set(problems) == expected
    assert "No module named 'vy_nexus_no_such_module'" in problems["ghost"]
    assert "from vy-nexus-broken-plugins" in problems["ghost"]
    assert "ImportError: needs libfoo" in problems["explodes"]
    assert "AttributeError" in problems["missing-attr"]
    assert "names a int" in problems["not-an-expert"]
    assert "not a BaseExpert subclass" in problems["wrong-class"]
    assert "non-empty list" in problems["bad-factory"]
    assert "already registered (from builtin)" in problems["clash"]


def test_experts_cli_shows_sources_and_problems(fake_site: FakeSite, home: Path) -> None:
    install_example_plugin(fake_site)
    fake_site.add_distribution("vy-nexus-ghost", {"ghost": "vy_nexus_no_such_module:Expert"})
    widget = write(home / "experts" / "widget.py", expert_source("widget"))
    result = CliRunner().invoke(app, ["--home", str(home), "experts", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    sources = {row["id"]: row["source"] for row in data["experts"]}
    assert sources["widget"] == f"dir:{widget.resolve()}"
    assert sources["unit-converter"] == "plugin:vy-nexus-example-plugin"
    assert sources["general"] == "builtin"
    assert len(data["problems"]) == 1 and "ghost" in data["problems"][0]


@pytest.mark.parametrize(
    ("obj", "ids"),
    [
        (Echo, ["echo"]),
        (Echo(), ["echo"]),
        (lambda: Echo(), ["echo"]),
        (lambda: [Echo(), Echo()], ["echo", "echo"]),
    ],
)
def test_experts_from_object_accepts_classes_instances_and_factories(obj: object, ids: list[str]) -> None:
    assert [e.id for e in experts_from_object(obj)] == ids


def _raises() -> BaseExpert:
    raise RuntimeError("factory down")


class Abstract(BaseExpert):
    id = "abstract"
    name = "Abstract"
    capabilities = ("x",)


class FailsToInit(Echo):
    def __init__(self) -> None:
        raise ValueError("needs an API key")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (int, "not a BaseExpert subclass"),
        (Abstract, "abstract class Abstract"),
        (FailsToInit, "creating FailsToInit() raised ValueError: needs an API key"),
        (_raises, "factory raised RuntimeError: factory down"),
        (lambda: 3, "factory returned int"),
        (lambda: "text", "factory returned str"),
        (lambda: [], "non-empty list"),
        ("text", "names a str"),
    ],
)
def test_experts_from_object_refuses_everything_else(obj: object, message: str) -> None:
    with pytest.raises(ExpertLoadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        experts_from_object(obj)


def test_the_hand_written_example_in_the_docs_works(settings: Settings) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "experts.md").read_text(encoding="utf-8")
    example = doc.split("```python\n", 1)[1].split("```", 1)[0]
    write(settings.experts_dir / "shouting.py", example)
    system = VyNexus(settings)
    assert system.registry.problems == []
    result = system.run(Task(description="shout this", input="hello"))
    assert result.experts == ["shouting"]
    assert result.output == {"summary": "HELLO"}
    refused = system.run(Task(description="shout this", input="  "))
    assert "nothing to shout" in (refused.results[0].error or "")
