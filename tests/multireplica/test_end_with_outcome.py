"""A run's END row written by its outcome's statement (PostgreSQL, one statement a run fewer): the events still in
the broker's outbox and the END row, carrying the run's final record, go in with the fenced finish, or not at all;
and the run's end is announced (RUN_EVENTS) only when a replica follows it, whenever the follower came.
One process stands for two replicas on one database: `here` executes the run, `there` waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from crongraph import notify, serde
from crongraph.clock import SystemClock
from crongraph.notify.postgres import PostgresNotifier
from crongraph.storage import events, runs, threads
from crongraph.storage.database import Database
from crongraph.streams import pg_broker
from crongraph.streams.pg_broker import PgBroker
from tests.multireplica.hints import Heard
from tests.multireplica.rows import run_row, thread_row
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.postgres


@pytest.fixture
async def url(postgres: PostgresServer) -> str:
    database = postgres.create_database("end_with_outcome")
    db = Database(database)
    await db.migrate()
    await db.dispose()
    return database


async def _brokers(url: str, poll: float) -> AsyncIterator[tuple[PgBroker, PgBroker, Database]]:
    db = Database(url)
    notifiers = [PostgresNotifier(url), PostgresNotifier(url)]
    made = [PgBroker(db, n, SystemClock(), retention=60, poll=poll) for n in notifiers]
    for n in notifiers:
        await n.start()
    for b in made:
        await b.open()
    yield made[0], made[1], db
    for b in made:
        await b.aclose()
    for n in notifiers:
        await n.stop()
    await db.dispose()


@pytest.fixture
async def brokers(url: str) -> AsyncIterator[tuple[PgBroker, PgBroker, Database]]:
    async for made in _brokers(url, poll=0.5):
        yield made


@pytest.fixture
async def hinted(url: str) -> AsyncIterator[tuple[PgBroker, PgBroker, Database]]:
    """As `brokers`, polling the table so rarely that a wait answered within seconds was answered by a hint."""
    async for made in _brokers(url, poll=60.0):
        yield made


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The seqs of every separate event flush (append_and_notify); the outbox lingers a minute, so a flush
    happens only when an END row is queued."""
    monkeypatch.setattr(pg_broker, "QUIET_LINGER", 60.0)
    seen: list[list[int]] = []
    append = events.append_and_notify

    async def counted(conn: Any, rows: list[dict[str, Any]], *args: Any) -> Any:
        seen.append([row["seq"] for row in rows])
        return await append(conn, rows, *args)

    monkeypatch.setattr(events, "append_and_notify", counted)
    return seen


async def _running(db: Database) -> dict[str, Any]:
    now = datetime.now(UTC)
    thread = thread_row(now)
    run = {**run_row(thread["thread_id"], now), "status": "running", "lease_owner": "here", "lease_token": "tok"}
    async with db.write() as conn:
        await threads.insert_new(conn, thread)
        await runs.insert_new(conn, run)
    return run


async def _record(here: PgBroker, db: Database, run: dict[str, Any], output: Any) -> dict[str, Any] | None:
    """What the executor does for a run's outcome written alone (queue/executor._write_outcome_at_once)."""
    now = datetime.now(UTC)
    batch = here.end_with_outcome(run["run_id"], runs.ended(run, "success", output, None, now))
    assert batch is not None
    changes = {"updated_at": now, "values": output}
    async with db.autocommit() as conn:
        finished = await runs.finish_and_settle(
            conn,
            run,
            status="success",
            output=output,
            error=None,
            now=now,
            settled="idle",
            changes=changes,
            batch=batch,
        )
    here.outcome_written(run["run_id"], batch, finished is not None)
    return finished


async def test_the_end_row_written_with_the_outcome_answers_another_replica(
    brokers: tuple[PgBroker, PgBroker, Database], flushes: list[list[int]]
) -> None:
    here, there, db = brokers
    run = await _running(db)
    run_id = run["run_id"]
    here.start(run_id, run["thread_id"])
    here.publish(run_id, "metadata", {"run_id": run_id})
    here.publish(run_id, "values", {"i": 1})
    waiting = asyncio.create_task(there.wait_done(run_id))

    finished = await _record(here, db, run, {"i": 1})
    assert finished is not None
    here.close(run_id, finished)
    assert here._outbox == []  # nothing left for a separate flush: no END row of its own

    await asyncio.wait_for(waiting, 10)  # answered by the END row, from the table
    assert there.final(run_id) == serde.loads(serde.dumps(finished))
    stream = [(e.id, e.name) async for e in there.subscribe(run_id)]
    assert stream == [(1, "metadata"), (2, "values")]
    async with db.read() as conn:
        stored = await runs.get(conn, run_id)
        thread = await threads.get(conn, run["thread_id"])
    assert stored is not None and stored["status"] == "success"
    assert thread is not None and thread["status"] == "idle"
    assert flushes == []


