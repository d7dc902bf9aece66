"""The database handle: engines, transactions and migrations, for SQLite and PostgreSQL alike.

SQLite allows one writer at a time. Rather than let several connections race for its lock (and busy-wait),
crongraph gives it exactly one writer connection, guarded by an asyncio lock: writes queue fairly inside the
process, and reads run beside them on their own connections under WAL. SQLite statements on a local file take
tens of microseconds, far less than a hop to a worker thread and back, so on SQLite they run inline on the event
loop through `InlineConnection`, which has the awaitable shape of SQLAlchemy's AsyncConnection that the
repositories use. On PostgreSQL both roles share one asyncio pool (psycopg); reads and single statements run in
autocommit, since under READ COMMITTED every statement takes its own snapshot anyway and BEGIN and ROLLBACK around
them would be two more round trips each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from crongraph import serde

_MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Statements run on the event loop: never wait long for a lock another process holds.
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _driver_transactions_off(dbapi_connection: Any, _record: Any) -> None:
    # Python's sqlite3 module (3.11) opens a transaction itself, and only before INSERT/UPDATE/DELETE: a SAVEPOINT
    # issued first then starts a transaction of its own that its RELEASE commits, so a transaction whose first
    # write sat in a savepoint committed that part alone (a kill -9 between the two left a backfill's first run
    # without its fire-log row). The driver is told to stay out, and SQLAlchemy's "begin" event says BEGIN.
    dbapi_connection.isolation_level = None


def _begin_immediate(conn: Connection) -> None:
    # IMMEDIATE: the write lock is taken at BEGIN, so a transaction that reads first cannot be refused the lock
    # when it comes to write (SQLITE_BUSY on upgrade), and what it read stays true until it commits.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def to_async_url(url: str) -> str:
    """Accept the URLs users write (postgresql://, postgres://) and pick the async driver we ship."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class InlineConnection:
    """A synchronous SQLAlchemy connection with the awaitable methods the repositories call."""

    def __init__(self, conn: Connection) -> None:
        self.sync_connection = conn
        self.dialect = conn.dialect  # as AsyncConnection has it: repositories branch on `conn.dialect.name`

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self.sync_connection.execute(statement, parameters)

    async def exec_driver_sql(self, sql: str, parameters: Any = None) -> Any:
        return self.sync_connection.exec_driver_sql(sql, parameters)

    async def run_sync(self, fn: Any, *args: Any) -> Any:
        return fn(self.sync_connection, *args)

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        with self.sync_connection.begin_nested():
            yield


class WriterGuard(Protocol):
    """A lock shared with other processes writing the same SQLite file, taken around each write transaction
    (queue/workers/write_lock.py: the server and its execution workers)."""

    async def acquire(self) -> None: ...

    def release(self) -> None: ...


class Database:
    def __init__(self, url: str, writer_guard: WriterGuard | None = None) -> None:
        self.url = to_async_url(url)
        self._writer_guard = writer_guard
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        common: dict[str, Any] = {
            "json_serializer": serde.dumps_str,
            "json_deserializer": serde.loads,
        }
        if self.dialect == "sqlite":
            sync_url = self.url.replace("sqlite+aiosqlite://", "sqlite://")
            self._sync_writer = create_engine(sync_url, pool_size=1, max_overflow=0, **common)
            self._sync_reader = create_engine(sync_url, pool_size=8, max_overflow=32, **common)
            for engine in (self._sync_writer, self._sync_reader):
                event.listen(engine, "connect", _sqlite_pragmas)
            # The writer's transactions are exactly its `begin()` blocks, savepoints included; readers keep the
            # driver's behaviour (each SELECT sees the latest commit, no BEGIN/ROLLBACK around it).
            event.listen(self._sync_writer, "connect", _driver_transactions_off)
            event.listen(self._sync_writer, "begin", _begin_immediate)
            self._write_lock = asyncio.Lock()
            self._writer_connection: Connection | None = None
        else:
            # LIFO: the next statement goes to the most recently used connection, on which psycopg has most likely
            # prepared it already (prepared statements are per connection). FIFO rotated through every connection,
            # and after a drain's burst of checkouts through fresh ones, each parsing and planning anew (PostgreSQL's
            # CPU a runs.wait 2.5 -> 1.5 ms, benchmarks/runs.py --compare crongraph crongraph-pg).
            self.writer = create_async_engine(self.url, pool_size=10, max_overflow=20, pool_use_lifo=True, **common)
            # The same pool; a connection checked out here is in autocommit until it is returned.
            self._autocommit = self.writer.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction on the writer: committed on success, rolled back on any exception."""
        if self.dialect == "sqlite":
            async with self._write_lock:
                guard = self._writer_guard
                if guard is not None:
                    await guard.acquire()
                try:
                    sync_conn = self._writer()
                    with sync_conn.begin():
                        yield InlineConnection(sync_conn)  # type: ignore[misc]
                finally:
                    if guard is not None:
                        guard.release()
            return
        async with self.writer.begin() as conn:
            yield conn

    def _writer(self) -> Connection:
        """SQLite's one writer connection, kept for the life of the process: checking it out of a pool per
        transaction costs more than most of the transactions themselves."""
        if self._writer_connection is None:
            self._writer_connection = self._sync_writer.connect()
        return self._writer_connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        if self.dialect == "sqlite":
            with self._sync_reader.connect() as sync_conn:
                yield InlineConnection(sync_conn)  # type: ignore[misc]
            return
        async with self._autocommit.connect() as conn:
            yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection whose every statement commits on its own (PostgreSQL: one round trip per statement, no
        BEGIN/COMMIT). For a write that is one statement; on SQLite it is a transaction on the writer."""
        if self.dialect == "sqlite":
            async with self.write() as conn:
                yield conn
            return
        async with self._autocommit.connect() as conn:
            yield conn

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent; safe for replicas starting together on
        PostgreSQL, where the migration holds an advisory lock)."""
        if self.dialect == "sqlite":
            sync_conn = self._writer()
            with sync_conn.begin():
                _upgrade(sync_conn)
            return
        async with self.writer.begin() as conn:
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(774201)")
            await conn.run_sync(_upgrade)

    async def dispose(self) -> None:
        if self.dialect == "sqlite":
            if self._writer_connection is not None:
                self._writer_connection.close()
                self._writer_connection = None
            self._sync_writer.dispose()
            self._sync_reader.dispose()
        else:
            await self.writer.dispose()


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
