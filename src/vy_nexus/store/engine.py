"""Opening the store's database: an SQLite file in the home by default, PostgreSQL (or any SQLAlchemy URL) by config.

SQLite runs in WAL mode with ``synchronous=NORMAL`` (a commit survives a process crash; only a power loss can take
the last transactions) and a busy timeout, so a server, workers and CLI runs can share one file. A file that is
not a database is moved aside with a warning and a new one is started: the tasks it held are lost, every later
task is not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError

from vy_nexus.errors import StoreError
from vy_nexus.foundation.atomic import move_database_aside
from vy_nexus.foundation.sqlite_wal import enable_wal
from vy_nexus.store.schema import RETIRED_INDEXES, SCHEMA_VERSION, metadata, schema_info

Warn = Callable[[str], None]


def log_warning(message: str) -> None:
    """Where a store's warnings go when its owner names no other place: the ``vy_nexus.store`` logger, which a
    CLI command without logging configured prints to stderr. A warning (a damaged database moved aside) must never
    be dropped."""
    logging.getLogger("vy_nexus.store").warning("%s", message)


def normalise_url(url: str) -> str:
    """``postgresql://`` means the psycopg (3) driver, the one vy-nexus depends on."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    enable_wal(dbapi_connection)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def parse_url(url: str) -> URL:
    try:
        return make_url(normalise_url(url))
    except ArgumentError as exc:
        raise StoreError(f"store.url is not a database URL: {url!r}") from exc


def create_engine(url: str) -> sa.Engine:
    url = normalise_url(url)
    parsed = parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise StoreError(f"no database driver for {redact(url)}: {exc}") from exc


def sqlite_path(url: str) -> Path | None:
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _create_schema(engine: sa.Engine) -> None:
    """Create what is missing. Processes starting together race to create the tables; the loser sees "already
    exists" (or a duplicate key in PostgreSQL's catalog) and simply looks again."""
    for attempt in range(5):
        try:
            _create_schema_once(engine)
            return
        except DatabaseError as exc:
            raced = "already exists" in str(exc) or "duplicate key" in str(exc) or "UNIQUE constraint" in str(exc)
            if not raced or attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def _stored_version(conn: sa.Connection) -> int | None:
    """The task store's schema version as recorded in the database, or None where none is (a new database)."""
    if not sa.inspect(conn).has_table(schema_info.name):
        return None
    row = conn.execute(sa.select(schema_info.c.version).where(schema_info.c.name == "tasks")).first()
    return None if row is None else int(row.version)


def _create_schema_once(engine: sa.Engine) -> None:
    # The version is checked before anything is created: a store of a newer vy-nexus is left exactly as it is (its
    # tables may have other names and shapes than ours), not given tables of an older layout beside its own.
    with engine.connect() as conn:
        version = _stored_version(conn)
    if version is not None and version > SCHEMA_VERSION:
        raise StoreError(
            f"the task store has schema version {version}, newer than this vy-nexus understands"
            f" ({SCHEMA_VERSION}); upgrade vy-nexus"
        )
    metadata.create_all(engine)
    with engine.begin() as conn:
        for index in RETIRED_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")
        if conn.execute(sa.select(schema_info.c.version).where(schema_info.c.name == "tasks")).first() is None:
            conn.execute(sa.insert(schema_info).values(name="tasks", version=SCHEMA_VERSION))


def open_database(url: str, warn: Warn) -> sa.Engine:
    """An engine with the schema in place; a damaged SQLite file is replaced (see the module docstring)."""
    path = sqlite_path(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the task store folder {path.parent}: {exc.strerror}") from exc
        if path.is_dir():
            raise StoreError(f"the task store {path} is a directory, not a database file")
    engine = create_engine(url)
    try:
        _create_schema(engine)
    except StoreError:  # a newer schema: nothing of this engine is kept
        engine.dispose()
        raise
    except DatabaseError as exc:
        engine.dispose()
        damaged = "not a database" in str(exc) or "malformed" in str(exc)
        if path is None or not damaged:
            raise StoreError(f"cannot open the task store at {redact(url)}: {exc.orig}") from exc
        aside = move_database_aside(path)
        warn(f"the task store {path} was damaged; moved it to {aside.name} and started a new one")
        engine = create_engine(url)
        _create_schema(engine)
    return engine
