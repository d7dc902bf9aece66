"""The run queue's claim and lease fencing on PostgreSQL, at the storage level, under real concurrency: many
claimers (each its own connection and transaction, as replicas are) racing over the same pending runs.

- A claim takes at most `limit` runs, each run is claimed by exactly one claimer, and a thread never has two
  runs `running` at once (FOR UPDATE SKIP LOCKED, and the per-thread exclusion).
- A worker whose lease was reaped cannot write its outcome afterwards (fencing by the lease token).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crongraph.clock import SystemClock
from crongraph.ids import new_id
from crongraph.queue.reaper import Reaper
from crongraph.storage import assistants, runs, tables, threads
from crongraph.storage.database import Database
from tests.multireplica.rows import run_row, thread_row
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.postgres

LEASE = timedelta(seconds=30)


@pytest.fixture
async def db(postgres: PostgresServer) -> AsyncIterator[Database]:
    database = Database(postgres.create_database("claims"))
    await database.migrate()
    yield database
    await database.dispose()


async def _seed(db: Database, n_threads: int, per_thread: int, priority: int = 2) -> list[str]:
    """Pending runs, `per_thread` on each of `n_threads` threads, created in order; returns the thread ids."""
    now = datetime.now(UTC)
    ids = []
    async with db.write() as conn:
        for _ in range(n_threads):
            thread = thread_row(now)
            await threads.insert_new(conn, thread)
            ids.append(thread["thread_id"])
        for _ in range(per_thread):
            for thread_id in ids:
                await runs.insert_new(conn, run_row(thread_id, now, priority))
    return ids


async def _claim(db: Database, owner: str, limit: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    async with db.write() as conn:
        return await runs.claim(
            conn,
            owner=owner,
            token=new_id(),
            now=now,
            lease_until=now + LEASE,
            limit=limit,
            background_limit=limit,
            dialect=db.dialect,
        )


async def _running_per_thread(db: Database) -> Counter[str]:
    async with db.read() as conn:
        rows = await runs.list_inflight(conn, thread_id=None, run_ids=None, statuses=("running",))
    return Counter(r["thread_id"] for r in rows)


async def test_one_claim_takes_at_most_its_limit(db: Database) -> None:
    await _seed(db, n_threads=240, per_thread=1)
    claimed = await _claim(db, "solo", limit=6)
    assert len(claimed) == 6
    assert sum((await _running_per_thread(db)).values()) == 6


async def test_racing_claimers_split_the_runs_and_never_run_a_thread_twice(db: Database) -> None:
    thread_ids = await _seed(db, n_threads=30, per_thread=4)
    claimers = [f"replica-{i}" for i in range(12)]

    seen: Counter[str] = Counter()
    for _wave in range(4):
        results = await asyncio.gather(*(_claim(db, owner, limit=4) for owner in claimers))
        batch = [r for result in results for r in result]
        assert all(len(result) <= 4 for result in results)
        seen.update(r["run_id"] for r in batch)
        running = await _running_per_thread(db)
        assert max(running.values()) == 1, "a thread has two runs running at once"
        assert len(batch) == len(thread_ids)  # one runnable run per thread, and every one was taken
        # The oldest pending run of each thread is the one that runs.
        for r in batch:
            async with db.read() as conn:
                pending = await runs.inflight_on_thread(conn, r["thread_id"])
            assert pending[0]["run_id"] == r["run_id"]
        now = datetime.now(UTC)
        async with db.write() as conn:
            for r in batch:
                done = await runs.finish(conn, r, status="success", output=None, error=None, now=now)
                assert done is not None
    assert len(seen) == 30 * 4
    assert max(seen.values()) == 1, "a run was claimed twice"


async def test_a_reaped_workers_late_outcome_is_dropped(db: Database) -> None:
    await _seed(db, n_threads=1, per_thread=2)
    (first,) = await _claim(db, "dead-replica", limit=1)
    clock = SystemClock()
    # Another replica's reaper, once the lease has expired (seen from a clock past the lease).
    reaper = Reaper(db, clock, lease_seconds=1, owner="live-replica", embedded=False)
    async with db.write() as conn:
        await runs.renew(conn, first["run_id"], first["lease_token"], datetime.now(UTC) - timedelta(seconds=1))
    assert await reaper.reap() == 1
    async with db.read() as conn:
        reaped = await runs.get(conn, first["run_id"])
    assert reaped is not None
    assert reaped["status"] == "error" and reaped["error"]["error"] == "WorkerLost"

    # The next run of the thread may now start, on the live replica.
    (second,) = await _claim(db, "live-replica", limit=1)
    assert second["thread_id"] == first["thread_id"]

    # The dead replica wakes up and tries to write its outcome and renew its lease: nothing happens.
    now = datetime.now(UTC)
    async with db.write() as conn:
        late = await runs.finish(conn, first, status="success", output={"late": True}, error=None, now=now)
        renewed = await runs.renew(conn, first["run_id"], first["lease_token"], now + LEASE)
        await runs.renew_many(conn, "dead-replica", [first["run_id"]], now + LEASE)
    assert late is None and renewed is False
    async with db.read() as conn:
        after = await runs.get(conn, first["run_id"])
        still = await runs.get(conn, second["run_id"])
    assert after == reaped
    assert still is not None and still["status"] == "running" and still["lease_owner"] == "live-replica"


async def test_a_claim_returns_each_run_with_its_assistant_as_stored(db: Database) -> None:
    # The claim reads the assistant row the executor would read next (one statement fewer per run); a run whose
    # assistant is gone is claimed all the same, beside None (the executor then ends it with that error).
    now = datetime.now(UTC)
    assistant = {
        "assistant_id": new_id(),
        "graph_id": "agent",
        "name": "claimed",
        "description": None,
        "config": {"configurable": {"model": "m"}},
        "context": {"k": [1, 2]},
        "metadata": {"owner": "x"},
        "version": 3,
        "created_at": now,
        "updated_at": now,
    }
    async with db.write() as conn:
        await assistants.insert_new(conn, assistant)
        known, gone = thread_row(now), thread_row(now)
        await threads.insert_new(conn, known)
        await threads.insert_new(conn, gone)
        with_assistant = {**run_row(known["thread_id"], now), "assistant_id": assistant["assistant_id"]}
        without = run_row(gone["thread_id"], now, priority=0)
        await runs.insert_new(conn, with_assistant)
        await runs.insert_new(conn, without)
        stored = await assistants.get(conn, assistant["assistant_id"])
    async with db.autocommit() as conn:
        claimed = await runs.claim_with_assistants(
            conn,
            owner="solo",
            token=new_id(),
            now=now,
            lease_until=now + LEASE,
            limit=5,
            background_limit=5,
            dialect=db.dialect,
        )
    assert [(run["run_id"], run["status"]) for run, _ in claimed] == [
        (without["run_id"], "running"),  # interactive first
        (with_assistant["run_id"], "running"),
    ]
    assert claimed[0][1] is None
    assert claimed[1][1] == stored
    assert set(claimed[1][0]) == {column.name for column in tables.runs.c}  # the run's own columns only
