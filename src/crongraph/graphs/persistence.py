"""LangGraph's own savers for thread state and the store, opened for the chosen backend.

SQLite: each saver gets its own file beside crongraph.db (checkpoints.db, store.db), so that graph state writes
never queue behind crongraph's single writer connection; checkpoints are written inline (graphs/sqlite_saver.py).
PostgreSQL: both live in the one database.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from crongraph.graphs.sqlite_saver import InlineSqliteSaver
from crongraph.graphs.sqlite_store import UpsertingSqliteStore


@dataclass
class Persistence:
    checkpointer: BaseCheckpointSaver[Any]
    store: BaseStore
    _stack: AsyncExitStack

    async def close(self) -> None:
        await self._stack.aclose()


async def _sqlite_connection(stack: AsyncExitStack, path: Path, *, autocommit: bool) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(str(path), isolation_level=None)
    stack.push_async_callback(conn.close)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute("PRAGMA busy_timeout=30000")
    # The checkpointer relies on implicit transactions and commits itself; the store issues its own BEGIN/COMMIT
    # and fails ("cannot start a transaction within a transaction") unless the connection is in autocommit mode.
    if not autocommit:
        conn.isolation_level = ""
    return conn


async def open_sqlite(data_dir: Path) -> Persistence:
    stack = AsyncExitStack()
    try:
        saver = InlineSqliteSaver.open(data_dir / "checkpoints.db")
        stack.callback(saver.close)
        store = UpsertingSqliteStore(await _sqlite_connection(stack, data_dir / "store.db", autocommit=True))
        await store.setup()
    except BaseException:
        await stack.aclose()
        raise
    return Persistence(saver, store, stack)


async def open_postgres(url: str) -> Persistence:
    from langgraph.store.postgres.aio import AsyncPostgresStore
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    from crongraph.graphs.postgres_saver import PostgresSaver

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    stack = AsyncExitStack()
    try:
        pool = AsyncConnectionPool(
            plain,
            min_size=1,
            # Per replica; with crongraph's own pool and the notifier, a replica holds at most ~45 connections.
            max_size=12,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        )
        await pool.open()
        stack.push_async_callback(pool.close)
        saver = PostgresSaver(pool)  # type: ignore[arg-type]
        store = AsyncPostgresStore(pool)  # type: ignore[arg-type]
        # Replicas may start together: serialize the savers' own migrations. Not by waiting in pg_advisory_lock:
        # the holder's migrations run CREATE INDEX CONCURRENTLY, which waits for every open transaction, the
        # waiting statement included, while the waiter waits for the holder (a deadlock PostgreSQL cannot see,
        # since it goes through this process). Polling with short statements never holds a transaction open.
        async with pool.connection() as conn:
            while True:
                row = await (await conn.execute("SELECT pg_try_advisory_lock(774202) AS ok")).fetchone()
                if row and row["ok"]:
                    break
                await asyncio.sleep(0.05)
            try:
                await saver.setup()
                await store.setup()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(774202)")
    except BaseException:
        await stack.aclose()
        raise
    return Persistence(saver, store, stack)
