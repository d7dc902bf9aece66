"""LangGraph's AsyncPostgresSaver, as the server uses it: on a connection pool, without the process-wide lock,
fenced by the run's lease, and with the two operations the server needs that it lacks: deleting what given runs
wrote (rollback) and copying a thread.

AsyncPostgresSaver serializes every statement of the process behind one asyncio lock, even when it is given a
pool. A pool never hands one connection to two callers, so the lock only makes the runs of a replica wait for
each other's checkpoint writes; LangGraph's own Postgres store already skips it for pools, and so does this saver.

Fencing: a replica that stalls (a long pause, a partition) past its lease comes back to find its run ended by
the reaper of another replica, and the thread possibly running a newer run elsewhere. Its outcome is already
dropped by the lease token (storage/runs.py); its graph's checkpoint writes must be dropped too, or they would
land on the thread's history after the newer run's. So a write made for a run (its config names the run) first
takes a share lock on the run's row, in the same transaction, and is refused unless the run is still `running`:
either the write commits before the reaper's update (which waits for the lock), or it sees the run ended. A
run is never claimed twice (crongraph does not retry a run whose worker died), so "still running" means "still
ours".

Cost: the fence, the checkpoint's writes and the transaction around them go in one psycopg pipeline, one round
trip per checkpoint instead of five (BEGIN, the fence, the inserts, COMMIT, each waited for). The fence cannot be
looked at before the inserts are sent, so it fails in SQL instead: with no running row to lock it divides by
zero, which aborts the transaction, and the inserts after it are never applied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncCursor, errors
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")

# The run whose lease fences the checkpoint write in progress in this task (None: an unfenced write, such as a
# state update through the API).
_fencing_run: ContextVar[str | None] = ContextVar("crongraph_fencing_run", default=None)
# An error (division by zero) unless the run's row is still running; the share lock is held until commit.
_FENCE = (
    "WITH fence AS (SELECT 1 FROM runs WHERE run_id = %s AND status = 'running' FOR SHARE) "
    "SELECT 1 / (SELECT count(*) FROM fence)"
)


class LeaseLost(RuntimeError):
    """The run this checkpoint belongs to is no longer running here: the write is refused."""


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
        run_id = _fencing_run.get()
        async with self.conn.connection() as conn:
            if run_id is not None:
                try:
                    # Without pipeline support (libpq < 14) the same statements go one by one.
                    async with (
                        conn.pipeline() if self.supports_pipeline else nullcontext(),
                        conn.transaction(),
                        conn.cursor(binary=True, row_factory=dict_row) as cur,
                    ):
                        await cur.execute(_FENCE, (run_id,))
                        yield cur
                except errors.DivisionByZero:
                    raise LeaseLost(
                        f"run {run_id} is no longer running here; its checkpoint write was refused"
                    ) from None
            elif pipeline and self.supports_pipeline:
                async with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            elif pipeline:
                async with conn.transaction(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            else:
                async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        token = _fencing_run.set(_run_of(config))
        try:
            return await super().aput(config, checkpoint, metadata, new_versions)
        finally:
            _fencing_run.reset(token)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        token = _fencing_run.set(_run_of(config))
        try:
            await super().aput_writes(config, writes, task_id, task_path)
        finally:
            _fencing_run.reset(token)

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


def _run_of(config: RunnableConfig) -> str | None:
    run_id = (config.get("configurable") or {}).get("run_id")
    return str(run_id) if run_id else None
