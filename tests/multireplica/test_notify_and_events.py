"""The two PostgreSQL pieces replicas talk through, in one process standing for two replicas on one database:
the LISTEN/NOTIFY notifier (hints reach every replica, itself included; a lost listening connection is
re-established and everyone is told to look again) and the run event broker (a run's events, published on the
replica executing it, are streamed, resumed and waited for on another; a run whose executor died ends its
streams with its stored error; ended runs' events are purged after the retention period; a run followed from
another replica has its events written as they come, one nobody follows elsewhere in one statement with its end).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from crongraph import notify, serde
from crongraph.clock import SystemClock
from crongraph.notify.postgres import PostgresNotifier
from crongraph.storage import events, runs, threads
from crongraph.storage.database import Database
from crongraph.streams import pg_broker
from crongraph.streams.broker import Event
from crongraph.streams.pg_broker import PgBroker
from tests.multireplica.hints import Heard
from tests.multireplica.rows import run_row, thread_row
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.postgres


@pytest.fixture
async def url(postgres: PostgresServer) -> AsyncIterator[str]:
    database = postgres.create_database("notify")
    db = Database(database)
    await db.migrate()
    await db.dispose()
    yield database


@pytest.fixture
async def two_notifiers(url: str) -> AsyncIterator[tuple[PostgresNotifier, PostgresNotifier]]:
    a, b = PostgresNotifier(url), PostgresNotifier(url)
    await a.start()
    await b.start()
    yield a, b
    await a.stop()
    await b.stop()


async def test_hints_reach_every_replica_including_the_sender(
    two_notifiers: tuple[PostgresNotifier, PostgresNotifier],
) -> None:
    a, b = two_notifiers
    on_a, on_b = Heard(), Heard()
    a.listen(notify.CANCEL, on_a)
    b.listen(notify.CANCEL, on_b)
    for i in range(50):
        await a.notify(notify.CANCEL, f"run-{i}:interrupt")
    await on_b.until("run-49:interrupt")
    await on_a.until("run-49:interrupt")
    assert on_b.payloads == [f"run-{i}:interrupt" for i in range(50)]  # in order, none lost, in a few statements
    # RUNS hints say only "look at storage": those of one flush go as one (the last), on every replica.
    runs_a, runs_b = Heard(), Heard()
    a.listen(notify.RUNS, runs_a)
    b.listen(notify.RUNS, runs_b)
    for i in range(50):
        await a.notify(notify.RUNS, f"run-{i}")
    await runs_b.until("run-49")
    await runs_a.until("run-49")
    assert len(runs_b.payloads) < 50 and runs_b.payloads[-1] == "run-49"
    with pytest.raises(ValueError, match="unknown notification channel"):
        a.listen("nonsense", on_a)


async def test_a_lost_listening_connection_is_reestablished(
    url: str, two_notifiers: tuple[PostgresNotifier, PostgresNotifier]
) -> None:
    a, b = two_notifiers
    on_a = Heard()
    a.listen(notify.CRONS, on_a)
    assert a._listen_conn is not None
    pid = a._listen_conn.info.backend_pid
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # Back within the backoff, and the listeners are told to look at storage again (hints may have been lost).
    await on_a.until("")
    assert a.reconnects == 1
    await b.notify(notify.CRONS, "after")
    await on_a.until("after")


@pytest.fixture
async def brokers(url: str) -> AsyncIterator[tuple[PgBroker, PgBroker, Database]]:
    """Two replicas' brokers: `here` executes the runs, `there` only reads."""
    db = Database(url)
    notifiers = [PostgresNotifier(url), PostgresNotifier(url)]
    made = [PgBroker(db, n, SystemClock(), retention=60, poll=0.5) for n in notifiers]
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


async def _run_on_record(db: Database, **changes: Any) -> str:
    now = datetime.now(UTC)
    thread = thread_row(now)
    run = {**run_row(thread["thread_id"], now), **changes}
    async with db.write() as conn:
        await threads.insert_new(conn, thread)
        await runs.insert_new(conn, run)
    return str(run["run_id"])


async def _drain(stream: AsyncIterator[Event]) -> list[Event]:
    async with asyncio.timeout(10):
        return [event async for event in stream]


async def test_another_replica_streams_resumes_and_waits(brokers: tuple[PgBroker, PgBroker, Database]) -> None:
    here, there, db = brokers
    run_id = await _run_on_record(db, status="running")
    live = asyncio.create_task(_drain(there.subscribe(run_id)))
    done = asyncio.create_task(there.wait_done(run_id))
    await asyncio.sleep(0.2)  # subscribed before the first event exists
    here.publish(run_id, "metadata", {"run_id": run_id})
    for i in range(3):
        here.publish(run_id, "values", {"i": i})
        await asyncio.sleep(0.05)
    assert not done.done()
    here.close(run_id)
    events = await live
    await asyncio.wait_for(done, 5)
    assert [(e.id, e.name, serde.loads(e.data)) for e in events] == [
        (1, "metadata", {"run_id": run_id}),
        (2, "values", {"i": 0}),
        (3, "values", {"i": 1}),
        (4, "values", {"i": 2}),
    ]
    assert there.is_done(run_id)
    # Resumption after an id, and a full replay, from the table.
    assert [e.id for e in await _drain(there.subscribe(run_id, after=2))] == [3, 4]
    assert await _drain(there.subscribe(run_id)) == events
    # On the executing replica, the same from memory.
    assert await _drain(here.subscribe(run_id)) == events


