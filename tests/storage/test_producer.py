"""The producer (queue/producer.py) against real storage, on a clock that moves only when told: what it remembers
between looks at storage never makes it miss a run.

- The moment of the earliest delayed run is remembered between loop turns, and forgotten when a RUNS hint says a
  run was created: a run due sooner than the one remembered starts at its own moment, not at the safety poll.
- While a backlog drains, claims skip the "anything claimable?" read, and every run still starts exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crongraph import notify
from crongraph.clock import FakeClock
from crongraph.notify.local import LocalNotifier
from crongraph.queue import producer
from crongraph.queue.producer import RunQueue
from crongraph.storage import runs, threads
from crongraph.storage.common import Record
from crongraph.storage.database import Database
from tests.multireplica.rows import run_row, thread_row

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Recorder:
    """An executor that records the runs it is given and ends them at once (no outcome written)."""

    def __init__(self) -> None:
        self.started: asyncio.Queue[str] = asyncio.Queue()
        self.release = asyncio.Event()
        self.release.set()

    async def execute(self, run: Record, cancel_actions: dict[str, str], *, assistant: Record | None = None) -> None:
        self.started.put_nowait(run["run_id"])
        await self.release.wait()

    async def next(self) -> str:
        async with asyncio.timeout(10):
            return await self.started.get()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.dispose()


async def _pending(db: Database, available_at: datetime, priority: int = 2) -> str:
    async with db.write() as conn:
        thread = thread_row(T0)
        await threads.insert_new(conn, thread)
        run = {**run_row(thread["thread_id"], T0, priority), "available_at": available_at}
        await runs.insert_new(conn, run)
    return str(run["run_id"])


async def _queue(db: Database, clock: FakeClock, notifier: LocalNotifier, workers: int) -> tuple[RunQueue, Recorder]:
    recorder = Recorder()
    executor: Any = recorder
    queue = RunQueue(db, executor, notifier, clock, workers=workers, lease_seconds=30)
    await queue.start()
    return queue, recorder


async def _until(condition: Any) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.005)


async def test_a_run_due_sooner_than_the_remembered_one_starts_at_its_own_moment(db: Database) -> None:
    clock, notifier = FakeClock(T0), LocalNotifier()
    queue, recorder = await _queue(db, clock, notifier, workers=2)
    try:
        later = T0 + timedelta(hours=1)
        await _pending(db, later)
        await notifier.notify(notify.RUNS, "")
        # The producer has looked and remembers the hour-later run as the next moment to wake up for.
        await _until(lambda: queue._delayed == later)
        sooner = T0 + producer.SAFETY_POLL / 2  # before the safety poll would make it look again anyway
        run_id = await _pending(db, sooner)
        await notifier.notify(notify.RUNS, run_id)
        await _until(lambda: queue._delayed == sooner)  # forgotten on the hint, read again
        assert recorder.started.empty()
        await clock.set(sooner)
        assert await recorder.next() == run_id
    finally:
        await queue.stop(grace=1)


async def test_a_drained_backlog_starts_every_run_once(db: Database) -> None:
    clock, notifier = FakeClock(T0), LocalNotifier()
    queue, recorder = await _queue(db, clock, notifier, workers=3)
    try:
        recorder.release.clear()  # runs hold their slot: each claim takes all it may, so the next skips the read
        backlog = [await _pending(db, T0, priority=0) for _ in range(10)]
        await notifier.notify(notify.RUNS, "")
        started = [await recorder.next() for _ in range(3)]
        recorder.release.set()
        started += [await recorder.next() for _ in range(7)]
        assert sorted(started) == sorted(backlog)  # each once
        async with db.read() as conn:
            assert not await runs.any_claimable(conn, T0)
    finally:
        await queue.stop(grace=1)
