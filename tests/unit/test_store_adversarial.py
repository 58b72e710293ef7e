"""The task store and its expert-call ledger against databases an operator might point them at by mistake."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from vy_nexus.errors import StoreError
from vy_nexus.store import SqlTaskStore
from vy_nexus.store.calls import CallLedger


def newer_store(path: Path) -> str:
    """A store written by a newer vy-nexus: schema version 2, with a table of its own and none of ours."""
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE schema_info (name VARCHAR(64) PRIMARY KEY, version INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO schema_info VALUES ('tasks', 2)")
        conn.exec_driver_sql("CREATE TABLE tasks_v2 (id TEXT PRIMARY KEY)")
    engine.dispose()
    return url


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("opener", [CallLedger, SqlTaskStore], ids=["ledger", "task-store"])
def test_a_store_of_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path, opener: type) -> None:
    url = newer_store(tmp_path / "tasks.db")
    with pytest.raises(StoreError, match=r"schema version 2, newer than this vy-nexus understands \(1\)"):
        opener(url).open()
    assert tables(url) == {"schema_info", "tasks_v2"}  # none of an older layout's tables were added beside its own


def test_a_new_store_is_still_created_with_its_version(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    CallLedger(url).open().close()
    CallLedger(url).open().close()  # opened again: the version row is not inserted twice
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT name, version FROM schema_info").all() == [("tasks", 1)]
    engine.dispose()


def test_a_store_the_user_may_only_read_is_refused_when_checked_not_at_every_call(pg_url: str) -> None:
    CallLedger(pg_url).open().close()  # the schema, made by its owner
    role = f"vy_reader_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    reader = CallLedger(pg_url.replace("postgres@", f"{role}@")).open()  # opening only reads: it succeeds
    try:
        with pytest.raises(StoreError, match=r"cannot write to the task store at .*: permission denied for table"):
            reader.check_writable()
        owner = CallLedger(pg_url).open()
        try:
            owner.check_writable()  # the owner may: nothing raised, and the probe left nothing behind
            assert owner.get("", "") is None
        finally:
            owner.close()
    finally:
        reader.close()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()