async def test_a_run_whose_executor_died_ends_its_streams_with_its_error(
    brokers: tuple[PgBroker, PgBroker, Database],
) -> None:
    here, there, db = brokers
    error = {"error": "WorkerLost", "message": "the server executing this run stopped before it finished"}
    ended = datetime.now(UTC) - timedelta(seconds=10)  # reaped a while ago: no END row is coming
    run_id = await _run_on_record(db, status="error", error=error, ended_at=ended)
    here.publish(run_id, "metadata", {"run_id": run_id})  # what the dead replica wrote before it died
    async with asyncio.timeout(10):
        while True:  # until its flush is in the table
            async with db.read() as conn:
                if (await events.read_after(conn, run_id, 0, 10))[0]:
                    break
            await asyncio.sleep(0.02)
    seen = await _drain(there.subscribe(run_id))
    assert [(e.id, e.name) for e in seen] == [(1, "metadata"), (2, "error")]
    assert serde.loads(seen[-1].data) == error
    # A run long gone (purged, or never streamed) ends at once with nothing.
    assert await _drain(there.subscribe(await _run_on_record(db, status="success", ended_at=ended))) == []


async def test_ended_runs_events_are_purged_after_retention(brokers: tuple[PgBroker, PgBroker, Database]) -> None:
    here, _there, db = brokers
    old = datetime.now(UTC) - timedelta(seconds=120)
    finished = await _run_on_record(db, status="success", ended_at=old)
    running = await _run_on_record(db, status="running")
    for run_id in (finished, running):
        here.publish(run_id, "values", {})
    here.close(finished)
    await asyncio.sleep(0.3)
    async with db.write() as conn:
        # As if the rows had been written long ago.
        await conn.exec_driver_sql("UPDATE run_events SET created_at = created_at - interval '120 seconds'")
        purged = await events.purge(conn, datetime.now(UTC) - timedelta(seconds=60))
    assert purged == 2  # the finished run's event and END row; the running run keeps its event
    async with db.read() as conn:
        left, _ = await events.read_after(conn, running, 0, 10)
        gone, ended = await events.read_after(conn, finished, 0, 10)
    assert len(left) == 1 and gone == [] and not ended


async def test_publishing_never_waits_for_the_database(brokers: tuple[PgBroker, PgBroker, Database]) -> None:
    here, there, db = brokers
    run_id = await _run_on_record(db, status="running")
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(2000):
        here.publish(run_id, "values", {"i": i})
    here.close(run_id)
    assert loop.time() - started < 0.5
    events = await _drain(there.subscribe(run_id, after=1990))
    assert [e.id for e in events] == list(range(1991, 2001))


async def test_a_run_followed_from_another_replica_has_its_events_written_without_waiting_for_its_end(
    brokers: tuple[PgBroker, PgBroker, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Events of runs nobody follows elsewhere may wait this long for company; a follower's `want` hint cuts it short.
    monkeypatch.setattr(pg_broker, "QUIET_LINGER", 60.0)
    here, there, db = brokers
    run_id = await _run_on_record(db, status="running")
    first = asyncio.Event()
    seen: list[Event] = []

    async def follow() -> None:
        async for event in there.subscribe(run_id):
            seen.append(event)
            first.set()

    live = asyncio.create_task(follow())
    here.publish(run_id, "metadata", {"run_id": run_id})
    await asyncio.wait_for(first.wait(), 10)  # long before QUIET_LINGER, and before the run's end
    assert [(e.id, e.name) for e in seen] == [(1, "metadata")]
    here.publish(run_id, "values", {"i": 1})
    here.close(run_id)
    await asyncio.wait_for(live, 10)
    assert [(e.id, e.name) for e in seen] == [(1, "metadata"), (2, "values")]


async def test_a_run_nobody_follows_elsewhere_is_written_in_one_statement_with_its_end(
    brokers: tuple[PgBroker, PgBroker, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_broker, "QUIET_LINGER", 60.0)
    flushes: list[list[int]] = []
    append = events.append_and_notify

    async def counted(conn: Any, rows: list[dict[str, Any]], *args: Any) -> Any:
        flushes.append([row["seq"] for row in rows])
        return await append(conn, rows, *args)

    monkeypatch.setattr(events, "append_and_notify", counted)
    here, there, db = brokers
    run_id = await _run_on_record(db, status="running")
    here.publish(run_id, "metadata", {"run_id": run_id})
    await asyncio.sleep(pg_broker.FLUSH_LINGER * 4)  # longer than a followed run's events would wait
    here.publish(run_id, "values", {"i": 1})
    here.close(run_id, {"run_id": run_id, "status": "success"})
    await asyncio.wait_for(there.wait_done(run_id), 10)  # answered by the END row, from the table
    assert there.final(run_id) == {"run_id": run_id, "status": "success"}
    assert flushes == [[1, 2, events.END]]
    assert [(e.id, e.name) for e in await _drain(there.subscribe(run_id))] == [(1, "metadata"), (2, "values")]
