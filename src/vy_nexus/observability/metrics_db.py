"""Where the metrics live: a ``MetricsDatabase`` opens the metrics tables (metrics_schema.py) for writers and readers,
on a home's SQLite file or on the cluster's PostgreSQL, through one SQLAlchemy code path.

* Which database: ``Settings.metrics_url``: the PostgreSQL ``store.url`` when there is one (the server, every worker
  and ``vy-nexus metrics report`` then share one set of tables), else ``<home>/metrics/performance.db``.
* Writers (``engine``): SQLite in WAL mode, ``synchronous=NORMAL``, transactions that begin ``IMMEDIATE`` (a process
  waiting for another one's commit waits in the busy handler instead of failing on a stale snapshot). The schema is
  created or upgraded on first use under a write lock (PostgreSQL: an advisory lock), so processes starting together
  do not race. A file that is not an SQLite database (or is malformed) is moved aside, ``on_damage`` hears of it, and
  a new database is started: the metrics it held are lost, the ones after it are not.
* Readers (``reading``) never create or move anything: an SQLite reader opens the file read-only for each read (a
  server holds no handle on a file the next writer may move aside) and gets ``None`` while nothing is recorded; a
  damaged file is a ``StateError`` that says what happens next. A database of an older vy-nexus is upgraded first.
* After a fork (Celery's pool processes) the child opens its own connections; the parent's are left to the parent.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool, QueuePool

from vy_nexus.errors import StateError, StoreError
from vy_nexus.foundation.atomic import move_database_aside
from vy_nexus.foundation.sqlite_wal import enable_wal
from vy_nexus.observability.metrics_schema import SCHEMA_VERSION, SERVER_SCHEMA, schema_of, stored_version, upgrade
from vy_nexus.store.engine import create_engine, redact, sqlite_path

if TYPE_CHECKING:
    from vy_nexus.config import Settings

ADVISORY_LOCK = 0x76796D6574726963  # "vymetric": one key for schema changes and retention on PostgreSQL


def _damaged(exc: BaseException) -> bool:
    text = str(exc)
    return "not a database" in text or "malformed" in text


def _sqlite_writer(path: Path) -> sa.Engine:
    def connect() -> sqlite3.Connection:
        # isolation_level=None: the driver leaves transactions to SQLAlchemy, whose "begin" says BEGIN IMMEDIATE.
        connection = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
        try:
            enable_wal(connection)
            connection.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError:
            connection.close()
            raise
        return connection

    engine = sa.create_engine("sqlite://", creator=connect, poolclass=QueuePool, pool_size=1, max_overflow=2)
    sa.event.listen(engine, "begin", _begin_immediate)
    return engine


def _begin_immediate(conn: sa.Connection) -> None:
    # Straight to the driver: this runs once per written batch, and nothing else may run before it.
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute("BEGIN IMMEDIATE")


def _sqlite_reader(path: Path) -> sa.Engine:
    uri = f"{path.resolve().as_uri()}?mode=ro"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=10.0, check_same_thread=False)

    return sa.create_engine("sqlite://", creator=connect, poolclass=NullPool)


class MetricsDatabase:
    """The metrics tables of one SQLite file or one server database (see the module docstring)."""

    def __init__(self, url: str, *, on_damage: Callable[[str], None] | None = None) -> None:
        self.url = url
        self.on_damage = on_damage
        self.path = sqlite_path(url)
        """The SQLite file, or None on a server database."""
        self._engine: sa.Engine | None = None
        self._base: sa.Engine | None = None
        self._pid = os.getpid()
        self._ready = False
        self._lock = threading.RLock()
        """Guards opening: a server's writer threads and request threads share one of these."""

    @classmethod
    def sqlite(cls, path: Path, *, on_damage: Callable[[str], None] | None = None) -> MetricsDatabase:
        return cls(f"sqlite:///{path}", on_damage=on_damage)

    @classmethod
    def for_settings(cls, settings: Settings, *, on_damage: Callable[[str], None] | None = None) -> MetricsDatabase:
        return cls(settings.metrics_url, on_damage=on_damage)

    @property
    def shared(self) -> bool:
        """True on a server database (PostgreSQL), where every process of a cluster records."""
        return self.path is None

    @property
    def label(self) -> str:
        """The file, or the URL without its password: for messages."""
        return str(self.path) if self.path is not None else redact(self.url)

    # -- connections ---------------------------------------------------------------------------------------------------

    def _connected(self) -> sa.Engine:
        """The engine writers use (and readers of a server database), connected but maybe without the schema."""
        with self._lock:
            return self._connected_locked()

    def _connected_locked(self) -> sa.Engine:
        if self._pid != os.getpid():  # a forked child: the parent's connections stay the parent's
            self._pid, self._engine, self._base, self._ready = os.getpid(), None, None, False
        if self._engine is None:
            if self.path is not None:
                self._base = self._engine = _sqlite_writer(self.path)
            else:
                try:
                    self._base = create_engine(self.url)
                except StoreError as exc:
                    raise StoreError(f"cannot open the metrics database: {exc}") from exc
                self._engine = self._base.execution_options(schema_translate_map={None: SERVER_SCHEMA})
        return self._engine

    def _dispose(self) -> None:
        with self._lock:
            if self._base is not None and self._pid == os.getpid():
                self._base.dispose()
            self._base, self._engine, self._ready = None, None, False

    def _unreachable(self, exc: BaseException) -> StoreError:
        return StoreError(f"cannot open the metrics database at {self.label}: {_reason(exc)}")

    # -- writers -------------------------------------------------------------------------------------------------------

    def engine(self) -> sa.Engine:
        """The writers' engine, with the schema in place (created or upgraded on first use)."""
        with self._lock:
            self._connected_locked()
            if not self._ready:
                self._prepare()
            assert self._engine is not None
            return self._engine

    def _prepare(self) -> None:
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the metrics folder {self.path.parent}: {exc.strerror}") from exc
            self._refuse_a_directory()
        try:
            self._upgrade(self._connected())
        except (sa.exc.DBAPIError, sqlite3.DatabaseError) as exc:
            self._dispose()
            if self.path is None or not _damaged(exc):
                raise self._unreachable(exc) from exc
            aside = move_database_aside(self.path)
            if self.on_damage is not None:
                self.on_damage(
                    f"the metrics database {self.path} was damaged ({_reason(exc)}); moved it to {aside.name},"
                    " started a new one"
                )
            self._upgrade(self._connected())
        self._ready = True

    def _refuse_a_directory(self) -> None:
        """A directory where the file belongs is no damaged database to move aside (a person put it there)."""
        if self.path is not None and self.path.is_dir():
            raise StoreError(
                f"the metrics database {self.path} is a directory, not a database file: remove or rename it"
            )

    def _upgrade(self, engine: sa.Engine) -> None:
        with engine.begin() as conn:
            self.lock(conn)
            upgrade(conn)

    @staticmethod
    def lock(conn: sa.Connection) -> None:
        """Serialise this transaction with the other processes' schema changes and retention runs. SQLite's
        ``BEGIN IMMEDIATE`` already does; PostgreSQL takes a transaction-scoped advisory lock."""
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK)))

    # -- readers -------------------------------------------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[sa.Connection | None]:
        """A connection for reading, or ``None`` while nothing has been recorded (see the module docstring)."""
        if self.path is not None and not self.path.exists():
            yield None
            return
        self._refuse_a_directory()
        engine = self._connected() if self.path is None else _sqlite_reader(self.path)
        try:
            conn = self._checked(engine)
            if conn is None:
                yield None
                return
            with conn:
                try:
                    yield conn
                except sa.exc.OperationalError as exc:  # the server went away mid-read
                    raise StoreError(f"cannot read the metrics database at {self.label}: {_reason(exc)}") from exc
        finally:
            if self.path is not None:
                engine.dispose()

    def _checked(self, engine: sa.Engine) -> sa.Connection | None:
        """A connection to a database at the current schema version (upgrading an older one first), or None while it
        has no schema yet. A damaged SQLite file is a ``StateError``, an unreachable server a ``StoreError``."""
        for _attempt in range(2):
            try:
                conn = engine.connect()
                try:
                    if self._ready and self.path is None:
                        return conn
                    if self.path is not None:
                        conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
                    version = stored_version(conn)
                    conn.rollback()
                except BaseException:
                    conn.close()
                    raise
            except (sa.exc.DBAPIError, sqlite3.DatabaseError) as exc:
                if self.path is None:
                    raise self._unreachable(exc) from exc
                raise StateError(
                    f"the metrics database {self.path} is damaged ({_reason(exc)}); the next vy-nexus run that"
                    " records metrics moves it aside and starts a new one"
                ) from exc
            if version >= SCHEMA_VERSION:
                if self.path is None:
                    self._ready = True  # the schema is there: this process need not check again
                return conn
            conn.close()
            if version == 0:
                return None
            self.engine()  # written by an older vy-nexus: bring it up to date, then read
        return None

    @contextmanager
    def connection(self) -> Iterator[sa.Connection]:
        """A connection on the writers' engine without the metrics schema assumed: for the tables of others in this
        database (the shipped journal, journal_table.py). Connection trouble is a ``StoreError``."""
        try:
            conn = self._connected().connect()
        except (sa.exc.DBAPIError, sqlite3.DatabaseError) as exc:
            raise self._unreachable(exc) from exc
        with conn:
            try:
                yield conn
            except sa.exc.OperationalError as exc:
                raise StoreError(f"cannot use the database at {self.label}: {_reason(exc)}") from exc

    def close(self) -> None:
        """Release the connections (the next use opens new ones)."""
        self._dispose()


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip()


ROWS_PER_STATEMENT = 200
"""Rows per multi-row INSERT. Python's sqlite3 releases the GIL around every statement step, and each time the writer
wants it back it waits for the hot path's switch interval; one step per 200 rows instead of per row keeps the writer
from ping-ponging the GIL (it measurably slows the flow otherwise)."""


def insert_rows(conn: sa.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table`` with multi-row INSERT statements of at most
    ``ROWS_PER_STATEMENT`` rows, sent as plain driver parameters: SQLAlchemy's per-row parameter processing would
    cost more than the database's own insert, on the writer thread that shares the GIL with the flow."""
    preparer = conn.dialect.identifier_preparer
    schema = schema_of(conn)
    target = preparer.quote(table) if schema is None else f"{preparer.quote_schema(schema)}.{preparer.quote(table)}"
    head = f"INSERT INTO {target} ({', '.join(preparer.quote(name) for name in columns)}) VALUES "
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    values = "(" + ", ".join([mark] * len(columns)) + ")"
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        conn.exec_driver_sql(head + ", ".join([values] * len(chunk)), tuple(chain.from_iterable(chunk)))
