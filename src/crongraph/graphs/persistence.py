"""LangGraph's own savers for thread state and the store, opened for the chosen backend.

SQLite: each saver gets its own file beside crongraph.db (checkpoints.db, store.db), so that graph state writes
never queue behind crongraph's single writer connection. PostgreSQL: both live in the one database.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.store.base import BaseStore
from langgraph.store.sqlite.aio import AsyncSqliteStore


class SqliteSaver(AsyncSqliteSaver):
    """AsyncSqliteSaver plus the two operations the server needs that it lacks: deleting what given runs wrote
    (rollback) and copying a thread."""

    async def adelete_for_runs(self, run_ids: Any) -> None:
        ids = list(run_ids)
        if not ids:
            return
        await self.setup()
        marks = ",".join("?" for _ in ids)
        async with self.lock:
            await self.conn.execute(
                "DELETE FROM writes WHERE (thread_id, checkpoint_ns, checkpoint_id) IN (SELECT thread_id, "
                f"checkpoint_ns, checkpoint_id FROM checkpoints WHERE json_extract(CAST(metadata AS TEXT), "
                f"'$.run_id') IN ({marks}))",
                ids,
            )
            await self.conn.execute(
                f"DELETE FROM checkpoints WHERE json_extract(CAST(metadata AS TEXT), '$.run_id') IN ({marks})",
                ids,
            )
            await self.conn.commit()

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self.setup()
        async with self.lock:
            for table in ("checkpoints", "writes"):
                cursor = await self.conn.execute(f"SELECT * FROM {table} LIMIT 0")
                columns = [d[0] for d in cursor.description]
                rest = ", ".join(c for c in columns if c != "thread_id")
                await self.conn.execute(
                    f"INSERT INTO {table} (thread_id, {rest}) SELECT ?, {rest} FROM {table} WHERE thread_id = ?",
                    (target_thread_id, source_thread_id),
                )
            await self.conn.commit()


@dataclass
class Persistence:
    checkpointer: BaseCheckpointSaver[Any]
    store: BaseStore
    _stack: AsyncExitStack

    async def close(self) -> None:
        await self._stack.aclose()


async def _sqlite_connection(stack: AsyncExitStack, path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(str(path), isolation_level=None)
    stack.push_async_callback(conn.close)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute("PRAGMA busy_timeout=30000")
    # The savers commit themselves; autocommit mode must be off for them.
    conn.isolation_level = ""
    return conn


async def open_sqlite(data_dir: Path) -> Persistence:
    stack = AsyncExitStack()
    try:
        saver = SqliteSaver(await _sqlite_connection(stack, data_dir / "checkpoints.db"))
        await saver.setup()
        store = AsyncSqliteStore(await _sqlite_connection(stack, data_dir / "store.db"))
        await store.setup()
    except BaseException:
        await stack.aclose()
        raise
    return Persistence(saver, store, stack)


async def open_postgres(url: str) -> Persistence:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.store.postgres.aio import AsyncPostgresStore
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    stack = AsyncExitStack()
    try:
        pool = AsyncConnectionPool(
            plain,
            min_size=1,
            max_size=20,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        )
        await pool.open()
        stack.push_async_callback(pool.close)
        saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        store = AsyncPostgresStore(pool)  # type: ignore[arg-type]
        # Replicas may start together: serialize the savers' own migrations.
        async with pool.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(774202)")
            try:
                await saver.setup()
                await store.setup()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(774202)")
    except BaseException:
        await stack.aclose()
        raise
    return Persistence(saver, store, stack)
