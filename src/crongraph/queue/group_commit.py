"""Group commit: the write transactions submitted during one event-loop iteration run as one transaction.

Runs that end together (a drain of background runs ends dozens per iteration) each write their outcome in a
short transaction; on SQLite each commit writes the same few pages to the WAL again, on PostgreSQL each costs
BEGIN and COMMIT round trips. Here the bodies submitted before the loop gets round to the flush share one
`Database.write()` transaction, in submission order.

Invariants: a body is a function of the connection only, re-runnable from the start (it may run twice: when any
body of a shared transaction raises, the whole transaction is rolled back and every body is run again in a
transaction of its own, so one run's failure, or a PostgreSQL deadlock, is reported to that run alone and never
costs the others their write). Each body keeps its own conditions (a run's outcome stays fenced by its own lease
token): grouping changes how many commits there are, never what a body writes. `before_commit` (if given) runs
before each flush (awaited when it returns an awaitable): the checkpointer commits what the runs wrote before
their outcomes are committed.

A body may come with `alone` (PostgreSQL): the same write as one statement, for an autocommit connection.
`alone` either writes everything the body would and returns the body's result, or writes nothing and returns None
(or raises): then the body runs in a transaction as usual. On PostgreSQL every body that has one is written
through it, each its own statement and commit, one after the other on one connection, whether or not others were
submitted beside it: k outcomes ending together then cost k statements, where one shared transaction cost
BEGIN, two statements each and COMMIT (statements, not commits, are what a run pays for on PostgreSQL: each is a
round trip, a plan-cache check and an executor start-up). Never inside a shared transaction: an `alone` statement
may tell others what it wrote (the broker's END row), so it must not be rolled back by another body's failure.

A body may come with a `key` (a run's outcome: its run id): a shared transaction runs its bodies in key order
(bodies without one first, in submission order), so that it takes the rows they lock in the order lease renewal
takes them (storage/runs.renew_many, run id order) and the two never deadlock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from crongraph.storage.database import Database

log = logging.getLogger("crongraph.queue")

T = TypeVar("T")
Body = Callable[[AsyncConnection], Awaitable[Any]]
Alone = Callable[[AsyncConnection], Awaitable[Any]]


class GroupCommit:
    def __init__(self, db: Database, before_commit: Callable[[], Awaitable[None] | None] | None = None) -> None:
        self._db = db
        self._before_commit = before_commit
        self._queue: list[tuple[Body, asyncio.Future[Any]]] = []
        self._alone: dict[asyncio.Future[Any], Alone] = {}  # the bodies submitted with `alone`
        self._keys: dict[asyncio.Future[Any], str] = {}  # the bodies submitted with `key`
        self._scheduled = False
        self._flushes: set[asyncio.Task[None]] = set()  # held so that a running flush is not garbage collected

    async def run(
        self,
        body: Callable[[AsyncConnection], Awaitable[T]],
        alone: Callable[[AsyncConnection], Awaitable[T | None]] | None = None,
        key: str | None = None,
    ) -> T:
        """`body(conn)`'s result, once the transaction it ran in has committed; its exception if it raised (in a
        transaction of its own, then rolled back). `alone` (PostgreSQL only) and `key`: see the module's
        docstring."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append((body, future))
        if alone is not None and self._db.dialect == "postgresql":
            self._alone[future] = alone
        if key is not None:
            self._keys[future] = key
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start)
        try:
            return await future
        finally:
            self._alone.pop(future, None)
            self._keys.pop(future, None)

    def _start(self) -> None:
        self._scheduled = False
        batch, self._queue = self._queue, []
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[tuple[Body, asyncio.Future[Any]]]) -> None:
        try:
            await self._write(batch)
        finally:
            for _body, future in batch:  # only if the flush itself was cancelled (shutdown) part way
                if not future.done():
                    future.cancel()

    async def _write_alone(
        self, batch: list[tuple[Body, asyncio.Future[Any]]]
    ) -> list[tuple[Body, asyncio.Future[Any]]]:
        """Write each body that has an `alone` through it, in batch order, on one autocommit connection (a fresh
        one after a statement failed, whatever the failure did to the connection). The bodies left to write in a
        transaction: those without `alone`, and those whose `alone` wrote nothing or raised."""
        todo = [item for item in batch if item[1] in self._alone]
        if not todo:
            return batch
        rest = [item for item in batch if item[1] not in self._alone]
        while todo:
            try:
                async with self._db.autocommit() as conn:
                    while todo:
                        body, future = todo.pop(0)
                        try:
                            result = await self._alone[future](conn)
                        except Exception as exc:
                            log.debug("a one-statement write failed (%s); writing it in a transaction", exc)
                            rest.append((body, future))
                            break
                        if result is None:
                            rest.append((body, future))
                        elif not future.done():
                            future.set_result(result)
            except Exception as exc:  # no connection: every body left is written the long way (and fails there)
                log.debug("one-statement writes could not start (%s); writing them in transactions", exc)
                rest += todo
                todo = []
        order = {id(future): i for i, (_body, future) in enumerate(batch)}
        return sorted(rest, key=lambda item: order[id(item[1])])  # in key order again, for a shared transaction

    async def _write(self, batch: list[tuple[Body, asyncio.Future[Any]]]) -> None:
        if self._before_commit is not None:
            try:
                pending = self._before_commit()
                if pending is not None:
                    await pending
            except Exception as exc:
                for _body, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
        # Stable: bodies without a key first, then by key.
        batch = sorted(batch, key=lambda item: (item[1] in self._keys, self._keys.get(item[1], "")))
        if self._alone:
            batch = await self._write_alone(batch)
        if len(batch) > 1:
            try:
                async with self._db.write() as conn:
                    results = [await body(conn) for body, _ in batch]
            except Exception as exc:
                log.debug("a grouped transaction of %d failed (%s); writing each on its own", len(batch), exc)
            else:
                for (_body, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                return
        for body, future in batch:
            try:
                async with self._db.write() as conn:
                    result = await body(conn)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
