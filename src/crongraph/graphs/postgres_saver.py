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
parses, plans and commits one. LangGraph's own write methods still decide what is written (which channels go
to blobs, the metadata, upsert or insert of writes): its synchronous put/put_writes (the same code as
aput/aput_writes without their hop to a worker thread to serialize) run against a recording cursor, and what they
recorded is merged. A statement the merge does not know (a newer LangGraph) is sent as LangGraph wrote it, in a
pipelined transaction behind the fence statement (_FENCE, which fails in SQL: with no running row to lock it
divides by zero, so the inserts after it are never applied).

Batching: writes are sent by one flush at a time, in the order they were made; the writes made meanwhile (while
the flush lingered, or while the previous one was on its way) go together as one statement, one INSERT per kind
of row whatever the number of writes (so each shape is prepared once): each row carries its write's run, and is
inserted only if that run's row is locked running by the statement's fence, which returns the runs it locked, so
a refused write refuses only itself. If the batched statement fails (a run and an unfenced write upserting the
same row, say), each write is sent again on its own, so only a failing write sees its error.

Deferred writes, as on SQLite (sqlite_saver.py): a write made by a run (code in which `DEFER_COMMITS` is set: the
executor sets it for the run's task) returns as soon as it is queued, so the run's next step does not wait for the
round trip; a flush of deferred writes lingers up to LINGER unless someone needs them sooner, so a trivial run's
five writes go in one statement, sent when its outcome is about to be written. The executor awaits `commit_pending()`
before it commits any run's outcome, so a run is never recorded as ended before its checkpoints are; a crash can
lose the last writes only of a run that is then reaped. A deferred write refused by its fence is dropped (the
run's outcome is then refused by the lease token too); any other failure of one is raised by the next
`commit_pending()`. Reads and deletes wait for the writes queued before them, so the process reads its own writes.
Every other write (the API's state updates, thread copies) returns once it is committed, as LangGraph's does.

A run's last writes may also be committed by the statement that records its outcome (queue/executor.py): when
no flush is under way and nobody waits for a queued write, `take_writes()` hands them over and
`outcome_inserts()` makes them INSERTs of that statement, fenced by its finish under the lease token; if that
statement does not write, `put_back()` queues them again and commits them before the outcome is written another
way. Either way they commit no later than the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.postgres import PostgresSaver as _SyncSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncCursor, errors
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from crongraph.graphs.sqlite_saver import DEFER_COMMITS

TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")

log = logging.getLogger("crongraph.checkpoints")

# Longest a deferred write waits (seconds) for others to share its statement, unless someone waits for it sooner
# (commit_pending before a run's outcome, a read, a write that is not deferred): only the visibility of a running
# run's checkpoints to other connections is delayed, never a run's end.
LINGER = 0.02


class LeaseLost(RuntimeError):
    """The run this checkpoint belongs to is no longer running here: the write is refused."""


# The fallback's fence: an error (division by zero) unless the run's row is still running; the share lock is held
# until commit.
_FENCE = (
    "WITH fence AS (SELECT 1 FROM runs WHERE run_id = %s AND status = 'running' FOR SHARE) "
    "SELECT 1 / (SELECT count(*) FROM fence)"
)
# The merged statement's fence: the rows of the runs whose writes it carries, share-locked until the statement's own
# commit (in the index's order, as lease renewal locks them); every insert selects a row only if it carries no run
# or its run's row is locked here, and the statement returns the runs locked.
_FENCE_CTE = "fence AS (SELECT run_id FROM runs WHERE run_id = ANY(%s::text[]) AND status = 'running' FOR SHARE)"
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


class _Recording:
    """The saver as LangGraph's synchronous put/put_writes see it: its own attributes and methods, and a cursor
    that records into `recorder`. LangGraph's async aput/aput_writes do the same as those (what is written is
    decided by the same code) but hop to a worker thread to serialize each write; a run's small writes cost less
    serialized here, as on SQLite (sqlite_saver.py)."""

    def __init__(self, saver: PostgresSaver, recorder: _Recorder) -> None:
        self._saver = saver
        self._recorder = recorder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._saver, name)

    @contextmanager
    def _cursor(self, *, pipeline: bool = False) -> Iterator[_SyncRecorder]:
        yield _SyncRecorder(self._recorder)


@dataclass
class _SyncRecorder:
    """_Recorder's synchronous face, for LangGraph's synchronous write methods."""

    recorder: _Recorder

    def execute(self, query: str, params: Sequence[Any] | None = None, **_: Any) -> None:
        self.recorder.statements.append((query, [tuple(params or ())]))

    def executemany(self, query: str, params_seq: Any, **_: Any) -> None:
        self.recorder.statements.append((query, [tuple(p) for p in params_seq]))


def merge(
    statements: Sequence[tuple[str, Sequence[Sequence[Any]]]], run_id: str | None
) -> tuple[str, list[Any]] | None:
    """One statement doing what `statements` (INSERTs of one row of placeholders each, with their rows) do, fenced
    by `run_id`'s row when given: merge_many of this one write. None when a statement has another shape or names a
    column this module does not know."""
    return merge_many([(statements, run_id)])


# What merge_many groups a statement's rows by: (table, columns, ON CONFLICT clause).
_Kind = tuple[str, tuple[str, ...], str]


def _kind(query: str, rows: Sequence[Sequence[Any]]) -> _Kind | None:
    """The kind of rows `query` inserts, or None when merge_many cannot take it (another statement shape, a column
    this module does not know, rows that do not fit the placeholders)."""
    found = _INSERT.match(query)
    if found is None:
        return None
    table, columns, placeholders, conflict = found.groups()
    names = tuple(c.strip() for c in columns.split(","))
    if any(n not in _COLUMN_TYPES for n in names) or placeholders.count("%s") != len(names):
        return None
    if any(len(row) != len(names) for row in rows):
        return None
    return table, names, " ".join((conflict or "").split())


def merge_many(
    writes: Sequence[tuple[Sequence[tuple[str, Sequence[Sequence[Any]]]], str | None]],
) -> tuple[str, list[Any]] | None:
    """One statement doing what each of `writes` ((statements, run_id or None for an unfenced write)) does, each
    fenced by its own run's row: (sql, params), the sql returning one row {"run_id": ...} per run whose row it
    locked running; a fenced write was applied iff its run is among them. None when a statement cannot be merged.

    The statements of all writes that insert into the same table with the same columns and ON CONFLICT clause
    become one INSERT over arrays (unnest), each row tagged with its write's run: the statement's shape depends on
    which kinds of rows it carries, never on how many writes or rows, so PostgreSQL parses and plans each shape
    once (prepared) however the writes were batched. Rows keep the order of the writes, so a key repeated under
    DO NOTHING keeps its first row, as one-by-one inserts do; under DO UPDATE the last row per key and run is kept
    (one INSERT may not update a row twice). The same key under DO UPDATE from two runs (or a run and an unfenced
    write) makes the statement fail, and the caller sends each write on its own."""
    groups: dict[_Kind, list[tuple[str | None, Sequence[Any]]]] = {}
    for statements, run_id in writes:
        for query, rows in statements:
            key = _kind(query, rows)
            if key is None:
                return None
            groups.setdefault(key, []).extend((run_id, row) for row in rows)
    ctes = [_FENCE_CTE]
    params: list[Any] = [sorted({run_id for _, run_id in writes if run_id is not None})]
    for i, ((table, names, conflict), tagged) in enumerate(groups.items()):
        kept = _last_per_key(tagged, names, conflict)
        if kept is None:
            return None
        if not kept:
            continue
        arrays = ", ".join(["%s::text[]", *(f"%s::{_COLUMN_TYPES[n]}[]" for n in names)])
        ctes.append(
            f"w{i} AS (INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(f'v.{n}' for n in names)} "
            f"FROM unnest({arrays}) AS v(fenced_by, {', '.join(names)}) "
            f"WHERE v.fenced_by IS NULL OR v.fenced_by IN (SELECT run_id FROM fence) {conflict})"
        )
        params.append([run_id for run_id, _ in kept])
        params.extend(list(column) for column in zip(*(row for _, row in kept), strict=True))
    return f"WITH {', '.join(ctes)} SELECT run_id FROM fence", params


def outcome_inserts(recorders: Sequence[_Recorder]) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """The writes of one run (what take_writes returned), as INSERTs to be data-modifying CTEs of the statement
    that records the run's outcome (storage/runs.py), each inserting its rows only when that statement's CTE
    `fence` (the run's finish, fenced by its lease) has a row: (the INSERTs, with named parameters `ck<i>_<j>`,
    each RETURNING 1; their parameters). Grouped by kind of row as merge_many does, so each shape of outcome
    statement is prepared once. None when a statement cannot be merged."""
    groups: dict[_Kind, list[tuple[str | None, Sequence[Any]]]] = {}
    for recorder in recorders:
        for query, rows in recorder.statements:
            key = _kind(query, rows)
            if key is None:
                return None
            groups.setdefault(key, []).extend((None, row) for row in rows)
    inserts: list[str] = []
    params: dict[str, Any] = {}
    for i, ((table, names, conflict), tagged) in enumerate(groups.items()):
        kept = _last_per_key(tagged, names, conflict)
        if kept is None:
            return None
        if not kept:
            continue
        arrays = ", ".join(f"CAST(:ck{i}_{j} AS {_COLUMN_TYPES[n]}[])" for j, n in enumerate(names))
        inserts.append(
            f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(f'v.{n}' for n in names)} "
            f"FROM unnest({arrays}) AS v({', '.join(names)}) WHERE EXISTS (SELECT 1 FROM fence) {conflict} "
            "RETURNING 1"
        )
        columns = list(zip(*(row for _, row in kept), strict=True))
        params.update({f"ck{i}_{j}": list(column) for j, column in enumerate(columns)})
    return tuple(inserts), params


_DO_UPDATE = re.compile(r"ON CONFLICT\s*\(([\w\s,]+)\)\s*DO UPDATE", re.IGNORECASE)


def _last_per_key(
    rows: list[tuple[str | None, Sequence[Any]]], names: tuple[str, ...], conflict: str
) -> list[tuple[str | None, Sequence[Any]]] | None:
    """The (run, row) pairs an upsert keeps when executed one by one: the last per conflict key and run. None when
    the conflict key names a column the rows do not have."""
    found = _DO_UPDATE.search(conflict)
    if found is None or len(rows) < 2:
        return rows
    columns = [c.strip() for c in found.group(1).split(",")]
    if any(c not in names for c in columns):
        return None
    key = [names.index(c) for c in columns]
    last: dict[tuple[Any, ...], tuple[str | None, Sequence[Any]]] = {}
    for run_id, row in rows:
        last[(run_id, *(row[i] for i in key))] = (run_id, row)
    return list(last.values())


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
        next_config: RunnableConfig = _SyncSaver.put(
            self._recording(recorder), config, checkpoint, metadata, new_versions
        )
        await self._write(recorder, _run_of(config))
        return next_config

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        if not isinstance(self.conn, AsyncConnectionPool) or self.pipe is not None:
            await super().aput_writes(config, writes, task_id, task_path)
            return
        recorder = _Recorder()
        _SyncSaver.put_writes(self._recording(recorder), config, writes, task_id, task_path)
        await self._write(recorder, _run_of(config))

    def _recording(self, recorder: _Recorder) -> Any:
        """This saver as LangGraph's synchronous write methods take it, recording into `recorder` (_Recording)."""
        return _Recording(self, recorder)

    # Writes not sent yet, in order: (what was recorded, the run fencing it, the writer's future, or None for a
    # deferred write). The flush sending them, while one is under way. A deferred write's failure, until raised.
    _queued: list[tuple[_Recorder, str | None, asyncio.Future[None] | None]] | None = None
    _sending: asyncio.Task[None] | None = None
    _failure: BaseException | None = None
    # How many writes were queued and how many flushed (or failed), and who waits for the count to reach a mark: a
    # wait ends once the writes queued before it are done, however many are queued after it (a busy replica's
    # queue is rarely empty).
    _queued_count = 0
    _done_count = 0
    _waiters: list[tuple[int, asyncio.Future[None]]] | None = None
    # Set when a queued write must go now (a caller waits for it): the flush stops lingering.
    _kicked: asyncio.Event | None = None
    # A flush is sending writes (not only lingering).
    _in_flight = False

    async def _write(self, recorder: _Recorder, run_id: str | None) -> None:
        """Queue what LangGraph's write method recorded for the next flush (see the module's docstring); unless
        the write is deferred, return once it is committed. Raises LeaseLost when `run_id` is given and no longer
        running (a write that is not deferred)."""
        if not any(rows for _, rows in recorder.statements):
            return
        # Checked, not built: the statement is built once, for the batch the write goes in.
        if any(_kind(query, rows) is None for query, rows in recorder.statements):
            await self.wait_sent()
            await self._write_one(recorder, run_id)
            return
        deferred = run_id is not None and DEFER_COMMITS.get()
        done: asyncio.Future[None] | None = None if deferred else asyncio.get_running_loop().create_future()
        if self._queued is None:
            self._queued = []
        self._queued.append((recorder, run_id, done))
        self._queued_count += 1
        if done is not None:
            self._kick()
        if self._sending is None:
            self._sending = asyncio.get_running_loop().create_task(self._send())
        if done is not None:
            await done

    def _kick(self) -> None:
        if self._kicked is None:
            self._kicked = asyncio.Event()
        self._kicked.set()

    async def _send(self) -> None:
        try:
            while self._queued:
                await self._linger()
                batch, self._queued = self._queued, []
                if self._kicked is not None:
                    self._kicked.clear()
                if not batch:
                    break  # taken meanwhile (take_writes)
                self._in_flight = True
                try:
                    await self._flush(batch)
                finally:
                    self._in_flight = False
                    self._done_count += len(batch)
                    self._wake()
        finally:
            self._sending = None
            if self._kicked is not None:  # nothing is queued any more: the next write may linger again
                self._kicked.clear()
            for _, _, done in self._queued or []:  # only if the flush itself was cancelled (shutdown)
                if done is not None and not done.done():
                    done.cancel()
            self._done_count += len(self._queued or [])
            self._queued = None
            self._wake()

    async def _linger(self) -> None:
        """While only deferred writes are queued, wait up to LINGER for more (or for a caller to need them): a
        short run's writes then go in one statement when its outcome is about to be written, and a busy replica's
        in few."""
        if self._kicked is None:
            self._kicked = asyncio.Event()
        if self._kicked.is_set():
            return
        timer = asyncio.get_running_loop().call_later(LINGER, self._kicked.set)
        try:
            await self._kicked.wait()
        finally:
            timer.cancel()

    def _wake(self) -> None:
        waiting = self._waiters or []
        for mark, waiter in waiting:
            if mark <= self._done_count and not waiter.done():
                waiter.set_result(None)
        self._waiters = [(mark, waiter) for mark, waiter in waiting if not waiter.done()]

    async def wait_sent(self) -> None:
        """Until every write queued so far is committed (or has failed); not those queued later."""
        mark = self._queued_count
        if self._done_count >= mark:
            return
        self._kick()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append((mark, waiter))
        await waiter

    def take_writes(self, run_id: str) -> list[_Recorder] | None:
        """The deferred writes of `run_id` not sent yet, taken out of the queue for the statement that records the
        run's outcome (outcome_inserts): the run's last checkpoints then commit with its outcome, one statement
        fewer. Only when no flush is under way (an earlier write of the run may be in it, and must commit first),
        nobody waits for a queued write (a read, or a write that is not deferred: the counts they wait for stay
        true only while nobody waits) and the run has writes queued; else None, and they go as usual. Writes of
        other runs stay queued (they are fenced by other rows and go to other threads). Whoever takes them writes
        them: in the outcome's statement, or else with put_back()."""
        queued = self._queued
        if not queued or self._in_flight or any(mark > self._done_count for mark, _ in self._waiters or []):
            return None
        if any(done is not None for _, _, done in queued):
            return None
        mine = [recorder for recorder, run, _ in queued if run == run_id]
        if not mine:
            return None
        self._queued = [entry for entry in queued if entry[1] != run_id]
        self._queued_count -= len(mine)
        return mine

    async def put_back(self, recorders: Sequence[_Recorder], run_id: str) -> None:
        """Writes taken by take_writes that the outcome's statement did not write: queued again (deferred, as they
        were) and committed, as commit_pending() does, before the outcome is written another way."""
        for recorder in recorders:
            if self._queued is None:
                self._queued = []
            self._queued.append((recorder, run_id, None))
            self._queued_count += 1
        if recorders and self._sending is None:
            self._sending = asyncio.get_running_loop().create_task(self._send())
        await self.commit_pending()

    async def commit_pending(self) -> None:
        """Until every write queued so far is committed; raises the failure of a deferred write since the last
        call, if any (a refused fence is not one)."""
        await self.wait_sent()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _settle(self, done: asyncio.Future[None] | None, run_id: str | None, failure: BaseException | None) -> None:
        if done is None:
            if isinstance(failure, LeaseLost):
                log.debug("a deferred checkpoint write of run %s was refused: %s", run_id, failure)
            elif failure is not None:
                log.warning("a deferred checkpoint write of run %s failed: %s", run_id, failure)
                self._failure = failure
        elif not done.done():
            if failure is None:
                done.set_result(None)
            else:
                done.set_exception(failure)

    async def _flush(self, batch: list[tuple[_Recorder, str | None, asyncio.Future[None] | None]]) -> None:
        merged = merge_many([(recorder.statements, run_id) for recorder, run_id, _ in batch])
        if merged is not None:
            try:
                locked = await self._execute_merged(*merged)
            except Exception as exc:
                if len(batch) == 1:
                    self._settle(batch[0][2], batch[0][1], exc)
                    return
                log.debug("a batch of %d checkpoint writes failed (%s); sending each on its own", len(batch), exc)
            else:
                for _, run_id, done in batch:
                    self._settle(done, run_id, None if run_id is None or run_id in locked else _lease_lost(run_id))
                return
        for recorder, run_id, done in batch:
            try:
                await self._write_one(recorder, run_id)
            except Exception as exc:
                self._settle(done, run_id, exc)
            else:
                self._settle(done, run_id, None)

    async def _write_one(self, recorder: _Recorder, run_id: str | None) -> None:
        """One write: merged into one statement, or else as recorded behind the fence in one pipelined
        transaction. Raises LeaseLost when `run_id` is given and no longer running."""
        assert isinstance(self.conn, AsyncConnectionPool)
        merged = merge(recorder.statements, run_id)
        if merged is not None:
            if run_id is not None and run_id not in await self._execute_merged(*merged):
                raise _lease_lost(run_id)
            return
        async with self.conn.connection() as conn:
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
                raise _lease_lost(run_id) from None

    async def _execute_merged(self, sql: str, params: list[Any]) -> set[str]:
        """Send a merge_many statement (autocommit: one statement, one transaction); the runs whose fence held."""
        assert isinstance(self.conn, AsyncConnectionPool)
        async with self.conn.connection() as conn, conn.cursor(binary=True, row_factory=dict_row) as cur:
            await cur.execute(sql, params)
            return {row["run_id"] for row in await cur.fetchall()}

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        await self.wait_sent()
        return await super().aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        await self.wait_sent()
        async for item in super().alist(config, filter=filter, before=before, limit=limit):
            yield item

    async def adelete_thread(self, thread_id: str) -> None:
        await self.wait_sent()
        await super().adelete_thread(thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        ids = [str(r) for r in run_ids]
        if not ids:
            return
        await self.wait_sent()
        async with self._cursor() as cur, cur.connection.transaction():
            await cur.execute(_DELETE_RUN_WRITES, {"runs": ids})
            await cur.execute(_DELETE_RUN_CHECKPOINTS, {"runs": ids})
            threads = sorted({row["thread_id"] for row in await cur.fetchall()})
            if threads:
                await cur.execute(_DELETE_ORPHAN_BLOBS, {"threads": threads})

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self.wait_sent()
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


def _lease_lost(run_id: str | None) -> LeaseLost:
    return LeaseLost(f"run {run_id} is no longer running here; its checkpoint write was refused")


def _run_of(config: RunnableConfig) -> str | None:
    run_id = (config.get("configurable") or {}).get("run_id")
    return str(run_id) if run_id else None
