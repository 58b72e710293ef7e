"""The static command table behind `vy-nexus --help` (catalog.py) against the commands the modules really define, and
the root help page drawn from it."""

from __future__ import annotations

import inspect

from typer.testing import CliRunner

from vy_nexus.interfaces.cli import app
from vy_nexus.interfaces.cli.catalog import COMMANDS
from vy_nexus.interfaces.cli.lazy_group import module_commands

runner = CliRunner()


def first_paragraph(text: str | None) -> str:
    return " ".join(inspect.cleandoc(text or "").split("\n\n")[0].split())


def test_catalog_names_every_command_each_module_defines_with_its_help() -> None:
    modules = {entry.module for entry in COMMANDS}
    defined = {module: module_commands(module) for module in modules}
    for module, commands in defined.items():
        listed = {entry.name for entry in COMMANDS if entry.module == module}
        assert set(commands) == listed, f"{module} defines {sorted(commands)}, the catalog lists {sorted(listed)}"
    for entry in COMMANDS:
        command = defined[entry.module][entry.name]
        assert first_paragraph(command.help) == entry.help, f"the catalog's help for {entry.name} is stale"
    assert len({entry.name for entry in COMMANDS}) == len(COMMANDS)


def panel_rows(page: str, title: str) -> dict[str, str]:
    """A help panel's rows: the first word of a row, and the rest of the row with its wrapped lines joined."""
    lines = page.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(f"╭─ {title} "))
    rows: dict[str, str] = {}
    name = ""
    for line in lines[start + 1 :]:
        if line.startswith("╰"):
            break
        cells = line.removeprefix("│ ").removesuffix("│")
        if not cells.startswith(" "):
            name, _, cells = cells.partition(" ")
            rows[name] = ""
        rows[name] = " ".join([*rows[name].split(), *cells.split()])
    return rows


def test_root_help_lists_every_command_with_its_one_line_help() -> None:
    for columns in ("200", "80"):
        result = runner.invoke(app, ["--help"], env={"COLUMNS": columns})
        assert result.exit_code == 0
        assert result.stdout.startswith("\n Usage: vy-nexus [OPTIONS] COMMAND [ARGS]...")
        assert panel_rows(result.stdout, "Commands") == {entry.name: entry.help for entry in COMMANDS}
        options = panel_rows(result.stdout, "Options")
        assert list(options) == ["--home", "--version", "--server", "--help"]
        assert options["--home"].startswith("<str> Home directory") and "[env var: VY_NEXUS_HOME]" in options["--home"]


def test_root_help_wraps_inside_its_panels_at_60_columns() -> None:
    result = runner.invoke(app, [], env={"COLUMNS": "60"})
    assert "Usage: " in result.output and "create-expert" in result.output
    panel_lines = [line for line in result.output.splitlines() if line.startswith(("│", "╭", "╰"))]
    assert panel_lines and all(len(line) == 60 for line in panel_lines)


def test_a_command_loads_with_its_own_help_and_options() -> None:
    result = runner.invoke(app, ["route", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--experts" in result.stdout and "Runs nothing" in result.stdout
    result = runner.invoke(app, ["routes", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "train" in result.stdout and "rollback" in result.stdout


def test_an_unknown_command_suggests_the_close_ones() -> None:
    result = runner.invoke(app, ["rout", "x"])
    assert result.exit_code == 2
    assert "No such command 'rout'" in result.output and "'route'" in result.output and "'routes'" in result.output
    result = runner.invoke(app, ["zzzz"])
    assert result.exit_code == 2 and "No such command 'zzzz'" in result.output and "Did you mean" not in result.output
