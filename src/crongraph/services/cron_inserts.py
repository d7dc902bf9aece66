"""Group commit for cron creates: concurrent creates are written in one transaction, each request answered only
once that transaction has committed.

Registering crons in bulk is many small requests at once; on SQLite every commit appends each touched page of the
table and its indexes to the WAL, and on PostgreSQL it is a round trip, so one commit per cron costs more than
the row. `CronInserts.insert(row)` queues the row and waits; one flush at a time takes everything queued and
writes it in one transaction (rows with the same columns in one executemany). Before it writes, the flush yields
to the event loop while that brings more rows (requests already read from their sockets), a few iterations at
most; rows queued while a flush runs go in the next one. So the batch grows with the load, and a lone create
waits for no timer.

Invariants:
- A request's `insert` returns only after the transaction holding its row has committed (durable as a lone
  create's), and raises what writing its own row raised: when a batch fails, it is rolled back and each of its
  rows is written again in a transaction of its own, so a failing row (a foreign key, the owner limit) fails
  only its own request.
- `check(conn, row)` (the per-owner limit) runs for each row inside the transaction, before that row's insert and
  after the rows before it in the batch, so the limit counts them: it is exact as with one transaction per row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from crongraph.storage import crons
from crongraph.storage.common import Record
from crongraph.storage.database import Database

Check = Callable[[Any, Record], Awaitable[None]]
# Most rows one transaction takes: a bounded batch keeps one flush from holding the writer for long.
MAX_BATCH = 256
GATHER_ROUNDS = 6


class CronInserts:
    def __init__(self, db: Database, check: Check) -> None:
        self._db = db
        self._check = check
        self._queue: list[tuple[Record, bool, asyncio.Future[None]]] = []
        self._flushing = False
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps only weak references to tasks

    async def insert(self, row: Record, checked: bool) -> None:
        """Write `row` into `crons`, after `check(conn, row)` when `checked`; returns once it is committed.
        Raises what writing it alone would raise (sqlalchemy's IntegrityError, the check's error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.append((row, checked, future))
        if not self._flushing:
            self._flushing = True
            # A task of its own: the rows of requests already parsed in this loop iteration join the batch, and
            # a request cancelled while waiting does not cancel the others' writes.
            self._task = loop.create_task(self._flush_all())
        await future

    async def _flush_all(self) -> None:
        batch: list[tuple[Record, bool, asyncio.Future[None]]] = []
        try:
            await self._gather()
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                await self._flush(batch)
        except BaseException as exc:
            # Cancelled (shutdown) or broken mid-batch: no request may wait forever for an answer.
            for _, _, future in [*batch, *self._queue]:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            self._queue = []
            raise
        finally:
            self._flushing = False
            self._task = None

    async def _gather(self) -> None:
        """Let the requests already on their way join the batch: yield to the loop (which reads the sockets that
        are ready and runs their requests up to here) as long as that brings more rows, a few times at most."""
        seen = 0
        for _ in range(GATHER_ROUNDS):
            if len(self._queue) == seen or len(self._queue) >= MAX_BATCH:
                return
            seen = len(self._queue)
            await asyncio.sleep(0)

    async def _flush(self, batch: list[tuple[Record, bool, asyncio.Future[None]]]) -> None:
        if len(batch) > 1:
            try:
                async with self._db.write() as conn:
                    await self._write(conn, [(row, checked) for row, checked, _ in batch])
            except Exception:  # rolled back; retried row by row, each row answered with its own error
                pass
            else:
                for _, _, future in batch:
                    if not future.done():
                        future.set_result(None)
                return
        for row, checked, future in batch:
            try:
                async with self._db.write() as conn:
                    await self._write(conn, [(row, checked)])
            except Exception as exc:  # handed to the request that sent the row
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(None)

    async def _write(self, conn: Any, rows: list[tuple[Record, bool]]) -> None:
        groups: dict[tuple[str, ...], list[Record]] = {}
        for row, checked in rows:
            if checked:
                # In order, each after the rows before it: the owner limit counts those written in this
                # transaction. (Rows that need no check are not active, so they never count.)
                await self._check(conn, row)
                await crons.insert_many(conn, [row])
            else:
                groups.setdefault(tuple(row), []).append(row)
        for group in groups.values():
            await crons.insert_many(conn, group)
