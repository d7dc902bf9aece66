"""LangGraph's SqliteSaver, served inline on the event loop.

LangGraph's AsyncSqliteSaver sends every statement to a worker thread and back; a checkpoint write on a local
WAL file takes far less time than that round trip, and a run writes several. This saver keeps LangGraph's own
SQLite schema and code (the synchronous SqliteSaver) and exposes its async methods by calling the synchronous
ones directly. It also adds what the server needs and SqliteSaver lacks: deleting what given runs wrote
(rollback) and copying a thread.

Group commit: SqliteSaver commits after every write, and a trivial run writes five times (three checkpoints, two
sets of task writes), each commit writing the same pages to the WAL again. Here a checkpoint or task write made by
a run (code in which `DEFER_COMMITS` is set: the executor sets it for the run's task, and the tasks LangGraph
starts inherit it) is recorded, not executed: its statement and parameters, built by SqliteSaver's own code, wait
in memory until the end of the loop iteration (`commit_pending`, scheduled with `call_soon`), when all the
statements recorded in that iteration run in one short transaction, one `executemany` per statement text. So
the database's write lock is held only for that flush, never while Python code of this process runs between the
writes: with execution workers, the other processes sharing `checkpoints.db` wait for the lock as briefly as
possible (holding it for a whole loop iteration made them wait 10-25% of their time). The executor calls
`commit_pending` before it commits any run's outcome, so a run is never recorded as ended before its checkpoints
are; a flush that fails is rolled back and its statements kept, so that the outcome's `commit_pending` raises
too and the run is not recorded as ended without them.

A flush never sleeps on the event loop for the lock: SQLite's busy handler sleeps 1, 2, 5, 10 … ms inline and
keeps sleeping after the holder released it, while the other processes' flushes hold it for a fraction of a
millisecond. The end-of-iteration flush and the executor's (`acommit_pending`) first ask for the lock without
waiting (`BEGIN IMMEDIATE` with no busy timeout); when another connection holds it, the statements stay recorded
and the flush is tried again RETRY_SECONDS later, the loop serving everything else meanwhile (the executor's
awaits it, so the run's outcome still waits for its checkpoints; after BUSY_TIMEOUT_MS it waits the blocking way
and raises as before). Every other write (the API's state updates, thread
copies, deletes, a rollback's deletes) first flushes what is recorded and then commits at once, as LangGraph's
saver does; every read first flushes what is recorded, so it sees every write made before it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.sqlite import SqliteSaver

log = logging.getLogger("crongraph.checkpoints")

# Set (True) while a run executes: its checkpoint writes may be committed at the end of the loop iteration.
DEFER_COMMITS: contextvars.ContextVar[bool] = contextvars.ContextVar("crongraph_defer_commits", default=False)
# How long a write waits for checkpoints.db's lock before it fails ("database is locked").
BUSY_TIMEOUT_MS = 5000
# How soon a flush that found the lock taken is tried again: another process's flush holds it for ~0.1-0.5 ms.
RETRY_SECONDS = 0.0005


class InlineSqliteSaver(SqliteSaver):
    @classmethod
    def open(cls, path: Path) -> InlineSqliteSaver:
        # isolation_level "" (implicit transactions, as LangGraph's saver expects) is missing from typeshed's Literal.
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level="")  # type: ignore[call-overload]
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        saver = cls(conn)
        saver.setup()
        return saver

    _commit_handle: asyncio.Handle | None = None
    # Set only inside `aput`/`aput_writes` of a run (DEFER_COMMITS): `cursor()` then hands out a recorder.
    _recording = False

    def __init__(self, conn: sqlite3.Connection, **kwargs: Any) -> None:
        super().__init__(conn, **kwargs)
        # Statements recorded and not yet run, by statement text, each with its parameter rows in recorded order.
        self._pending: dict[str, list[Any]] = {}

    def close(self) -> None:
        self.commit_pending()
        self.conn.close()

    @contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        """SqliteSaver's cursor. Inside a run's `aput`/`aput_writes` a recorder whose statements run at the end of
        the loop iteration; otherwise a real cursor, after what is recorded has been committed, whose writes
        (`transaction`) commit on leaving."""
        if self._recording:
            if self._commit_handle is None:
                self._commit_handle = asyncio.get_running_loop().call_soon(self._flush_soon)
            yield _Recorder(self._pending)  # type: ignore[misc]  # only execute/executemany are used by writes
            return
        if self._pending:
            self.commit_pending()
        with self.lock:
            self.setup()
            cur = self.conn.cursor()
            try:
                yield cur
            finally:
                cur.close()
                if transaction:
                    self.conn.commit()

    def commit_pending(self) -> None:
        """Run the recorded statements in one transaction and commit (none recorded: nothing happens), waiting
        for the write lock up to BUSY_TIMEOUT_MS. If that fails it is rolled back, the statements stay recorded for
        the next call, and the error is raised."""
        self._cancel_flush()
        if self._pending:
            with self.lock:
                self.setup()
                self._run_pending()

    async def acommit_pending(self) -> None:
        """`commit_pending` without sleeping on the event loop while another connection holds the write lock: tried
        again every RETRY_SECONDS, then after BUSY_TIMEOUT_MS the blocking way (which raises if it still fails)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_TIMEOUT_MS / 1000
        while self._pending and not self._try_flush():
            if loop.time() >= deadline:
                self.commit_pending()
                return
            await asyncio.sleep(RETRY_SECONDS)

    def _cancel_flush(self) -> None:
        if self._commit_handle is not None:
            self._commit_handle.cancel()
            self._commit_handle = None

    def _flush_soon(self) -> None:
        """The end-of-iteration flush: now if the write lock is free, else again RETRY_SECONDS later. A failure
        other than the lock being taken is left to the next flush (the run's outcome waits for one that
        succeeds)."""
        self._commit_handle = None
        try:
            done = self._try_flush()
        except sqlite3.Error as exc:
            log.warning("committing checkpoint writes failed (tried again before each run's outcome): %s", exc)
            return
        if not done and self._commit_handle is None:
            self._commit_handle = asyncio.get_running_loop().call_later(RETRY_SECONDS, self._flush_soon)

    def _try_flush(self) -> bool:
        """Run the recorded statements if the write lock can be had at once; False (nothing done) if another
        connection holds it. Raises what running them raised (they stay recorded)."""
        self._cancel_flush()
        if not self._pending:
            return True
        with self.lock:
            self.setup()
            if self.conn.in_transaction:  # a transaction is open already: the lock is not in question
                self._run_pending()
                return True
            self.conn.execute("PRAGMA busy_timeout=0")
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    return False
                raise
            finally:
                self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._run_pending()
        return True

    def _run_pending(self) -> None:
        """The recorded statements, one executemany per text, and the commit, in the transaction open (if any;
        else the first statement opens one); under `self.lock`."""
        pending, self._pending = self._pending, {}
        try:
            for statement, rows in pending.items():
                self.conn.executemany(statement, rows)
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            # Kept, before anything recorded since (nothing can be: this runs on the loop's thread).
            for statement, rows in self._pending.items():
                pending.setdefault(statement, []).extend(rows)
            self._pending = pending
            raise

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        with self._deferred():
            return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        with self._deferred():
            self.put_writes(config, writes, task_id, task_path)

    @contextmanager
    def _deferred(self) -> Iterator[None]:
        """Within a run (DEFER_COMMITS), SqliteSaver's writes in this block are recorded for the end of the loop
        iteration. `put` and `put_writes` do not yield, so no other code runs while the flag is set."""
        if not DEFER_COMMITS.get():
            yield
            return
        self._recording = True
        try:
            yield
        finally:
            self._recording = False

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def adelete_for_runs(self, run_ids: Iterable[str]) -> None:
        ids = list(run_ids)
        if not ids:
            return
        marks = ",".join("?" for _ in ids)
        selector = f"json_extract(CAST(metadata AS TEXT), '$.run_id') IN ({marks})"
        with self.cursor() as cur:
            cur.execute(
                "DELETE FROM writes WHERE (thread_id, checkpoint_ns, checkpoint_id) IN "
                f"(SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints WHERE {selector})",
                ids,
            )
            cur.execute(f"DELETE FROM checkpoints WHERE {selector}", ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        with self.cursor() as cur:
            for table in ("checkpoints", "writes"):
                columns = [row[1] for row in cur.execute(f"PRAGMA table_info({table})").fetchall()]
                rest = ", ".join(c for c in columns if c != "thread_id")
                cur.execute(
                    f"INSERT INTO {table} (thread_id, {rest}) SELECT ?, {rest} FROM {table} WHERE thread_id = ?",
                    (target_thread_id, source_thread_id),
                )

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Strategy "keep_latest" keeps the newest checkpoint of each namespace (a SQLite checkpoint holds its
        channel values inline, so it stands alone) and its pending writes; "delete" removes the threads'
        checkpoints."""
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"Unknown prune strategy: {strategy!r}")
        newest = (
            "SELECT MAX(checkpoint_id) FROM checkpoints AS newest WHERE newest.thread_id = {t}.thread_id "
            "AND newest.checkpoint_ns = {t}.checkpoint_ns"
        )
        with self.cursor() as cur:
            for thread_id in thread_ids:
                for table in ("writes", "checkpoints"):
                    keep = "" if strategy == "delete" else f" AND checkpoint_id <> ({newest.format(t=table)})"
                    cur.execute(f"DELETE FROM {table} WHERE thread_id = ?{keep}", (str(thread_id),))


class _Recorder:
    """Stands in for SqliteSaver's cursor inside a deferred write: keeps each statement's parameters under its text
    (statements of one text keep their order; the checkpoints and writes tables have no triggers or foreign keys,
    so running each text's rows together writes what running them interleaved would)."""

    def __init__(self, pending: dict[str, list[Any]]) -> None:
        self._pending = pending

    def execute(self, statement: str, parameters: Any = ()) -> _Recorder:
        self._pending.setdefault(statement, []).append(parameters)
        return self

    def executemany(self, statement: str, rows: Iterable[Any]) -> _Recorder:
        self._pending.setdefault(statement, []).extend(rows)
        return self
