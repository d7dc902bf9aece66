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

Cost: a checkpoint write is one statement, sent alone in autocommit: the fence, the blobs, the checkpoint (or a
task's writes) as data-modifying CTEs of one INSERT, with the rows as arrays (unnest). One statement is one
transaction, so the share lock is held until the rows are committed and nothing needs BEGIN or COMMIT; where the
writes went as five statements behind BEGIN and before COMMIT (one pipelined round trip each), PostgreSQL now
parses, plans and commits one. LangGraph's own aput/aput_writes still decide what is written (which channels go
to blobs, the metadata, upsert or insert of writes): they run against a recording cursor, and what they recorded
is merged. A statement the merge does not know (a newer LangGraph) is sent as LangGraph wrote it, in a pipelined
transaction behind the fence statement (_FENCE, which fails in SQL: with no running row to lock it divides by
zero, so the inserts after it are never applied).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncCursor, errors
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")


class LeaseLost(RuntimeError):
    """The run this checkpoint belongs to is no longer running here: the write is refused."""


# The fallback's fence: an error (division by zero) unless the run's row is still running; the share lock is held
# until commit.
_FENCE = (
    "WITH fence AS (SELECT 1 FROM runs WHERE run_id = %s AND status = 'running' FOR SHARE) "
    "SELECT 1 / (SELECT count(*) FROM fence)"
)
# The merged statement's fence: the row, share-locked until the statement's own commit; every insert selects its
# rows only if it exists, and the statement returns whether it did.
_FENCE_CTE = "fence AS (SELECT 1 FROM runs WHERE run_id = %s AND status = 'running' FOR SHARE)"
# LangGraph's checkpoint statements: one row of placeholders, optionally an ON CONFLICT clause.
_INSERT = re.compile(
    r"^\s*INSERT INTO (\w+) \(([\w\s,]+)\)\s*VALUES\s*\(([%s,\s]+)\)\s*(ON CONFLICT\b.*?)?;?\s*$",
    re.DOTALL | re.IGNORECASE,
)
# The columns of LangGraph's three checkpoint tables and their types, for the arrays unnest() takes. A statement
# naming any other column is not merged.
_COLUMN_TYPES = {
    "thread_id": "text",
    "checkpoint_ns": "text",
    "checkpoint_id": "text",
    "parent_checkpoint_id": "text",
    "type": "text",
    "checkpoint": "jsonb",
    "metadata": "jsonb",
    "channel": "text",
    "version": "text",
    "blob": "bytea",
    "task_id": "text",
    "task_path": "text",
    "idx": "integer",
}

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


@dataclass
class _Recorder:
    """Stands in for a cursor while LangGraph's aput/aput_writes run: keeps what they would execute, as (query,
    rows), rows being one tuple of parameters per execution."""

    statements: list[tuple[str, list[Sequence[Any]]]] = field(default_factory=list)

    async def execute(self, query: str, params: Sequence[Any] | None = None, **_: Any) -> _Recorder:
        self.statements.append((query, [tuple(params or ())]))
        return self

    async def executemany(self, query: str, params_seq: Any, **_: Any) -> None:
        self.statements.append((query, [tuple(p) for p in params_seq]))


# Set while LangGraph's write methods run: _cursor() then hands out this recorder instead of a connection.
_recording: ContextVar[_Recorder | None] = ContextVar("crongraph_checkpoint_recording", default=None)