async def test_a_fenced_outcome_writes_no_end_row_and_its_events_go_the_usual_way(
    brokers: tuple[PgBroker, PgBroker, Database], flushes: list[list[int]]
) -> None:
    here, there, db = brokers
    run = await _running(db)
    run_id = run["run_id"]
    here.start(run_id, run["thread_id"])
    here.publish(run_id, "metadata", {"run_id": run_id})
    stale = {**run, "lease_token": "reaped-and-claimed-again"}

    assert await _record(here, db, stale, {"i": 1}) is None
    async with db.read() as conn:
        assert await events.end_of(conn, run_id) is None
        rows, ended = await events.read_after(conn, run_id, 0, 10)
        stored = await runs.get(conn, run_id)
    assert (rows, ended) == ([], False)
    assert stored is not None and stored["status"] == "running"  # the outcome wrote nothing at all
    assert [(row["seq"], row["name"]) for row in here._outbox] == [(1, "metadata")]  # queued again

    here.close(run_id, None)  # as the executor does when the lease was lost: no final record
    await asyncio.wait_for(there.wait_done(run_id), 10)
    assert there.final(run_id) is None
    assert flushes == [[1, events.END]]


async def test_an_end_row_waits_for_the_runs_events_in_a_flush_under_way(
    brokers: tuple[PgBroker, PgBroker, Database], flushes: list[list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush holding some of the run's events may commit after the outcome's statement: the END row then goes
    through the outbox, after them, never in the outcome's statement."""
    here, _there, db = brokers
    run = await _running(db)
    run_id = run["run_id"]
    here.start(run_id, run["thread_id"])
    started, release = asyncio.Event(), asyncio.Event()
    append = events.append_and_notify

    async def slow(conn: Any, rows: list[dict[str, Any]], *args: Any) -> Any:
        started.set()
        await release.wait()
        return await append(conn, rows, *args)

    monkeypatch.setattr(events, "append_and_notify", slow)
    monkeypatch.setattr(pg_broker, "QUIET_LINGER", 0.0)
    here.publish(run_id, "metadata", {"run_id": run_id})
    await asyncio.wait_for(started.wait(), 10)
    assert here.end_with_outcome(run_id, runs.ended(run, "success", None, None, datetime.now(UTC))) is None
    release.set()


async def _executed(here: PgBroker, db: Database) -> dict[str, Any]:
    run = await _running(db)
    here.start(run["run_id"], run["thread_id"])
    here.publish(run["run_id"], "metadata", {"run_id": run["run_id"]})
    finished = await _record(here, db, run, None)
    here.close(run["run_id"], finished)
    return run


async def test_a_runs_end_is_announced_only_to_followers_whenever_they_come(
    hinted: tuple[PgBroker, PgBroker, Database], url: str
) -> None:
    here, there, db = hinted
    heard = Heard()
    listener = PostgresNotifier(url)
    await listener.start()
    listener.listen(notify.RUN_EVENTS, heard)
    try:
        # Nobody follows: no hint. Hints are delivered in commit order, so the sentinel comes after any hint the
        # run's outcome sent.
        alone = await _executed(here, db)
        await here._notifier.notify(notify.RUN_EVENTS, "sentinel")
        await heard.until("sentinel")
        assert not [p for p in heard.payloads if p.startswith(alone["run_id"])]

        # Followed before its end: the outcome's statement announces it.
        followed = await _running(db)
        run_id = followed["run_id"]
        waiting = asyncio.create_task(there.wait_done(run_id))
        await heard.until(f"{run_id}:want")
        async with asyncio.timeout(10):
            while run_id not in here._wanted:  # heard by `here` too (its own listener)
                await asyncio.sleep(0.01)
        here.start(run_id, followed["thread_id"])
        finished = await _record(here, db, followed, None)
        here.close(run_id, finished)
        await heard.until(f"{run_id}:end")
        await asyncio.wait_for(waiting, 10)
        assert there.final(run_id) == serde.loads(serde.dumps(finished))

        # Followed only after its end was written unannounced: the want is answered by the hint.
        late = alone["run_id"]
        await asyncio.wait_for(there.wait_done(late), 10)
        await heard.until(f"{late}:end")  # the hint came (wait_done may have ended by its poll first, under load)
        assert there.final(late) is not None and there.final(late)["status"] == "success"
    finally:
        await listener.stop()
