"""create-expert end to end: the CLI writes an expert that imports, passes its own tests and takes routed tasks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vy_nexus.experts.loader import load_module_from_file
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

PROJECT = Path(__file__).resolve().parents[2]
PLUGIN_PKG = PROJECT / "tests" / "fixtures" / "plugin_pkg"
VENV_BIN = Path(sys.executable).parent


def cli(*args: str) -> tuple[int, str, str]:
    from vy_nexus.interfaces.cli import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def run_pytest(test_file: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Plain pytest on one file, in a fresh interpreter. Plugins installed for this project's own suites
    (schemathesis, hypothesis: seconds of imports) are not what a generated test needs, so none is autoloaded."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )


def test_help_lists_every_option_with_an_example() -> None:
    code, out, _ = cli("create-expert", "--help")
    assert code == 0
    assert "create-expert" in out
    for option in ("--name", "--capabilities", "--description", "--examples", "--dir", "--force", "--json"):
        assert option in out
    assert out.count("Example:") >= 8  # the command's own example plus one per option


def test_the_seed_check_greps_create_expert_from_the_real_command() -> None:
    exe = shutil.which("vy-nexus", path=str(VENV_BIN)) or "vy-nexus"
    done = subprocess.run([exe, "create-expert", "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.splitlines() if "create-expert" in line]


def create_weather_expert(home: Path, tmp_path: Path) -> dict[str, Any]:
    examples = tmp_path / "examples.txt"
    examples.write_text("will it rain in Oslo tomorrow\nweather forecast for the weekend\n")
    code, out, err = cli(
        "--home",
        str(home),
        "create-expert",
        "--name",
        "WeatherForecast",
        "--capabilities",
        "weather, forecast, rain",
        "--description",
        "Answers questions about the weather",
        "--examples",
        str(examples),
        "--json",
    )
    assert code == 0, err
    created: dict[str, Any] = json.loads(out)
    return created


@pytest.mark.slow  # a fresh pytest whose generated tests load the sentence encoder and fit routes: ~10 s
def test_the_generated_tests_pass_as_generated_in_a_fresh_interpreter(home: Path, tmp_path: Path) -> None:
    created = create_weather_expert(home, tmp_path)
    done = run_pytest(Path(created["files"]["test"]), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_generate_import_and_route_a_task_to_it(home: Path, tmp_path: Path) -> None:
    created = create_weather_expert(home, tmp_path)
    module_path = Path(created["files"]["module"])
    assert module_path == (home / "experts" / "weather_forecast.py").resolve()
    assert created["discovered_automatically"] is True

    # importable as generated
    module = load_module_from_file(module_path)
    assert module.WeatherForecastExpert.examples == (
        "will it rain in Oslo tomorrow",
        "weather forecast for the weekend",
    )

    # discovered from the experts directory and routed to by the gating engine on plain words
    system = VyNexus.from_home(home)
    assert system.registry.source("weather-forecast") == f"dir:{module_path}"
    decision = system.route(Task(description="Will it rain in Oslo tomorrow? I need a forecast"))
    assert decision.expert_ids == ["weather-forecast"]
    assert decision.strategy == "keyword" and not decision.fallback
    assert decision.capabilities == ["rain", "forecast"]
    result = system.run(Task(description="Will it rain in Oslo tomorrow? I need a forecast", input={"city": "Oslo"}))
    assert result.ok and result.experts == ["weather-forecast"]
    assert result.output["capabilities_mentioned"] == ["forecast", "rain"]
    assert result.output["input"] == {"kind": "object", "size": 1, "keys": ["city"]}

    # `vy-nexus experts` shows where it came from
    code, out, _ = cli("--home", str(home), "experts", "--json")
    assert code == 0
    rows = {row["id"]: row for row in json.loads(out)["experts"]}
    assert rows["weather-forecast"]["source"] == f"dir:{module_path}"


def test_human_output_and_a_dir_outside_the_experts_directory(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    args = ("--name", "Haiku", "--capabilities", "haiku", "--dir", str(target))
    code, out, err = cli("--home", str(home), "create-expert", *args)
    assert code == 0, err
    assert "created expert haiku (HaikuExpert)" in out
    assert "is not the configured experts directory" in out
    assert tree(target) == ["docs", "docs/experts", "docs/experts/haiku.md", "haiku.py", "tests", "tests/test_haiku.py"]
    assert "haiku" not in VyNexus.from_home(home).registry


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "../x", "--capabilities", "a"], "path parts"),
        (["--name", "x/../../etc", "--capabilities", "a"], "path parts"),
        (["--name", "a;rm -rf ~", "--capabilities", "a"], "shell metacharacters"),
        (["--name", "$(id)", "--capabilities", "a"], "shell metacharacters"),
        (["--name", "class", "--capabilities", "a"], "Python keyword"),
        (["--name", "42", "--capabilities", "a"], "not a Python identifier"),
        (["--name", "naïve", "--capabilities", "a"], "cannot be part of a Python identifier"),
        (["--name", "", "--capabilities", "a"], "name is empty"),
        (["--name", "DataAnalysis", "--capabilities", "csv,json,sql"], "already exists (builtin)"),
        (["--name", "Code", "--capabilities", "python"], "already exists (builtin)"),
        (["--name", "Ok", "--capabilities", ""], "no capabilities"),
        (["--name", "Ok", "--capabilities", " , "], "no capabilities"),
        (["--name", "Ok", "--capabilities", "good,B@d"], "invalid capability"),
        (["--name", "Ok", "--capabilities", "a", "--examples", "/no/such/file.txt"], "examples file not found"),
        (["--name", "Ok", "--capabilities", "a", "--description", "x" * 600], "at most 500"),
    ],
)
def test_every_refusal_is_clear_and_writes_nothing(home: Path, args: list[str], message: str) -> None:
    before = tree(home)
    code, out, err = cli("--home", str(home), "create-expert", *args)
    assert code == 2
    assert "error:" in err
    assert message in " ".join(err.split())
    assert "Traceback" not in out + err
    assert tree(home) == before


def test_an_existing_expert_needs_force(home: Path) -> None:
    args = ("--home", str(home), "create-expert", "--name", "Haiku", "--capabilities", "haiku")
    assert cli(*args)[0] == 0
    module = home / "experts" / "haiku.py"
    module.write_text(module.read_text() + "\n# my edits\n")
    code, _, err = cli(*args)
    assert code == 2 and "pass --force" in " ".join(err.split())
    assert module.read_text().endswith("# my edits\n")
    code, out, _ = cli(*args, "--force", "--json")
    assert code == 0
    assert str(module.resolve()) in json.loads(out)["overwritten"]
    assert not module.read_text().endswith("# my edits\n")


@pytest.mark.slow
def test_the_generated_module_and_test_are_mypy_strict_clean(home: Path) -> None:
    assert cli("--home", str(home), "create-expert", "--name", "DataCleaner", "--capabilities", "csv,dedupe")[0] == 0
    experts = home / "experts"
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "data_cleaner.py", "tests/test_data_cleaner.py"],
        cwd=experts,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_the_fixture_plugin_installs_with_pip_and_is_discovered(home: Path, tmp_path: Path) -> None:
    """A real `pip install` of tests/fixtures/plugin_pkg into a target dir, then a fresh `vy-nexus experts`."""
    site = tmp_path / "site"
    build = tmp_path / "build"
    shutil.copytree(PLUGIN_PKG, build)  # pip may write build files next to the project
    pip_install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    install = subprocess.run(
        [*pip_install, "--target", str(site), str(build)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    dist_info = next(site.glob("vy_nexus_example_plugin-*.dist-info"))
    project = tomllib.loads((PLUGIN_PKG / "pyproject.toml").read_text())["project"]
    assert "[vy_nexus.experts]" in (dist_info / "entry_points.txt").read_text()
    env = {**os.environ, "PYTHONPATH": str(site), "VY_NEXUS_HOME": str(home), "COLUMNS": "200"}
    code = "from vy_nexus.interfaces.cli import main; main()"
    listed = subprocess.run(
        [sys.executable, "-c", code, "experts", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    rows = {row["id"]: row for row in json.loads(listed.stdout)["experts"]}
    assert rows["unit-converter"]["source"] == f"plugin:{project['name']}"
    ran = subprocess.run(
        [sys.executable, "-c", code, "run", "convert 100 f to c", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["output"]["value"] == pytest.approx(37.7777778)


@pytest.mark.slow
def test_the_templates_ship_in_the_wheel(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    import zipfile

    names = zipfile.ZipFile(next(tmp_path.glob("vy_nexus-*.whl"))).namelist()
    for template in ("expert.py.j2", "test_expert.py.j2", "expert_doc.md.j2"):
        assert f"vy_nexus/scaffold/templates/{template}" in names