def merge(
    statements: Sequence[tuple[str, Sequence[Sequence[Any]]]], run_id: str | None
) -> tuple[str, list[Any]] | None:
    """One statement doing what `statements` (INSERTs of one row of placeholders each, with their rows) do, fenced
    by `run_id`'s row when given: (sql, params), the sql returning one row {"fenced": rows locked, 0 = refused}.
    None when a statement has another shape or names a column this module does not know."""
    parts: list[str] = []
    params: list[Any] = [run_id] if run_id is not None else []
    for i, (query, rows) in enumerate(statements):
        found = _INSERT.match(query)
        if found is None:
            return None
        table, columns, placeholders, conflict = found.groups()
        names = [c.strip() for c in columns.split(",")]
        if any(n not in _COLUMN_TYPES for n in names) or placeholders.count("%s") != len(names):
            return None
        if not rows:
            continue
        if any(len(row) != len(names) for row in rows):
            return None
        kept = _last_per_key(rows, names, conflict or "")
        if kept is None:
            return None
        rows = kept
        arrays = ", ".join(f"%s::{_COLUMN_TYPES[n]}[]" for n in names)
        where = " WHERE EXISTS (SELECT FROM fence)" if run_id is not None else ""
        parts.append(
            f"w{i} AS (INSERT INTO {table} ({', '.join(names)}) SELECT * FROM unnest({arrays}) AS v({', '.join(names)})"
            f"{where} {conflict or ''})"
        )
        params.extend(list(column) for column in zip(*rows, strict=True))
    ctes = ([_FENCE_CTE] if run_id is not None else []) + parts
    result = "SELECT count(*) AS fenced FROM fence" if run_id is not None else "SELECT 1 AS fenced"
    return (f"WITH {', '.join(ctes)} {result}" if ctes else result), params


_DO_UPDATE = re.compile(r"ON CONFLICT\s*\(([\w\s,]+)\)\s*DO UPDATE", re.IGNORECASE)


def _last_per_key(rows: Sequence[Sequence[Any]], names: list[str], conflict: str) -> Sequence[Sequence[Any]] | None:
    """The rows an upsert keeps when executed one by one (the last per conflict key): one INSERT may not update
    the same row twice. None when the conflict key names a column the rows do not have."""
    found = _DO_UPDATE.search(conflict)
    if found is None or len(rows) < 2:
        return rows
    columns = [c.strip() for c in found.group(1).split(",")]
    if any(c not in names for c in columns):
        return None
    key = [names.index(c) for c in columns]
    last: dict[tuple[Any, ...], Sequence[Any]] = {}
    for row in rows:
        last[tuple(row[i] for i in key)] = row
    return list(last.values())


class PostgresSaver(AsyncPostgresSaver):
    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        recorder = _recording.get()
        if recorder is not None:
            yield recorder  # type: ignore[misc]  # only execute/executemany are called by the write methods
            return
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

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        if not isinstance(self.conn, AsyncConnectionPool) or self.pipe is not None:
            return await super().aput(config, checkpoint, metadata, new_versions)
        recorder = _Recorder()
        token = _recording.set(recorder)
        try:
            next_config = await super().aput(config, checkpoint, metadata, new_versions)
        finally:
            _recording.reset(token)
        await self._write(recorder, _run_of(config))
        return next_config

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        if not isinstance(self.conn, AsyncConnectionPool) or self.pipe is not None:
            await super().aput_writes(config, writes, task_id, task_path)
            return
        recorder = _Recorder()
        token = _recording.set(recorder)
        try:
            await super().aput_writes(config, writes, task_id, task_path)
        finally:
            _recording.reset(token)
        await self._write(recorder, _run_of(config))

    async def _write(self, recorder: _Recorder, run_id: str | None) -> None:
        """Send what LangGraph's write method recorded: merged into one statement, or else as recorded behind the
        fence in one pipelined transaction. Raises LeaseLost when `run_id` is given and no longer running."""
        if not any(rows for _, rows in recorder.statements):
            return
        assert isinstance(self.conn, AsyncConnectionPool)
        merged = merge(recorder.statements, run_id)
        async with self.conn.connection() as conn:
            if merged is not None:
                sql, params = merged
                async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    await cur.execute(sql, params)
                    row = await cur.fetchone()
                if run_id is not None and not (row and row["fenced"]):
                    raise LeaseLost(f"run {run_id} is no longer running here; its checkpoint write was refused")
                return
            try:
                # Without pipeline support (libpq < 14) the same statements go one by one.
                async with (
                    conn.pipeline() if self.supports_pipeline else nullcontext(),
                    conn.transaction(),
                    conn.cursor(binary=True, row_factory=dict_row) as cur,
                ):
                    if run_id is not None:
                        await cur.execute(_FENCE, (run_id,))
                    for query, rows in recorder.statements:
                        if rows:
                            await cur.executemany(query, rows)
            except errors.DivisionByZero:
                raise LeaseLost(f"run {run_id} is no longer running here; its checkpoint write was refused") from None

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
