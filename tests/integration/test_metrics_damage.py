"""A damaged metrics database: readers say so clearly, the next run moves it aside and records into a new one."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from vy_nexus.interfaces.cli import app

runner = CliRunner()


def invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_damaged_metrics_database_is_reported_then_moved_aside_by_the_next_run(home: Path) -> None:
    db = home / "metrics" / "performance.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"\x00garbage, not SQLite" * 512)

    code, _, err = invoke(home, "metrics", "report")
    assert code == 6 and "is damaged" in err and "Traceback" not in err

    data = home / "sales.csv"
    data.write_text("region,units\nnorth,3\nsouth,4\n")
    code, out, _ = invoke(home, "run", "total units by region in this csv", "--input", str(data), "--json")
    assert code == 0 and json.loads(out)["experts"] == ["data-analysis"]
    asides = list(db.parent.glob("performance.db.damaged-*"))
    assert len(asides) == 1 and asides[0].read_bytes().startswith(b"\x00garbage")
    code, out, _ = invoke(home, "metrics", "report", "--json")
    assert code == 0 and json.loads(out)["tasks"]
    journal = (home / "research_logs" / "structured.jsonl").read_text(encoding="utf-8")
    assert "metrics.damaged" in journal


def test_a_directory_in_place_of_the_metrics_database_is_named_alike_by_readers_and_runs(home: Path) -> None:
    # Before: `metrics report` said the file was damaged and that the next run would move it aside; the next run
    # then failed with "cannot open the metrics database ...: unable to open database file".
    (home / "metrics" / "performance.db").mkdir(parents=True)
    data = home / "sales.csv"
    data.write_text("region,units\nnorth,3\n")
    for args in (("metrics", "report"), ("run", "total units by region in this csv", "--input", str(data))):
        code, _, err = invoke(home, *args)
        assert code == 7 and "performance.db is a directory, not a database file: remove or rename it" in err, args
