"""LangGraph's AsyncPostgresSaver, as the server uses it: on a connection pool, without the process-wide lock, and
with the two operations the server needs that it lacks: deleting what given runs wrote (rollback) and copying a
thread.

AsyncPostgresSaver serializes every statement of the process behind one asyncio lock, even when it is given a
pool. A pool never hands one connection to two callers, so the lock only makes the runs of a replica wait for
each other's checkpoint writes; LangGraph's own Postgres store already skips it for pools, and so does this saver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")

_DELETE_RUN_WRITES = """
DELETE FROM checkpoint_writes w USING checkpoints c
WHERE c.metadata->>'run_id' = ANY(%(runs)s)
  AND w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id
"""
_DELETE_RUN_CHECKPOINTS = "DELETE FROM checkpoints WHERE metadata->>'run_id' = ANY(%(runs)s) RETURNING thread_id"
# Blobs are shared by checkpoints (keyed by channel version): drop those no remaining checkpoint refers to.
_DELETE_ORPHAN_BLOBS = """
DELETE FROM checkpoint_blobs b
WHERE b.thread_id = ANY(%(threads)s) AND NOT EXISTS (
  SELECT 1 FROM checkpoints c
  WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
    AND c.checkpoint->'channel_versions'->>b.channel = b.version)
"""


class PostgresSaver(AsyncPostgresSaver):
    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        if not isinstance(self.conn, AsyncConnectionPool) or self.pipe is not None:
            async with super()._cursor(pipeline=pipeline) as cur:
                yield cur
            return
        async with self.conn.connection() as conn:
            if pipeline and self.supports_pipeline:
                async with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            elif pipeline:
                async with conn.transaction(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            else:
                async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        ids = [str(r) for r in run_ids]
        if not ids:
            return
        async with self._cursor() as cur, cur.connection.transaction():
            await cur.execute(_DELETE_RUN_WRITES, {"runs": ids})
            await cur.execute(_DELETE_RUN_CHECKPOINTS, {"runs": ids})
            threads = sorted({row["thread_id"] for row in await cur.fetchall()})
            if threads:
                await cur.execute(_DELETE_ORPHAN_BLOBS, {"threads": threads})

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        async with self._cursor() as cur, cur.connection.transaction():
            for table in TABLES:
                rest = ", ".join(c for c in await _columns(cur, table) if c != "thread_id")
                await cur.execute(
                    f"INSERT INTO {table} (thread_id, {rest}) SELECT %s, {rest} FROM {table} WHERE thread_id = %s "
                    "ON CONFLICT DO NOTHING",
                    (str(target_thread_id), str(source_thread_id)),
                )


async def _columns(cur: AsyncCursor[Any], table: str) -> list[str]:
    await cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND table_schema = current_schema() "
        "ORDER BY ordinal_position",
        (table,),
    )
    return [row["column_name"] for row in await cur.fetchall()]
