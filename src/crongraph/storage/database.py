"""The database handle: engines, transactions and migrations, for SQLite and PostgreSQL alike.

SQLite allows one writer at a time. Rather than let several connections race for its lock (and busy-wait),
crongraph gives it exactly one writer connection: writes queue fairly inside the process, and reads run beside
them on their own connections under WAL. On PostgreSQL both roles share one pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from crongraph import serde

_MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def to_async_url(url: str) -> str:
    """Accept the URLs users write (postgresql://, postgres://) and pick the async driver we ship."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    def __init__(self, url: str) -> None:
        self.url = to_async_url(url)
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        common: dict[str, Any] = {
            "json_serializer": serde.dumps_str,
            "json_deserializer": serde.loads,
        }
        if self.dialect == "sqlite":
            self.writer = create_async_engine(self.url, pool_size=1, max_overflow=0, **common)
            self.reader = create_async_engine(self.url, pool_size=4, max_overflow=4, **common)
            for engine in (self.writer, self.reader):
                event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.writer = create_async_engine(self.url, pool_size=10, max_overflow=10, **common)
            self.reader = self.writer

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        return (self.writer,) if self.reader is self.writer else (self.writer, self.reader)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction on the writer: committed on success, rolled back on any exception."""
        async with self.writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.reader.connect() as conn:
            yield conn

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent; safe for replicas starting together on
        PostgreSQL, where the migration holds an advisory lock)."""
        async with self.writer.begin() as conn:
            if self.dialect == "postgresql":
                await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(774201)")
            await conn.run_sync(_upgrade)

    async def dispose(self) -> None:
        for engine in self.engines:
            await engine.dispose()


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
