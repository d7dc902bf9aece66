"""LangGraph's SqliteSaver, served inline on the event loop.

LangGraph's AsyncSqliteSaver sends every statement to a worker thread and back; a checkpoint write on a local
WAL file takes far less time than that round trip, and a run writes several. This saver keeps LangGraph's own
SQLite schema and code (the synchronous SqliteSaver) and exposes its async methods by calling the synchronous
ones directly. It also adds what the server needs and SqliteSaver lacks: deleting what given runs wrote
(rollback) and copying a thread.

Group commit: SqliteSaver commits after every write, and a trivial run writes five times (three checkpoints, two
sets of task writes), each commit writing the same pages to the WAL again. Here a write made by a run (code in
which `DEFER_COMMITS` is set: the executor sets it for the run's task, and the tasks LangGraph starts inherit it)
is committed at the end of the loop iteration it happened in (`commit_pending`, scheduled with `call_soon`),
together with every other write of that iteration; the executor calls `commit_pending` before it commits any
run's outcome, so a run is never recorded as ended before its checkpoints are. Every other write (the API's state
updates, thread copies, deletes) commits at once, as LangGraph's saver does. Reads share the one connection, so
they see the writes not yet committed.
"""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.sqlite import SqliteSaver

# Set (True) while a run executes: its checkpoint writes may be committed at the end of the loop iteration.
DEFER_COMMITS: contextvars.ContextVar[bool] = contextvars.ContextVar("crongraph_defer_commits", default=False)


class InlineSqliteSaver(SqliteSaver):
    @classmethod
    def open(cls, path: Path) -> InlineSqliteSaver:
        # isolation_level "" (implicit transactions, as LangGraph's saver expects) is missing from typeshed's Literal.
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level="")  # type: ignore[call-overload]
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        saver = cls(conn)
        saver.setup()
        return saver

    _commit_handle: asyncio.Handle | None = None

    def close(self) -> None:
        self.commit_pending()
        self.conn.close()

    @contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        """SqliteSaver's cursor; its writes (`transaction`) commit on leaving, or at the end of the loop iteration
        when DEFER_COMMITS is set."""
        with self.lock:
            self.setup()
            cur = self.conn.cursor()
            try:
                yield cur
            finally:
                cur.close()
                if transaction and DEFER_COMMITS.get():
                    if self._commit_handle is None:
                        self._commit_handle = asyncio.get_running_loop().call_soon(self.commit_pending)
                elif transaction:
                    self.conn.commit()  # with what earlier deferred writes left uncommitted, if any

    def commit_pending(self) -> None:
        """Commit the writes not committed yet (none: nothing happens). Not from inside `cursor()`, whose lock it
        takes."""
        if self._commit_handle is not None:
            self._commit_handle.cancel()
            self._commit_handle = None
        if self.conn.in_transaction:
            with self.lock:
                self.conn.commit()

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
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)

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
