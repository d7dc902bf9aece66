"""LangGraph's SqliteSaver, served inline on the event loop.

LangGraph's AsyncSqliteSaver sends every statement to a worker thread and back; a checkpoint write on a local
WAL file takes far less time than that round trip, and a run writes several. This saver keeps LangGraph's own
SQLite schema and code (the synchronous SqliteSaver) and exposes its async methods by calling the synchronous
ones directly. It also adds what the server needs and SqliteSaver lacks: deleting what given runs wrote
(rollback) and copying a thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.sqlite import SqliteSaver


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

    def close(self) -> None:
        self.conn.close()

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
