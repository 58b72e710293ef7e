"""The metrics database on SQLite: readers never create anything, text no database can hold is stored replaced, an
unreachable server is a clear error, and a reader of an append-only table misses no late commit. (Older files being
upgraded: test_metrics_schema.py; PostgreSQL: tests/integration/test_metrics_postgres.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from vy_nexus.errors import StoreError
from vy_nexus.events import Event
from vy_nexus.interfaces.cli import app
from vy_nexus.observability.metrics import MetricsCollector
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.observability.metrics_schema import executions
from vy_nexus.observability.metricsquery import build_report
from vy_nexus.observability.new_rows import NewRows


def finished(task: str, expert: str = "code", **meta: object) -> Event:
    metadata = {"duration_ms": 5.0, "success": True, "task_type": "code", **meta}
    return Event("expert.finished", "coordinator", "", task_id=task, expert_id=expert, metadata=metadata)


def test_readers_create_nothing(tmp_path: Path) -> None:
    path = tmp_path / "metrics" / "performance.db"
    report = build_report(MetricsDatabase.sqlite(path))
    assert report.experts == [] and report.processes == [] and report.database == str(path)
    assert not path.parent.exists()


def test_text_no_database_can_hold_is_stored_replaced(tmp_path: Path) -> None:
    database = MetricsDatabase.sqlite(tmp_path / "performance.db")
    collector = MetricsCollector(database)
    collector.write([finished("t1", expert="odd\udc00", success=False, error="nul\x00 here")])
    collector.close()
    with database.reading() as conn:
        assert conn is not None
        row = conn.execute(sa.select(executions.c.expert_id, executions.c.error)).one()
    assert tuple(row) == ("odd\ufffd", "nul\ufffd here")  # the refused batch, cleaned
    collector.write([Event("expert.failed", "c", "", task_id="t2", expert_id="x", metadata={"error": "a\x00b"})])
    with database.reading() as conn:
        assert conn is not None
        errors = conn.execute(sa.select(executions.c.error).where(executions.c.task_id == "t2")).scalars().all()
    assert errors == ["a\x00b"]  # SQLite holds NUL: only a refused batch is cleaned
    collector.close()


def test_an_unreachable_server_database_is_a_clear_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    url = "postgresql://postgres:secret@127.0.0.1:1/nowhere"
    with pytest.raises(StoreError, match=r"cannot open the metrics database at postgresql://postgres:\*\*\*@"):
        build_report(MetricsDatabase(url))
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "config.yaml").write_text(f"store:\n  url: {url}\n", encoding="utf-8")
    for args in (["metrics", "report"], ["logs"], ["metrics", "export"]):
        result = CliRunner().invoke(app, ["--home", str(home), *args])
        assert result.exit_code == 7, (args, result.output)
        assert "127.0.0.1:1" in result.stderr and "secret" not in result.stderr
        assert "Traceback" not in result.stderr


def test_new_rows_finds_rows_committed_after_higher_ids() -> None:
    clock = [0.0]
    reader = NewRows(horizon_seconds=10.0, clock=lambda: clock[0])
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    engine = sa.create_engine("sqlite://")
    table.create(engine)

    def commit(*ids: int) -> None:
        with engine.begin() as conn:
            conn.execute(sa.insert(table), [{"id": i} for i in ids])

    def read(largest: int) -> list[int]:
        with engine.connect() as conn:
            found = list(conn.execute(sa.select(table.c.id).where(reader.where(table.c.id, largest))).scalars())
        reader.saw(found)
        return sorted(found)

    commit(1, 2, 5, 6)  # 3 and 4 belong to a transaction still running
    assert read(6) == [1, 2, 5, 6]
    commit(3, 4, 7)
    assert read(7) == [3, 4, 7]  # the late ones, once, and the new one
    assert read(7) == []
    commit(9)  # 8 never commits (rolled back)
    assert read(9) == [9]
    clock[0] = 11.0
    assert read(9) == []
    assert reader._gaps == []  # forgotten after the horizon
    with engine.begin() as conn:
        conn.execute(sa.delete(table))  # emptied by retention: ids start again
    commit(1)
    assert read(1) == [1]


def test_retention_also_trims_the_api_table(tmp_path: Path) -> None:
    from vy_nexus.observability.metrics_retention import apply_retention

    database = MetricsDatabase.sqlite(tmp_path / "performance.db")
    with database.engine().begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO api (timestamp, route, method, status, latency_ms) VALUES (?, '/x', 'GET', 200, 1.0)",
            (time.time() - 90 * 86400,),
        )
    assert apply_retention(database, 30) == 1
    database.close()


@pytest.mark.slow  # a fresh interpreter: about a second on a shared machine
def test_the_cli_loads_sqlalchemy_only_for_commands_that_read_a_database() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from vy_nexus.interfaces.cli import app\n"
        "CliRunner().invoke(app, ['metrics', '--help'])\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert shown.stdout.strip() == "False"
