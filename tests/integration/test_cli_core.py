"""The core commands through Typer's CliRunner, against a real home directory."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from vy_nexus.interfaces.cli import app

runner = CliRunner()


def invoke(home: Path, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *args], input=input)
    return result.exit_code, result.stdout, result.stderr


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("vy-nexus ")


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    for command in ("run", "route", "experts", "status", "configure"):
        assert command in result.stdout


def test_run_json_with_csv_input(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "prices.csv"
    data.write_text("item,price\napple,1.5\npear,2.5\nplum,3.5\n")
    code, out, _ = invoke(home, "run", "compute the mean price in this csv", "--input", str(data), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["experts"] == ["data-analysis"]
    assert result["output"]["columns"]["price"]["mean"] == 2.5
    assert result["decision"]["strategy"] == "keyword"


def test_run_json_input_file_and_rich_output(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "rows.json"
    data.write_text(json.dumps([{"n": 1}, {"n": 3}]))
    code, out, _ = invoke(home, "run", "statistics please", "--input", str(data))
    assert code == 0
    assert "data-analysis" in out and "Routing decision" in out


def test_run_from_stdin(home: Path) -> None:
    code, out, _ = invoke(home, "run", "sum this data", "--input", "-", "--json", input='[{"v": 2}, {"v": 5}]')
    assert code == 0
    assert json.loads(out)["output"]["columns"]["v"]["sum"] == 7


def test_bad_input_is_a_clear_error(home: Path, tmp_path: Path) -> None:
    code, _, err = invoke(home, "run", "x", "--input", str(tmp_path / "missing.json"))
    assert code == 2 and "input file not found" in err
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    code, _, err = invoke(home, "run", "x", "--input", str(broken))
    assert code == 2 and "not valid JSON" in err
    code, _, err = invoke(home, "run", "   ")
    assert code == 2 and "description" in err
    code, _, err = invoke(home, "run", "x", "--aggregation", "median")
    assert code == 2 and "unknown aggregation" in err
    code, _, err = invoke(home, "run", "x", "--expert", "nobody")
    assert code == 2 and "no expert with id 'nobody'" in err


def test_failed_task_exits_non_zero(home: Path) -> None:
    code, out, _ = invoke(home, "run", "analyse", "--expert", "data-analysis", "--json")
    assert code == 2  # the expert refused the input: bad input
    assert "needs an input payload" in json.loads(out)["results"][0]["error"]
    code, out, _ = invoke(home, "run", "analyse", "--expert", "data-analysis")
    assert code == 2
    assert "no result: all 1 chosen expert(s) failed" in out and "needs an input payload" in out


def test_route_shows_decision(home: Path) -> None:
    code, out, _ = invoke(home, "route", "fix the bug in this python function", "--json")
    assert code == 0
    decision = json.loads(out)
    assert decision["expert_ids"] == ["code"]
    assert 0 < decision["confidences"]["code"] <= 1
    code, out, _ = invoke(home, "route", "write an essay", "-n", "2")
    assert code == 0 and "writing" in out
    code, out, _ = invoke(home, "route", "qwzx vlorp")  # no capability word at all
    assert code == 0 and "general" in out and "(out of scope) (fallback)" in out


def test_experts_and_status(home: Path) -> None:
    code, out, _ = invoke(home, "experts", "--json")
    ids = {row["id"] for row in json.loads(out)["experts"]}
    assert {"code", "research", "writing", "data-analysis", "general"} <= ids
    code, out, _ = invoke(home, "experts")
    assert code == 0 and "builtin" in out
    code, out, _ = invoke(home, "status", "--json")
    assert json.loads(out)["home"] == str(home.resolve())
    code, out, _ = invoke(home, "status")
    assert code == 0 and "reasoning_core" in out


def test_configure_roundtrip_and_errors(home: Path) -> None:
    code, out, _ = invoke(home, "configure", "routing.cache.ttl_seconds", "120", "--yes")
    assert code == 0
    code, out, _ = invoke(home, "configure", "routing.cache.ttl_seconds")
    assert json.loads(out) == 120
    code, _, err = invoke(home, "configure", "--", "routing.cache.ttl_seconds", "-5")
    assert code == 2 and "routing.cache.ttl_seconds" in err
    code, _, err = invoke(home, "configure", "no.such.key", "1")
    assert code == 2 and "unknown config key" in err


def test_bad_config_file_is_reported(home: Path) -> None:
    (home / "config.yaml").write_text("routing:\n  top_k: many\n")
    code, _, err = invoke(home, "status")
    assert code == 2 and "routing.top_k" in err and "config.yaml" in err


def test_stdin_is_read_as_bytes(home: Path, tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "t.db"
    sqlite3.connect(db).close()
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE t (v)")
    connection.close()
    result = runner.invoke(app, ["--home", str(home), "run", "sum", "--input", "-"], input=db.read_bytes())
    assert result.exit_code == 2 and "stdin is an SQLite database: pass it as a file path" in result.stderr
    code, _, err = invoke(home, "run", "sum", "--input", "-", input="[1,")
    assert code == 2 and "stdin is not valid JSON" in err


def test_every_help_paragraph_is_left_to_the_terminal_to_wrap() -> None:
    """Typer keeps a docstring's line breaks after its first paragraph; at 80 columns they cut lines in two."""
    import click

    from vy_nexus.interfaces.cli.catalog import COMMANDS
    from vy_nexus.interfaces.cli.lazy_group import module_commands

    def walk(command: click.Command) -> list[click.Command]:
        subs = getattr(command, "commands", {}).values()
        return [command, *(leaf for sub in subs for leaf in walk(sub))]

    helps = [
        c.help or ""
        for m in sorted({e.module for e in COMMANDS})
        for top in module_commands(m).values()
        for c in walk(top)
    ]
    assert len(helps) >= 20 and any("\n\n" in text for text in helps)
    broken = [text for text in helps for p in text.split("\n\n") if "\n" in p and not p.startswith("\b")]
    assert broken == []
    result = runner.invoke(app, ["logs", "--help"], env={"COLUMNS": "200"})
    assert "the journal every process of the cluster ships there (each entry names its process)" in result.output
