"""create_expert: spec building, rendering, clash detection, refusals that write nothing, atomic writes."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from conftest import FakeSite
from vy_nexus.config import Settings
from vy_nexus.experts.loader import load_module_from_file
from vy_nexus.scaffold import create_expert as scaffold
from vy_nexus.scaffold.create_expert import (
    ScaffoldResult,
    build_spec,
    create_expert,
    existing_experts,
    layout,
    read_examples,
    render,
)
from vy_nexus.scaffold.naming import ScaffoldError


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its content (an absent root is empty). Bytecode caches are left out: Python
    writes them when the check imports a module, unless PYTHONDONTWRITEBYTECODE is set."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def make(settings: Settings, **kwargs: object) -> ScaffoldResult:
    options: dict[str, object] = {"name": "WeatherForecast", "capabilities": "weather,forecast"}
    options.update(kwargs)
    return create_expert(settings, **options)  # type: ignore[arg-type]


def test_build_spec_defaults() -> None:
    spec = build_spec("Weather", "weather, forecast")
    assert spec.description == "Handles weather, forecast tasks."
    assert spec.examples == ("Work on this weather", "Work on this forecast")


def test_read_examples_from_text_and_json(tmp_path: Path) -> None:
    text = tmp_path / "examples.txt"
    text.write_text("# comment\nwill it rain tomorrow\n\n  forecast   for Paris \nwill it rain tomorrow\n")
    assert read_examples(text) == ("will it rain tomorrow", "forecast for Paris")
    as_json = tmp_path / "examples.json"
    as_json.write_text(json.dumps(["a forecast", "the weather"]))
    assert read_examples(as_json) == ("a forecast", "the weather")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.txt", None, "examples file not found"),
        ("empty.txt", "# only a comment\n\n", "holds no examples"),
        ("bad.json", "[1, 2]", "JSON list of strings"),
        ("broken.json", "[", "not valid JSON"),
        ("many.txt", "\n".join(f"example {i}" for i in range(51)), "at most 50"),
        ("long.txt", "x" * 501, "at most 500"),
        ("binary.txt", b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_read_examples_refuses_bad_files(tmp_path: Path, name: str, content: str | bytes | None, message: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ScaffoldError, match=message):
        read_examples(path)


def test_render_produces_valid_python_with_the_values_quoted_safely(tmp_path: Path) -> None:
    tricky = 'Says "hi" \\ and \'bye\' """ {{ jinja }} {% raw %}'
    spec = build_spec("Tricky", "c++,node.js", description=tricky)
    files = {f.kind: f for f in render(spec, tmp_path)}
    tree = ast.parse(files["module"].content)
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    assert [c.name for c in classes] == ["TrickyExpert"]
    assigned = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in classes[0].body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    assert assigned["description"] == tricky
    assert assigned["capabilities"] == ("c++", "node.js")
    assert assigned["id"] == "tricky"
    ast.parse(files["test"].content)
    assert "YOUR LOGIC HERE" in files["module"].content
    assert tricky in files["doc"].content


def test_layout_puts_tests_and_docs_beside_the_module(tmp_path: Path) -> None:
    spec = build_spec("DataCleaner", "csv")
    assert {k: p.relative_to(tmp_path).as_posix() for k, p in layout(tmp_path, spec.name).items()} == {
        "module": "data_cleaner.py",
        "test": "tests/test_data_cleaner.py",
        "doc": "docs/experts/data-cleaner.md",
    }


def test_create_writes_three_files_that_load_as_an_expert(settings: Settings) -> None:
    result = make(settings, description="Forecasts the weather")
    assert result.directory == settings.experts_dir.resolve()
    assert result.discovered_automatically
    assert sorted(snapshot(settings.experts_dir)) == [
        "docs/experts/weather-forecast.md",
        "tests/test_weather_forecast.py",
        "weather_forecast.py",
    ]
    module = load_module_from_file(result.module_path)
    expert = module.WeatherForecastExpert()
    assert (expert.id, expert.name) == ("weather-forecast", "Weather Forecast")
    assert expert.description == "Forecasts the weather"
    assert expert.capabilities == ("weather", "forecast")
    data = result.as_dict()
    assert data["files"]["module"] == str(result.module_path)
    assert data["discovered_automatically"] is True


def test_default_examples_appear_in_the_module_and_the_doc(settings: Settings, tmp_path: Path) -> None:
    examples = tmp_path / "ex.txt"
    examples.write_text("will it rain in Oslo\n")
    result = make(settings, examples_file=examples)
    assert load_module_from_file(result.module_path).WeatherForecastExpert.examples == ("will it rain in Oslo",)
    doc = result.doc_path.read_text()
    assert "- will it rain in Oslo" in doc
    assert "vy-nexus route 'will it rain in Oslo (weather)'" in doc


def test_another_directory_is_not_discovered_automatically(settings: Settings, tmp_path: Path) -> None:
    result = make(settings, directory=tmp_path / "elsewhere")
    assert not result.discovered_automatically
    assert result.module_path == (tmp_path / "elsewhere" / "weather_forecast.py").resolve()


def test_existing_experts_lists_builtins_directory_and_plugin_names(settings: Settings, fake_site: FakeSite) -> None:
    make(settings)
    fake_site.add_distribution("vy-nexus-weather", {"meteo": "vy_nexus_not_imported:Expert"})
    known = existing_experts(settings, settings.experts_dir)
    assert known["code"] == "builtin"
    assert known["weather-forecast"].startswith("dir:")
    assert known["meteo"] == "plugin:vy-nexus-weather"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "../evil"}, "path parts"),
        ({"name": "x; rm -rf ~"}, "shell metacharacters"),
        ({"name": "lambda"}, "Python keyword"),
        ({"name": "9lives"}, "not a Python identifier"),
        ({"capabilities": " , "}, "no capabilities"),
        ({"capabilities": "ok,Bad|Cap"}, "invalid capability"),
        ({"name": "DataAnalysis"}, r"'data-analysis' already exists \(builtin\)"),
        ({"name": "general"}, "already exists"),
    ],
)
def test_refusals_write_nothing(settings: Settings, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ScaffoldError, match=message):
        make(settings, **kwargs)
    assert not settings.experts_dir.exists()


def test_an_existing_expert_needs_force_and_force_overwrites(settings: Settings) -> None:
    first = make(settings, description="first")
    before = snapshot(settings.experts_dir)
    with pytest.raises(ScaffoldError, match=r"'weather-forecast' already exists \(dir:.*--force"):
        make(settings, description="second")
    assert snapshot(settings.experts_dir) == before
    second = make(settings, description="second", force=True)
    assert set(second.overwritten) == {f.path for f in first.files}
    assert second.replaces == {"weather-forecast": f"dir:{first.module_path}"}
    assert '"second"' in second.module_path.read_text()


def test_existing_files_without_an_expert_also_need_force(settings: Settings) -> None:
    doc = settings.experts_dir / "docs" / "experts" / "weather-forecast.md"
    doc.parent.mkdir(parents=True)
    doc.write_text("my notes")
    with pytest.raises(ScaffoldError, match=r"weather-forecast\.md already exists; pass --force"):
        make(settings)
    assert snapshot(settings.experts_dir) == {"docs/experts/weather-forecast.md": b"my notes"}


def test_force_replaces_a_builtin_and_the_user_expert_wins(settings: Settings) -> None:
    from vy_nexus.system import VyNexus

    result = make(settings, name="DataAnalysis", capabilities="csv,json,sql", force=True)
    assert result.replaces == {"data-analysis": "builtin"}
    system = VyNexus(settings)
    assert system.registry.source("data-analysis") == f"dir:{result.module_path}"
    assert system.registry.problems == []


def test_an_id_defined_in_another_file_is_refused_even_with_force(settings: Settings) -> None:
    settings.experts_dir.mkdir(parents=True)
    (settings.experts_dir / "meteo.py").write_text(
        "from vy_nexus.experts.base import BaseExpert, ExpertOutput\n\n"
        "class Meteo(BaseExpert):\n"
        "    id = 'weather-forecast'\n    name = 'Meteo'\n    capabilities = ('rain',)\n\n"
        "    async def execute(self, task):\n        return ExpertOutput('sunny')\n"
    )
    before = snapshot(settings.experts_dir)
    with pytest.raises(ScaffoldError, match=r"already exists in .*meteo\.py; two files cannot define one id"):
        make(settings, force=True)
    assert snapshot(settings.experts_dir) == before


def test_a_plugin_name_clash_is_refused_without_force(settings: Settings, fake_site: FakeSite) -> None:
    fake_site.add_distribution("vy-nexus-weather", {"weather-forecast": "vy_nexus_not_imported:Expert"})
    with pytest.raises(ScaffoldError, match=r"already exists \(plugin:vy-nexus-weather\)"):
        make(settings)
    assert make(settings, force=True).replaces == {"weather-forecast": "plugin:vy-nexus-weather"}


def test_a_target_that_is_a_file_is_refused(settings: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(ScaffoldError, match="is not a directory"):
        make(settings, directory=blocker)
    with pytest.raises(ScaffoldError, match="is not a directory"):
        make(settings, directory=blocker / "sub")


def test_a_directory_in_the_way_of_a_file_is_refused(settings: Settings) -> None:
    (settings.experts_dir / "weather_forecast.py").mkdir(parents=True)
    with pytest.raises(ScaffoldError, match="is not a file"):
        make(settings, force=True)


def test_a_failed_write_restores_what_was_there(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    make(settings, description="original")
    before = snapshot(settings.experts_dir)
    real_write = scaffold.atomic_write_text
    calls: list[Path] = []

    def failing_write(path: Path, text: str, *, mode: int | None = None) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(path))
        real_write(path, text, mode=mode)

    monkeypatch.setattr(scaffold, "atomic_write_text", failing_write)
    with pytest.raises(ScaffoldError, match=r"could not write .*weather-forecast\.md: No space left on device"):
        make(settings, description="replacement", force=True)
    assert snapshot(settings.experts_dir) == before


def test_a_failed_first_write_leaves_no_new_files(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = scaffold.atomic_write_text
    calls: list[Path] = []

    def failing_write(path: Path, text: str, *, mode: int | None = None) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(13, "Permission denied", str(path))
        real_write(path, text, mode=mode)

    monkeypatch.setattr(scaffold, "atomic_write_text", failing_write)
    with pytest.raises(ScaffoldError, match="Permission denied"):
        make(settings)
    assert not settings.experts_dir.exists(), "the folders created for the files are removed too"
